import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { requirePageUser } from "@/app/_lib/session";
import { UploadCertificateForm } from "@/components/certificates/upload-form";
import { getCertificate } from "@/lib/certificates";
import { getDb } from "@/lib/db";

export const metadata: Metadata = { title: "Upload a new version" };

export default async function UploadVersionPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const user = await requirePageUser();
  const cert = await getCertificate(getDb(), id);
  if (!cert) notFound();
  if (user.role !== "admin") {
    return <p className="rounded-md bg-amber-50 px-4 py-3 text-sm text-amber-900">Your account is read-only (viewer).</p>;
  }
  if (cert.source !== "upload") {
    return <p className="rounded-md bg-amber-50 px-4 py-3 text-sm text-amber-900">Only uploaded certificates take new versions by upload.</p>;
  }
  return <UploadCertificateForm certificateId={cert.id} certificateName={cert.name} />;
}
