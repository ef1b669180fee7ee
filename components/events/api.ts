import { useInfiniteQuery, useQuery, useQueryClient, type QueryKey } from "@tanstack/react-query";
import { useEffect, useRef } from "react";
import type { CertificateDetail } from "@/lib/certificates";
import type { EventPage } from "@/lib/events/query";
import { streamedStatusAfter, useLiveRefetchInterval } from "./live-events";

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

/**
 * A certificate as GET /api/v1/certificates/{id} gives it; the server's render is the first value.
 * renderedAfter: the newest event id when the page was read; a status the stream
 * brought after it, before this page mounted, is shown at once (Pending → Requesting → Active).
 */
export function useCertificate(initial: CertificateDetail, renderedAfter: number) {
  useServerValue(queryKeys.certificate(initial.id), initial);
  const client = useQueryClient();
  useEffect(() => {
    const status = streamedStatusAfter(initial.id, renderedAfter);
    if (status) client.setQueryData<CertificateDetail>(queryKeys.certificate(initial.id), (old) => (old && old.status !== status ? { ...old, status: status as CertificateDetail["status"] } : old));
    // On mount only: a change streamed later lands in the cache directly.
  }, [client, initial.id]); // renderedAfter is the first render's, like initialData
  return useQuery({
    queryKey: queryKeys.certificate(initial.id),
    queryFn: ({ signal }) => getJson<CertificateDetail>(`/api/v1/certificates/${encodeURIComponent(initial.id)}`, signal),
    initialData: initial,
    refetchInterval: useLiveRefetchInterval(),
  });
}

/** The newest events of one certificate (its timeline). */
export function useCertificateEvents(certificateId: string, initial: EventPage, limit: number) {
  const params = { certificate: certificateId, order: "newest", limit: String(limit) };
  useServerValue(queryKeys.events(params), initial);
  return useQuery({
    queryKey: queryKeys.events(params),
    queryFn: ({ signal }) => getJson<EventPage>(`/api/v1/events?${search(params)}`, signal),
    initialData: initial,
    refetchInterval: useLiveRefetchInterval(),
  });
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
