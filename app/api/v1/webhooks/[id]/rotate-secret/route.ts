import { apiRoute } from "@/app/_lib/api";
import { rotateWebhookSecret } from "@/lib/alerts/webhooks";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { getKeyring } from "@/lib/runtime";

export const dynamic = "force-dynamic";

/** A new signing secret, shown this once; the old one stops working at once. */
export const POST = apiRoute<{ id: string }>("admin", async ({ params, caller }) =>
  Response.json(await rotateWebhookSecret(getDb(), getKeyring(getConfig()), caller, params.id), { headers: { "Cache-Control": "no-store" } }),
);
