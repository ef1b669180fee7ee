import type { Metadata } from "next";
import { requirePageUser } from "@/app/_lib/session";
import { NewSelfSignedForm } from "@/components/certificates/new-self-signed-form";
import { RegisterFileForm } from "@/components/certificates/register-file-form";
import { UploadCertificateForm } from "@/components/certificates/upload-form";

export const metadata: Metadata = { title: "New certificate" };

export default async function NewCertificatePage({ searchParams }: { searchParams: Promise<{ source?: string }> }) {
  const user = await requirePageUser();
  if (user.role !== "admin") {
    return (
      <p className="rounded-md bg-amber-50 px-4 py-3 text-sm text-amber-900" data-testid="read-only-notice">
        Your account is read-only (viewer). Ask an admin to create certificates.
      </p>
    );
  }
  const { source } = await searchParams;
  if (source === "upload") return <UploadCertificateForm />;
  if (source === "file") return <RegisterFileForm />;
  return <NewSelfSignedForm />;
}
