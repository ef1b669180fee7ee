import { apiRoute, readJson } from "@/app/_lib/api";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { createCredential, dnsSettings, listCredentials } from "@/lib/dns/credentials";
import { getKeyring } from "@/lib/runtime";

export const dynamic = "force-dynamic";

export const GET = apiRoute("viewer", async () => Response.json({ items: await listCredentials(getDb()) }));

/** {name, provider?: "cloudflare", token, verify?: true}: the token is verified with the provider before anything is saved. */
export const POST = apiRoute("admin", async ({ request, caller }) => {
  const config = getConfig();
  const credential = await createCredential(getDb(), getKeyring(config), caller, await readJson(request), { settings: dnsSettings(config) });
  return Response.json(credential, { status: 201, headers: { Location: `/api/v1/dns-credentials/${credential.id}` } });
});
