import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { requirePageUser } from "@/app/_lib/session";
import { CertificateDetailView } from "@/components/certificates/certificate-detail";
import { loadCertificateListeners } from "@/components/listeners/data";
import { getCertificate } from "@/lib/certificates";
import { getDb } from "@/lib/db";
import { latestEventId } from "@/lib/events";
import { listEventPage } from "@/lib/events/query";
import { TIMELINE_LIMIT } from "@/components/events/display";

export const metadata: Metadata = { title: "Certificate" };

export default async function CertificatePage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const user = await requirePageUser();
  // Taken before the certificate is read: a status streamed after it may be newer than this render.
  const renderedAfter = await latestEventId(getDb());
  const cert = await getCertificate(getDb(), id);
  if (!cert) notFound();
  const events = await listEventPage(getDb(), { certificate: cert.id, order: "newest", limit: TIMELINE_LIMIT });
  const { listeners, placements } = await loadCertificateListeners(getDb(), cert.id);
  return <CertificateDetailView cert={cert} renderedAfter={renderedAfter} events={events} isAdmin={user.role === "admin"} listeners={listeners} placements={placements} />;
}
