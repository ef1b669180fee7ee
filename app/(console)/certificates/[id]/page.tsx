import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { requirePageUser } from "@/app/_lib/session";
import { CertificateDetailView } from "@/components/certificates/certificate-detail";
import { loadCertificateListeners } from "@/components/listeners/data";
import { getCertificate } from "@/lib/certificates";
import { getDb, readSnapshot } from "@/lib/db";
import { latestEventId } from "@/lib/events";
import { listEventPage } from "@/lib/events/query";
import { TIMELINE_LIMIT } from "@/components/events/display";

export const metadata: Metadata = { title: "Certificate" };

export default async function CertificatePage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const user = await requirePageUser();
  // One snapshot: the status, the timeline and renderedAfter agree, so every status event streamed after
  // renderedAfter is newer than the status read (none the page has shown comes again to step back to).
  const read = await readSnapshot(getDb(), async (trx) => {
    const cert = await getCertificate(trx, id);
    return cert && { cert, renderedAfter: await latestEventId(trx), events: await listEventPage(trx, { certificate: cert.id, order: "newest", limit: TIMELINE_LIMIT }) };
  });
  if (!read) notFound();
  const { cert, renderedAfter, events } = read;
  const { listeners, placements } = await loadCertificateListeners(getDb(), cert.id);
  return <CertificateDetailView cert={cert} renderedAfter={renderedAfter} events={events} isAdmin={user.role === "admin"} listeners={listeners} placements={placements} />;
}
