import { apiRoute, readJson } from "@/app/_lib/api";
import { getDb } from "@/lib/db";
import { notFound } from "@/lib/errors";
import { checkView, deleteListener, getListener, listChecks, listMappings, updateListener } from "@/lib/listeners";

export const dynamic = "force-dynamic";

export const GET = apiRoute<{ id: string }>("viewer", async ({ params }) => {
  const db = getDb();
  const listener = await getListener(db, params.id);
  if (!listener) throw notFound("that listener");
  const checks = await listChecks(db, params.id);
  return Response.json({
    ...listener,
    mappings: await listMappings(db, params.id),
    checks: checks.map(checkView),
  });
});

/** A full replacement of the listener's settings (send every field you want kept). */
export const PUT = apiRoute<{ id: string }>("admin", async ({ request, params, caller }) => {
  return Response.json(await updateListener(getDb(), caller, params.id, await readJson(request)));
});

export const DELETE = apiRoute<{ id: string }>("admin", async ({ params, caller }) => {
  const listener = await deleteListener(getDb(), caller, params.id);
  return Response.json({ deleted: listener.id });
});
