import { apiRoute } from "@/app/_lib/api";
import { deleteAccount, getAccount } from "@/lib/acme/accounts";
import { getDb } from "@/lib/db";
import { notFound } from "@/lib/errors";

export const dynamic = "force-dynamic";

export const GET = apiRoute<{ id: string }>("viewer", async ({ params }) => {
  const account = await getAccount(getDb(), params.id);
  if (!account) throw notFound(`ACME account "${params.id}"`);
  return Response.json(account);
});

export const DELETE = apiRoute<{ id: string }>("admin", async ({ params, caller }) => {
  await deleteAccount(getDb(), caller, params.id);
  return Response.json({ deleted: params.id });
});
