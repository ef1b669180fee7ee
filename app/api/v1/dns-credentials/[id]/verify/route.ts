import { apiRoute } from "@/app/_lib/api";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { dnsSettings, verifyCredential } from "@/lib/dns/credentials";
import { getKeyring } from "@/lib/runtime";

export const dynamic = "force-dynamic";

/** Asks the provider now (the one call the console makes itself) and answers the credential with its new verification. */
export const POST = apiRoute<{ id: string }>("admin", async ({ params, caller }) => {
  const config = getConfig();
  return Response.json(await verifyCredential(getDb(), getKeyring(config), caller, params.id, { settings: dnsSettings(config) }));
});
