import { apiRoute, readJson } from "@/app/_lib/api";
import { getDb } from "@/lib/db";
import { notFound } from "@/lib/errors";
import { getListener, listMappings, setMappings } from "@/lib/listeners";

export const dynamic = "force-dynamic";

export const GET = apiRoute<{ id: string }>("viewer", async ({ params }) => {
  if (!(await getListener(getDb(), params.id))) throw notFound("that listener");
  return Response.json({ mappings: await listMappings(getDb(), params.id) });
});

/** Replaces every mapping: {"mappings":[{"hostname":"example.com","certificateId":"crt_…"}]}. */
export const PUT = apiRoute<{ id: string }>("admin", async ({ request, params, caller }) => {
  return Response.json(await setMappings(getDb(), caller, params.id, await readJson(request)));
});
