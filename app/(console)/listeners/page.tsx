import type { Metadata } from "next";
import { requirePageUser } from "@/app/_lib/session";
import { ListenerList } from "@/components/listeners/listener-list";
import { getDb } from "@/lib/db";
import { listListeners, listMappings } from "@/lib/listeners";

export const metadata: Metadata = { title: "Listeners" };

export default async function ListenersPage() {
  const user = await requirePageUser();
  const db = getDb();
  const listeners = await listListeners(db);
  const rows = await Promise.all(
    listeners.map(async (l) => ({ ...l, mappingCount: l.kind === "https" ? (await listMappings(db, l.id)).length : 0 })),
  );
  return <ListenerList listeners={rows} canCreate={user.role === "admin"} />;
}
