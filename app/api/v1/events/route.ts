import { apiRoute } from "@/app/_lib/api";
import { getDb } from "@/lib/db";
import { listEventPage, parseEventListQuery } from "@/lib/events/query";

export const dynamic = "force-dynamic";

/**
 * Oldest first after `?after=` (a follower's cursor), or newest first with `?order=newest` and
 * `?before=` for older pages. Filters: certificate (id or name), listener, type, severity.
 */
export const GET = apiRoute("viewer", async ({ request }) => {
  const query = parseEventListQuery(new URL(request.url).searchParams);
  return Response.json(await listEventPage(getDb(), query), { headers: { "Cache-Control": "no-store" } });
});
