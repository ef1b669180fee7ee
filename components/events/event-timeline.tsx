"use client";

import Link from "next/link";
import type { EventPage } from "@/lib/events/query";
import { formatDateTime } from "@/lib/format";
import { useCertificateEvents } from "./api";
import { SEVERITY_TEXT, TIMELINE_LIMIT } from "./display";

/** A certificate's events, newest first, live. */
export function EventTimeline({ certificateId, initial }: { certificateId: string; initial: EventPage }) {
  const { data, error } = useCertificateEvents(certificateId, initial, TIMELINE_LIMIT);
  return (
    <section aria-labelledby="events-heading" className="rounded-lg bg-white ring-1 ring-slate-200">
      <div className="flex flex-wrap items-baseline justify-between gap-2 border-b border-slate-200 px-4 py-3">
        <h2 id="events-heading" className="text-lg font-semibold">
          Timeline
        </h2>
        <Link href={`/events?certificate=${encodeURIComponent(certificateId)}`} className="text-sm text-indigo-700 hover:underline">
          All events of this certificate
        </Link>
      </div>
      {error ? <p className="px-4 py-2 text-sm text-amber-800">Could not refresh the timeline: {error.message}</p> : null}
      <ol className="divide-y divide-slate-100 text-sm" data-testid="timeline">
        {data.items.length === 0 ? <li className="px-4 py-2 text-slate-500">No events.</li> : null}
        {data.items.map((e) => (
          <li key={e.id} className="px-4 py-2" data-event-id={e.id}>
            <span className="text-slate-500">{formatDateTime(e.at)}</span> · <span className={`font-mono text-xs ${SEVERITY_TEXT[e.severity] ?? ""}`}>{e.type}</span> · {e.message}
          </li>
        ))}
      </ol>
    </section>
  );
}
