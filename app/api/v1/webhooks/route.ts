import { apiRoute, readJson } from "@/app/_lib/api";
import { createWebhook, listWebhooks } from "@/lib/alerts/webhooks";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { getKeyring } from "@/lib/runtime";

export const dynamic = "force-dynamic";

export const GET = apiRoute("viewer", async () => Response.json({ items: await listWebhooks(getDb()) }, { headers: { "Cache-Control": "no-store" } }));

/** {name, url, eventTypes?, enabled?}: the answer carries the signing secret, this once. */
export const POST = apiRoute("admin", async ({ request, caller }) => {
  const webhook = await createWebhook(getDb(), getKeyring(getConfig()), caller, await readJson(request));
  return Response.json(webhook, { status: 201, headers: { Location: `/api/v1/webhooks/${webhook.id}`, "Cache-Control": "no-store" } });
});
