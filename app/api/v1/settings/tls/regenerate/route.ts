import { apiRoute } from "@/app/_lib/api";
import { getConfig } from "@/lib/config";
import { regenerateConsoleCertificate } from "@/lib/console/tls-settings";
import { getDb } from "@/lib/db";
import { getKeyring } from "@/lib/runtime";

export const dynamic = "force-dynamic";

/** A new server certificate from the local CA (the same CA, so pinned clients keep trusting), served at once. */
export const POST = apiRoute("admin", async ({ caller }) => {
  const config = getConfig();
  return Response.json(await regenerateConsoleCertificate(getDb(), getKeyring(config), config, caller), { headers: { "Cache-Control": "no-store" } });
});
