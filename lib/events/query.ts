import { z } from "zod";
import type { Db } from "../db";
import type { EventSeverity } from "../db/schema";
import { AppError } from "../errors";
import type { EventFilter } from "./feed";
import { EVENT_SEVERITIES, listEvents, type EventView } from "./index";

// The query parameters of the events list, the SSE stream and the events page: one schema, so that
// a link to a filtered page and an API call mean the same thing.

const eventId = (name: string) =>
  z.coerce.number({ error: `${name} must be an event id (a whole number)` }).int(`${name} must be an event id (a whole number)`).min(0, `${name} must be 0 or more`);

const optionalText = (name: string, max: number) =>
  z
    .string()
    .trim()
    .max(max, `${name} is longer than ${max} characters`)
    .optional()
    .transform((v) => v || undefined);

export const eventFilterSchema = z.object({
  certificate: optionalText("certificate", 200),
  listener: optionalText("listener", 100),
  type: optionalText("type", 100).refine((v) => v === undefined || /^[a-z0-9_.-]+$/i.test(v), "type may only contain letters, digits, '.', '_' and '-' (e.g. tls.issued)"),
  severity: z.enum(EVENT_SEVERITIES as [EventSeverity, ...EventSeverity[]], { error: `severity must be one of ${EVENT_SEVERITIES.join(", ")}` }).optional(),
});

export const eventListQuerySchema = eventFilterSchema.extend({
  after: eventId("after").optional(),
  before: eventId("before").optional(),
  order: z.enum(["oldest", "newest"], { error: "order must be oldest or newest" }).optional(),
  limit: z.coerce.number({ error: "limit must be a number" }).int("limit must be a whole number").min(1, "limit must be between 1 and 500").max(500, "limit must be between 1 and 500").default(100),
});

export type EventListQuery = z.output<typeof eventListQuerySchema>;
/** What the list functions take: the parsed query, or one built in code. */
export type EventPageRequest = Partial<Omit<EventListQuery, "limit">> & { limit: number };

const describeIssues = (error: z.ZodError) => error.issues.map((i) => `${i.path.join(".") || "query"}: ${i.message}`).join("; ");

/** Checks URL search parameters; an empty one counts as absent, a repeated one counts once. */
export function checkEventListQuery(params: URLSearchParams | Record<string, string | string[] | undefined>): { ok: true; query: EventListQuery } | { ok: false; message: string } {
  const entries = params instanceof URLSearchParams ? [...params] : Object.entries(params).map(([k, v]) => [k, Array.isArray(v) ? v[0] : v] as const);
  const parsed = eventListQuerySchema.safeParse(Object.fromEntries(entries.filter(([, v]) => v !== undefined && v !== "")));
  return parsed.success ? { ok: true, query: parsed.data } : { ok: false, message: describeIssues(parsed.error) };
}

/** For the API: a bad parameter is a 400 with every problem named. */
export function parseEventListQuery(params: URLSearchParams): EventListQuery {
  const checked = checkEventListQuery(params);
  if (!checked.ok) throw new AppError("validation_failed", checked.message);
  return checked.query;
}

export function parseLastEventId(header: string | null): number | undefined {
  if (header === null || header.trim() === "") return undefined;
  const parsed = eventId("Last-Event-ID").safeParse(header.trim());
  if (!parsed.success) throw new AppError("validation_failed", parsed.error.issues.map((i) => i.message).join("; "));
  return parsed.data;
}

/**
 * The filter for a query. A certificate may be named by id or by name; a value that matches no
 * certificate is taken as the id of a deleted one, whose events remain.
 */
export async function resolveEventFilter(db: Db, query: Partial<Pick<EventListQuery, "certificate" | "listener" | "type" | "severity">>): Promise<EventFilter> {
  let certificateId = query.certificate;
  if (certificateId) {
    const row = await db
      .selectFrom("certificates")
      .select("id")
      .where((eb) => eb.or([eb("id", "=", certificateId!), eb("name", "=", certificateId!)]))
      .orderBy("created_at")
      .executeTakeFirst();
    certificateId = row?.id ?? certificateId;
  }
  return { certificateId, listenerId: query.listener, type: query.type, severity: query.severity };
}

export type EventPage = {
  items: EventView[];
  /** The newest id in this page (or the `after` asked for): where a follower continues. */
  cursor: number | null;
  /** Newest first: the `before` of the next, older page; null on the last page. */
  nextBefore: number | null;
};

/** Oldest first after a cursor (the default), or newest first (order=newest, or any `before`). */
export async function listEventPage(db: Db, query: EventPageRequest): Promise<EventPage> {
  const filter = await resolveEventFilter(db, query);
  const newestFirst = query.order ? query.order === "newest" : query.before !== undefined;
  const rows = await listEvents(db, { ...filter, after: query.after, before: query.before, newestFirst, limit: query.limit + 1 });
  const items = rows.slice(0, query.limit);
  const newest = newestFirst ? items[0]?.id : items.at(-1)?.id;
  return {
    items,
    cursor: newest ?? query.after ?? null,
    nextBefore: newestFirst && rows.length > query.limit ? items.at(-1)!.id : null,
  };
}
