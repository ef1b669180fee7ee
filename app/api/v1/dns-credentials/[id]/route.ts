import { apiRoute, readJson } from "@/app/_lib/api";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { deleteCredential, dnsSettings, requireCredential, updateCredential } from "@/lib/dns/credentials";
import { getKeyring } from "@/lib/runtime";

export const dynamic = "force-dynamic";

export const GET = apiRoute<{ id: string }>("viewer", async ({ params }) => Response.json(await requireCredential(getDb(), params.id)));

/** {name?, token?}: rename, or replace the token (verified with the provider first; nothing changes when it is refused). */
export const PATCH = apiRoute<{ id: string }>("admin", async ({ request, params, caller }) => {
  const config = getConfig();
  return Response.json(await updateCredential(getDb(), getKeyring(config), caller, params.id, await readJson(request), { settings: dnsSettings(config) }));
});

export const DELETE = apiRoute<{ id: string }>("admin", async ({ params, caller }) => {
  await deleteCredential(getDb(), caller, params.id);
  return Response.json({ deleted: params.id });
});
