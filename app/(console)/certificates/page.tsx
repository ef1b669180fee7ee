import type { Metadata } from "next";
import { CertificateList } from "@/components/certificates/certificate-list";
import { currentUser } from "@/app/_lib/session";
import { listCertificates } from "@/lib/certificates";
import { getDb } from "@/lib/db";
import { AppError } from "@/lib/errors";

export const metadata: Metadata = { title: "Certificates" };

export default async function CertificatesPage({ searchParams }: { searchParams: Promise<{ cursor?: string }> }) {
  const { cursor } = await searchParams;
  const user = await currentUser();
  const page = await listCertificates(getDb(), { limit: 50, cursor }).catch((err) => {
    if (err instanceof AppError) return listCertificates(getDb(), { limit: 50 });
    throw err;
  });
  return <CertificateList page={page} canCreate={user?.role === "admin"} />;
}
