import { apiRoute, readJson } from "@/app/_lib/api";
import { createAccount, listAccounts } from "@/lib/acme/accounts";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { getKeyring } from "@/lib/runtime";

export const dynamic = "force-dynamic";

export const GET = apiRoute("viewer", async () => Response.json({ items: await listAccounts(getDb()) }));

export const POST = apiRoute("admin", async ({ request, caller }) => {
  const account = await createAccount(getDb(), getKeyring(getConfig()), caller, await readJson(request));
  return Response.json(account, { status: 201, headers: { Location: `/api/v1/acme/accounts/${account.id}` } });
});
