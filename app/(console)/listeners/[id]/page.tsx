import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { requirePageUser } from "@/app/_lib/session";
import { loadIssuedCertificates, loadUnmappedNames } from "@/components/listeners/data";
import { ListenerDetailView } from "@/components/listeners/listener-detail";
import { getDb } from "@/lib/db";
import { getListener, listChecks, listenerBindProblem, listMappings } from "@/lib/listeners";

export const metadata: Metadata = { title: "Listener" };

export default async function ListenerPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const user = await requirePageUser();
  const db = getDb();
  const listener = await getListener(db, id);
  if (!listener) notFound();
  const [mappings, checks, certificates, bindProblem] = await Promise.all([listMappings(db, id), listChecks(db, id), loadIssuedCertificates(db), listenerBindProblem(db, id)]);
  const unmapped = listener.kind === "https" ? await loadUnmappedNames(db, id, mappings) : [];
  return (
    <ListenerDetailView
      listener={listener}
      bindProblem={listener.enabled ? bindProblem : null}
      mappings={mappings}
      checks={checks.map((c) => ({
        hostname: c.hostname,
        status: c.status,
        expectedFingerprint: c.expected_fingerprint,
        servedFingerprint: c.served_fingerprint,
        servedSubject: c.served_subject,
        detail: c.detail,
        checkedAt: c.checked_at,
      }))}
      certificates={certificates}
      unmapped={unmapped}
      isAdmin={user.role === "admin"}
    />
  );
}
