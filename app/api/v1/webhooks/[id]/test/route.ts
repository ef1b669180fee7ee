import { apiRoute, readJson } from "@/app/_lib/api";
import { attemptDelivery } from "@/lib/alerts/deliver";
import { getDelivery, queueTestDelivery } from "@/lib/alerts/webhooks";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { getKeyring } from "@/lib/runtime";

export const dynamic = "force-dynamic";

/**
 * {type?}: sends a signed test delivery (test: true) now and answers its result: the operator is
 * waiting for it. Claimed with the same lease as the worker's deliveries, so it is sent once.
 */
export const POST = apiRoute<{ id: string }>("admin", async ({ request, params, caller }) => {
  const db = getDb();
  const hasBody = request.headers.get("content-type") !== null || Number(request.headers.get("content-length") ?? "0") > 0;
  const queued = await queueTestDelivery(db, caller, params.id, hasBody ? await readJson(request) : undefined);
  const sent = await attemptDelivery(db, getKeyring(getConfig()), queued.id, { workerId: `console-${process.pid}` });
  return Response.json(sent ?? (await getDelivery(db, queued.id)) ?? queued, { headers: { "Cache-Control": "no-store" } });
});
