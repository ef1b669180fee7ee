import { useInfiniteQuery, useQuery, useQueryClient, type QueryKey } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import type { CertificateDetail } from "@/lib/certificates";
import type { EventPage } from "@/lib/events/query";
import { takeSteps, type StatusStep, type StepQueue } from "@/lib/events/status-steps";
import { forgetRequested, rememberStatuses, useLiveRefetchInterval, useStatusHistory, wasRequestedHere } from "./live-events";

// The console's reads of the REST API, one hook per resource. Keys are what the live stream
// invalidates: ["certificate", id], ["events", …], ["certificates", …], ["dashboard"].

export const queryKeys = {
  certificate: (id: string) => ["certificate", id] as const,
  events: (params: Record<string, string>) => ["events", params] as const,
  eventPages: (filters: EventFilters) => ["events", "pages", filters] as const,
};

export type EventFilters = { type?: string; severity?: string; certificate?: string };

/** GET a JSON resource; the API's `{ error: { message } }` becomes the thrown Error's message. */
export async function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
  const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store", signal });
  const body = (await response.json().catch(() => null)) as { error?: { message?: string } } | null;
  if (!response.ok) throw new Error(body?.error?.message ?? `the server answered ${response.status}`);
  return body as T;
}

const search = (params: Record<string, string | number | undefined>) =>
  new URLSearchParams(Object.entries(params).filter((e): e is [string, string | number] => e[1] !== undefined && e[1] !== "").map(([k, v]) => [k, String(v)])).toString();

/**
 * A server component rendered again (router.refresh) hands its client children fresher data than
 * the cache may hold: put it in the cache. The first render's value is initialData already.
 */
export function useServerValue(key: QueryKey, value: unknown) {
  const client = useQueryClient();
  const first = useRef(true);
  const keyText = JSON.stringify(key);
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    client.setQueryData(JSON.parse(keyText) as QueryKey, value);
  }, [client, keyText, value]);
}

const NO_STEPS: StatusStep[] = [];

type StepState = StepQueue & { shownAt: number; timer?: ReturnType<typeof setTimeout> };

/** How long a status stays on screen at the least, so that a quick Requesting → Active shows both steps. */
const STATUS_STEP_MS = 700;

/**
 * The status a certificate's badge shows: the server render's (as of renderedAfter, the newest event id
 * when the server read the page), then each status change learnt of since, from the stream or the
 * timeline, in event order, each for STATUS_STEP_MS at least (Pending → Requesting → Active, even when
 * the CA took less time than the page). No query of its own: a refetch of the certificate may be ahead
 * of the stream and would skip steps, and while the stream is down the page's server render, refreshed
 * every few seconds, brings the status. `steps`: the status changes read with the page's latest server
 * render (statusSteps of its timeline): a render that is ahead of the stream brings the steps the stream has
 * not yet delivered, so a status it skipped past (Requesting, between Pending and Active) is still shown. When
 * this tab has just requested the certificate (markRequested), the badge starts at Pending and steps
 * through all of them, since they all happened after the operator's click.
 */
export function useCertificateStatus(
  certificateId: string,
  serverStatus: CertificateDetail["status"],
  renderedAfter: number,
  steps: StatusStep[] = NO_STEPS,
): CertificateDetail["status"] {
  const history = useStatusHistory(certificateId);
  const [replay] = useState(() => wasRequestedHere(certificateId));
  const [shown, setShown] = useState<string>(replay ? "pending" : serverStatus);
  // The server render's status counts as a step just after renderedAfter: events up to it are in it.
  const state = useRef<StepState>(replay ? { shown: "pending", queue: [], shownAt: Date.now(), seen: 0 } : { shown: serverStatus, queue: [], shownAt: 0, seen: renderedAfter + 0.5 });
  useEffect(() => {
    if (replay) forgetRequested(certificateId);
  }, [certificateId, replay]);
  useEffect(() => {
    const s = state.current;
    takeSteps(s, steps, history, [{ eventId: renderedAfter + 0.5, status: serverStatus }]);
    const pump = () => {
      s.timer = undefined;
      const next = s.queue[0];
      if (next === undefined) return;
      const wait = s.shownAt + STATUS_STEP_MS - Date.now();
      if (wait > 0) {
        s.timer = setTimeout(pump, wait);
        return;
      }
      s.queue.shift();
      s.shown = next;
      s.shownAt = Date.now();
      setShown(next);
      if (s.queue.length) pump(); // waits STATUS_STEP_MS for the next step
    };
    if (!s.timer) pump();
  }, [history, steps, renderedAfter, serverStatus]);
  useEffect(() => {
    const s = state.current;
    return () => {
      clearTimeout(s.timer);
      s.timer = undefined;
    };
  }, []);
  return shown as CertificateDetail["status"];
}

/** The newest events of one certificate (its timeline). */
export function useCertificateEvents(certificateId: string, initial: EventPage, limit: number) {
  const params = { certificate: certificateId, order: "newest", limit: String(limit) };
  useServerValue(queryKeys.events(params), initial);
  const query = useQuery({
    queryKey: queryKeys.events(params),
    queryFn: ({ signal }) => getJson<EventPage>(`/api/v1/events?${search(params)}`, signal),
    initialData: initial,
    refetchInterval: useLiveRefetchInterval(),
  });
  // The status changes in it are steps for the certificate's badge, which may not have streamed yet.
  const { data } = query;
  useEffect(() => rememberStatuses(certificateId, data.items), [certificateId, data]);
  return query;
}

/** Newest first, with "load older" pages before the last one shown. */
export function useEventPages(filters: EventFilters, initial: EventPage, limit: number) {
  return useInfiniteQuery({
    queryKey: queryKeys.eventPages(filters),
    queryFn: ({ pageParam, signal }) => getJson<EventPage>(`/api/v1/events?${search({ ...filters, order: "newest", limit, before: pageParam ?? undefined })}`, signal),
    initialPageParam: null as number | null,
    getNextPageParam: (last) => last.nextBefore,
    initialData: { pages: [initial], pageParams: [null] },
    refetchInterval: useLiveRefetchInterval(),
  });
}
