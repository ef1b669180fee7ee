import type { Metadata } from "next";
import { requirePageUser } from "@/app/_lib/session";
import { AlertSettings } from "@/components/settings/alert-settings";
import { listDeliveries, listWebhooks, type DeliveryView } from "@/lib/alerts/webhooks";
import { getDb } from "@/lib/db";

export const metadata: Metadata = { title: "Alerts" };
export const dynamic = "force-dynamic";

export default async function AlertSettingsPage() {
  const user = await requirePageUser();
  const db = getDb();
  const webhooks = await listWebhooks(db);
  const deliveries: Record<string, DeliveryView[]> = {};
  for (const w of webhooks) deliveries[w.id] = await listDeliveries(db, w.id, 20);
  return <AlertSettings webhooks={webhooks} deliveries={deliveries} isAdmin={user.role === "admin"} />;
}
