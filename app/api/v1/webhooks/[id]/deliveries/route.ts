import { apiRoute } from "@/app/_lib/api";
import { listDeliveries, requireWebhook } from "@/lib/alerts/webhooks";
import { getDb } from "@/lib/db";
import { AppError } from "@/lib/errors";

export const dynamic = "force-dynamic";

/** The webhook's deliveries, newest first (?limit=1..500, default 50), each with its last attempt's result. */
export const GET = apiRoute<{ id: string }>("viewer", async ({ request, params }) => {
  const db = getDb();
  await requireWebhook(db, params.id);
  const raw = new URL(request.url).searchParams.get("limit");
  const limit = raw === null ? 50 : Number(raw);
  if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new AppError("bad_request", "limit must be a whole number from 1 to 500");
  return Response.json({ items: await listDeliveries(db, params.id, limit) }, { headers: { "Cache-Control": "no-store" } });
});
