import { apiRoute } from "@/app/_lib/api";
import { getDb } from "@/lib/db";
import { latestEventId } from "@/lib/events";
import { parseEventListQuery, parseLastEventId, resolveEventFilter } from "@/lib/events/query";
import { EVENT_STREAM_HEADERS, eventStream } from "@/lib/events/stream";
import { logger } from "@/lib/log";
import { isApiTokenActive } from "@/lib/tokens";
import { getUser } from "@/lib/users";

export const dynamic = "force-dynamic";

/**
 * Server-Sent Events: every event as it is recorded. Starts after the Last-Event-ID header (a
 * reconnect), else after `?after=`, else now. Filters as the list: certificate, listener, type,
 * severity.
 */
export const GET = apiRoute("viewer", async ({ request, caller }) => {
  const db = getDb();
  const query = parseEventListQuery(new URL(request.url).searchParams);
  const resumeAt = parseLastEventId(request.headers.get("last-event-id"));
  const filter = await resolveEventFilter(db, query);
  const after = resumeAt ?? query.after ?? (await latestEventId(db));
  const body = eventStream(db, {
    after,
    filter,
    signal: request.signal,
    stillAllowed: async () => Boolean(await getUser(db, caller.id)) && (!caller.tokenId || (await isApiTokenActive(db, caller.tokenId))),
    onError: (err) => logger().warn({ err }, "reading events for a live stream failed; retrying at the next change"),
  });
  return new Response(body, { headers: EVENT_STREAM_HEADERS });
});
