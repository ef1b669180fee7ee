"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import type { FormEvent } from "react";
import { Button } from "@/components/ui/button";
import type { EventView } from "@/lib/events";
import type { EventPage } from "@/lib/events/query";
import { formatDateTime } from "@/lib/format";
import { useEventPages, type EventFilters } from "./api";
import { EVENTS_PAGE_SIZE, SEVERITY_LABELS, SEVERITY_TEXT } from "./display";

const selectClass =
  "block w-full rounded-md border-0 px-3 py-2 text-slate-900 shadow-sm ring-1 ring-inset ring-slate-300 focus:ring-2 focus:ring-inset focus:ring-indigo-600 sm:text-sm";

function eventsHref(filters: EventFilters): string {
  const query = new URLSearchParams(Object.entries(filters).filter((e): e is [string, string] => Boolean(e[1]))).toString();
  return query ? `/events?${query}` : "/events";
}

/**
 * The events page: newest first, filtered by type, severity and certificate (in the URL, so a
 * link can point at a filtered view), with older pages on demand; new events appear live.
 */
export function EventList({
  filters,
  initial,
  types,
  certificates,
  certificateLabel,
  problem,
}: {
  filters: EventFilters;
  initial: EventPage;
  types: string[];
  certificates: { id: string; name: string }[];
  /** The name of the certificate filtered by, when it exists. */
  certificateLabel: string | null;
  /** Why the query string was not understood; the page then shows every event. */
  problem: string | null;
}) {
  const router = useRouter();
  const { data, error, fetchNextPage, hasNextPage, isFetchingNextPage } = useEventPages(filters, initial, EVENTS_PAGE_SIZE);
  const events = data.pages.flatMap((p) => p.items);
  const filtered = Boolean(filters.type || filters.severity || filters.certificate);
  const typeChoices = filters.type && !types.includes(filters.type) ? [filters.type, ...types] : types;

  function apply(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const value = (name: string) => String(form.get(name) ?? "").trim() || undefined;
    router.push(eventsHref({ type: value("type"), severity: value("severity"), certificate: value("certificate") }));
  }

  return (
    <div className="space-y-4">
      <h1 className="text-2xl font-bold">Events</h1>

      <form
        key={JSON.stringify(filters)}
        action="/events"
        method="get"
        onSubmit={apply}
        aria-label="Filter events"
        className="grid gap-3 rounded-lg bg-white p-4 ring-1 ring-slate-200 sm:grid-cols-[1fr_1fr_2fr_auto] sm:items-end"
      >
        <div className="space-y-1">
          <label htmlFor="filter-type" className="block text-sm font-medium text-slate-800">
            Type
          </label>
          <select id="filter-type" name="type" defaultValue={filters.type ?? ""} className={selectClass} onChange={(e) => e.currentTarget.form?.requestSubmit()}>
            <option value="">All types</option>
            {typeChoices.map((t) => (
              <option key={t} value={t}>
                {t}
              </option>
            ))}
          </select>
        </div>
        <div className="space-y-1">
          <label htmlFor="filter-severity" className="block text-sm font-medium text-slate-800">
            Severity
          </label>
          <select id="filter-severity" name="severity" defaultValue={filters.severity ?? ""} className={selectClass} onChange={(e) => e.currentTarget.form?.requestSubmit()}>
            <option value="">All severities</option>
            {Object.entries(SEVERITY_LABELS).map(([value, label]) => (
              <option key={value} value={value}>
                {label}
              </option>
            ))}
          </select>
        </div>
        <div className="space-y-1">
          <label htmlFor="filter-certificate" className="block text-sm font-medium text-slate-800">
            Certificate (name or id)
          </label>
          <input id="filter-certificate" name="certificate" list="certificate-names" defaultValue={filters.certificate ?? ""} placeholder="any certificate" className={selectClass} />
          <datalist id="certificate-names">
            {certificates.map((c) => (
              <option key={c.id} value={c.name} />
            ))}
          </datalist>
        </div>
        <div className="flex gap-2">
          <Button type="submit">Filter</Button>
          {filtered ? (
            <Link href="/events" className="inline-flex items-center px-2 text-sm text-indigo-700 hover:underline">
              Clear
            </Link>
          ) : null}
        </div>
      </form>

      {problem ? (
        <p className="rounded-md bg-red-50 px-3 py-2 text-sm text-red-700" data-testid="filter-problem">
          The filter in the address was not understood ({problem}); showing every event.
        </p>
      ) : null}
      {filters.certificate ? (
        <p className="text-sm text-slate-600">
          Events of certificate <span className="font-medium">{certificateLabel ?? filters.certificate}</span>
          {certificateLabel ? null : " (no certificate has that name or id now; events of a deleted one remain)"}.
        </p>
      ) : null}
      {error ? <p className="text-sm text-amber-800">Could not refresh the list: {error.message}</p> : null}

      {events.length === 0 ? (
        <p className="rounded-lg bg-white px-4 py-6 text-sm text-slate-600 ring-1 ring-slate-200" data-testid="events-empty">
          {filtered ? "No events match this filter." : "No events yet."}
        </p>
      ) : (
        <ol className="divide-y divide-slate-100 rounded-lg bg-white text-sm ring-1 ring-slate-200" data-testid="events">
          {events.map((e) => (
            <EventRow key={e.id} event={e} />
          ))}
        </ol>
      )}
      {hasNextPage ? (
        <Button variant="secondary" onClick={() => void fetchNextPage()} disabled={isFetchingNextPage}>
          {isFetchingNextPage ? "Loading…" : "Load older events"}
        </Button>
      ) : null}
    </div>
  );
}

function EventRow({ event: e }: { event: EventView }) {
  return (
    <li className="flex flex-wrap gap-x-3 px-4 py-2" data-event-id={e.id} data-severity={e.severity}>
      <span className="text-slate-500">{formatDateTime(e.at)}</span>
      <span className={`font-mono text-xs leading-5 ${SEVERITY_TEXT[e.severity] ?? ""}`}>
        {e.severity === "info" ? null : <span className="sr-only">{SEVERITY_LABELS[e.severity]}: </span>}
        {e.type}
      </span>
      <span className="min-w-0 flex-1 break-words">{e.message}</span>
      {e.certificateId ? (
        e.certificateName ? (
          <Link href={`/certificates/${e.certificateId}`} className="text-indigo-700 hover:underline">
            {e.certificateName}
          </Link>
        ) : (
          <span className="text-slate-500">deleted certificate</span>
        )
      ) : null}
      {e.listenerId ? (
        e.listenerName ? (
          <Link href={`/listeners/${e.listenerId}`} className="text-indigo-700 hover:underline">
            listener {e.listenerName}
          </Link>
        ) : (
          <span className="text-slate-500">deleted listener</span>
        )
      ) : null}
    </li>
  );
}
