import type { Metadata } from "next";
import Link from "next/link";
import { getDb } from "@/lib/db";
import { listEvents } from "@/lib/events";
import { formatDateTime } from "@/lib/format";

export const metadata: Metadata = { title: "Events" };

const SEVERITY: Record<string, string> = {
  info: "text-slate-600",
  warning: "text-amber-700",
  error: "text-red-700",
};

export default async function EventsPage() {
  const events = await listEvents(getDb(), { newestFirst: true, limit: 200 });
  return (
    <div className="space-y-4">
      <h1 className="text-2xl font-bold">Events</h1>
      {events.length === 0 ? (
        <p className="rounded-lg bg-white px-4 py-6 text-sm text-slate-600 ring-1 ring-slate-200">No events yet.</p>
      ) : (
        <ol className="divide-y divide-slate-100 rounded-lg bg-white text-sm ring-1 ring-slate-200" data-testid="events">
          {events.map((e) => (
            <li key={e.id} className="flex flex-wrap gap-x-3 px-4 py-2">
              <span className="text-slate-500">{formatDateTime(e.at)}</span>
              <span className={`font-mono text-xs leading-5 ${SEVERITY[e.severity] ?? ""}`}>{e.type}</span>
              <span>{e.message}</span>
              {e.certificateId ? (
                <Link href={`/certificates/${e.certificateId}`} className="text-indigo-700 hover:underline">
                  certificate
                </Link>
              ) : null}
            </li>
          ))}
        </ol>
      )}
    </div>
  );
}
