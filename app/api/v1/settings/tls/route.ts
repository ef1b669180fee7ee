import { apiRoute, readJson } from "@/app/_lib/api";
import { getConfig } from "@/lib/config";
import { getConsoleTlsStatus } from "@/lib/console/tls-status";
import { updateTlsSettings } from "@/lib/console/tls-settings";
import { getDb } from "@/lib/db";
import { getKeyring } from "@/lib/runtime";

export const dynamic = "force-dynamic";

const noStore = { headers: { "Cache-Control": "no-store" } };

/** The console's TLS: the mode in force, what it serves, Let's Encrypt and provided-file state, locked fields. */
export const GET = apiRoute("viewer", async () => Response.json(await getConsoleTlsStatus(getDb(), getConfig()), noStore));

/** {mode?, acme?: {enabled, domain?, email?}}: stored, applied live where possible; a field set by the environment → 409. */
export const PUT = apiRoute("admin", async ({ request, caller }) => {
  const config = getConfig();
  return Response.json(await updateTlsSettings(getDb(), getKeyring(config), config, caller, await readJson(request)), noStore);
});
