import { apiRoute, readJson } from "@/app/_lib/api";
import { deleteWebhook, requireWebhook, updateWebhook } from "@/lib/alerts/webhooks";
import { getDb } from "@/lib/db";

export const dynamic = "force-dynamic";

export const GET = apiRoute<{ id: string }>("viewer", async ({ params }) => Response.json(await requireWebhook(getDb(), params.id)));

/** {name?, url?, eventTypes?, enabled?} */
export const PATCH = apiRoute<{ id: string }>("admin", async ({ request, params, caller }) => Response.json(await updateWebhook(getDb(), caller, params.id, await readJson(request))));

export const DELETE = apiRoute<{ id: string }>("admin", async ({ params, caller }) => {
  await deleteWebhook(getDb(), caller, params.id);
  return Response.json({ deleted: params.id });
});
