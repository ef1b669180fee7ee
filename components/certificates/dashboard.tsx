"use client";

import Link from "next/link";
import { AttentionList } from "@/components/dashboard/attention-list";
import { ExpiryTimeline } from "@/components/dashboard/expiry-timeline";
import { useDashboard } from "@/components/dashboard/use-dashboard";
import { StatusBadge } from "@/components/ui/badge";
import type { DashboardOverview } from "@/lib/dashboard";
import { CERTIFICATE_STATUSES } from "@/lib/db/schema";
import { relativeTime, SOURCE_LABELS } from "@/lib/format";

/** Counts, what needs attention, the 90-day timeline and the soonest expiries; kept current by the live stream. */
export function Dashboard({ initial }: { initial: DashboardOverview }) {
  const { data } = useDashboard(initial);
  const { summary, timeline, attention } = data;
  // Relative times are computed against the data's own clock: the server's render and the browser's agree.
  const now = new Date(data.generatedAt);
  return (
    <div className="space-y-8">
      <h1 className="text-2xl font-bold">Dashboard</h1>
      <section aria-labelledby="counts-heading">
        <h2 id="counts-heading" className="sr-only">
          Certificates by status
        </h2>
        <dl className="grid grid-cols-2 gap-3 sm:grid-cols-4 lg:grid-cols-7">
          <Count label="All certificates" value={summary.total} testId="count-total" />
          {CERTIFICATE_STATUSES.map((s) => (
            <Count key={s} label={s[0].toUpperCase() + s.slice(1)} value={summary.byStatus[s] ?? 0} testId={`count-${s}`} />
          ))}
        </dl>
        {summary.expiringWithin30Days > 0 ? (
          <p className="mt-3 text-sm text-amber-800">
            {summary.expiringWithin30Days} certificate{summary.expiringWithin30Days === 1 ? "" : "s"} expire within 30 days.
          </p>
        ) : null}
      </section>
      <AttentionList attention={attention} />
      <ExpiryTimeline timeline={timeline} generatedAt={data.generatedAt} />
      <section aria-labelledby="soonest-heading" className="space-y-3">
        <h2 id="soonest-heading" className="text-lg font-semibold">
          Expiring soonest
        </h2>
        {summary.soonest.length === 0 ? (
          <p className="text-sm text-slate-600">
            No certificates yet.{" "}
            <Link className="text-indigo-700 underline" href="/certificates/new">
              Create one
            </Link>
            .
          </p>
        ) : (
          <ul className="divide-y divide-slate-200 rounded-lg bg-white ring-1 ring-slate-200">
            {summary.soonest.map((c) => (
              <li key={c.id} className="flex flex-wrap items-center justify-between gap-2 px-4 py-3">
                <div>
                  <Link href={`/certificates/${c.id}`} className="font-medium text-indigo-700 hover:underline">
                    {c.name}
                  </Link>
                  <p className="text-xs text-slate-500">{SOURCE_LABELS[c.source] ?? c.source}</p>
                </div>
                <div className="flex items-center gap-3 text-sm">
                  <span>
                    {c.notAfter && Date.parse(c.notAfter) < now.getTime() ? "expired " : "expires "}
                    {relativeTime(c.notAfter, now)}
                  </span>
                  <StatusBadge status={c.status} />
                </div>
              </li>
            ))}
          </ul>
        )}
      </section>
    </div>
  );
}

function Count({ label, value, testId }: { label: string; value: number; testId: string }) {
  return (
    <div className="rounded-lg bg-white px-4 py-3 ring-1 ring-slate-200">
      <dt className="text-xs text-slate-500">{label}</dt>
      <dd className="text-2xl font-semibold" data-testid={testId}>
        {value}
      </dd>
    </div>
  );
}
