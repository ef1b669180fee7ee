import { apiRoute } from "@/app/_lib/api";
import { getAccount, setDefaultAccount } from "@/lib/acme/accounts";
import { getDb } from "@/lib/db";

export const dynamic = "force-dynamic";

/** New certificates use the default account unless they name another. */
export const POST = apiRoute<{ id: string }>("admin", async ({ params, caller }) => {
  await setDefaultAccount(getDb(), caller, params.id);
  return Response.json(await getAccount(getDb(), params.id));
});
