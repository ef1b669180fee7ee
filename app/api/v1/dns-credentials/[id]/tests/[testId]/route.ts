import { apiRoute } from "@/app/_lib/api";
import { getDb } from "@/lib/db";
import { getZoneTest } from "@/lib/dns/credentials";
import { notFound } from "@/lib/errors";

export const dynamic = "force-dynamic";

/** A zone test with its steps so far (each step is also an event on /api/v1/events/stream). */
export const GET = apiRoute<{ id: string; testId: string }>("viewer", async ({ params }) => {
  const test = await getZoneTest(getDb(), params.id, params.testId);
  if (!test) throw notFound(`test "${params.testId}" of DNS credential "${params.id}"`);
  return Response.json(test);
});
