import type { Metadata } from "next";
import { requirePageUser } from "@/app/_lib/session";
import { NewAcmeForm } from "@/components/certificates/new-acme-form";
import { NewSelfSignedForm } from "@/components/certificates/new-self-signed-form";
import { RegisterFileForm } from "@/components/certificates/register-file-form";
import { UploadCertificateForm } from "@/components/certificates/upload-form";
import { listAccounts } from "@/lib/acme/accounts";
import { caName } from "@/lib/acme/errors";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { listCredentials } from "@/lib/dns/credentials";

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
  if (source === "acme") {
    const accounts = await listAccounts(getDb());
    const credentials = await listCredentials(getDb());
    return (
      <NewAcmeForm
        accounts={accounts.map((a) => ({ id: a.id, label: `${a.caName} · ${a.email ?? "no contact"}`, isDefault: a.isDefault }))}
        defaultCa={caName(getConfig().acme.directoryUrl)}
        dnsCredentials={credentials.map((c) => ({ id: c.id, label: `${c.name} (${c.providerLabel}${c.verification ? (c.verification.ok ? `, ${c.verification.zones.length} zone${c.verification.zones.length === 1 ? "" : "s"}` : ", verification failed") : ", not verified"})` }))}
      />
    );
  }
  return <NewSelfSignedForm />;
}
