import { apiRoute, readJson } from "@/app/_lib/api";
import { getDb } from "@/lib/db";
import { createListener, listListeners } from "@/lib/listeners";

export const dynamic = "force-dynamic";

export const GET = apiRoute("viewer", async () => Response.json({ items: await listListeners(getDb()) }));

export const POST = apiRoute("admin", async ({ request, caller }) => {
  const listener = await createListener(getDb(), caller, await readJson(request));
  return Response.json(listener, { status: 201, headers: { Location: `/api/v1/listeners/${listener.id}` } });
});
