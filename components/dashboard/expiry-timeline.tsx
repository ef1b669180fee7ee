import Link from "next/link";
import type { ExpiryTimeline as Timeline, TimelineBucket, TimelineEntry } from "@/lib/dashboard";

// The next 90 days as HTML bars: per day on wide screens, per week on narrow ones. Each bar is a
// button whose popup (on hover and on keyboard focus) names the certificates and links to them;
// the same facts are in the sentence under the chart and in the table behind "Show as a table".

const DAY_MS = 86_400_000;
const TABLE_ROWS = 300;
const POPUP_NAMES = 12;

const STYLE = {
  renewal: "bg-sky-500",
  expiry: "bg-rose-500",
  // Stripes as well as colour: manual expiries stay distinct without colour vision.
  manual: "bg-amber-400",
} as const;
const MANUAL_STRIPES = { backgroundImage: "repeating-linear-gradient(135deg, transparent 0, transparent 3px, rgba(120, 53, 15, 0.5) 3px, rgba(120, 53, 15, 0.5) 5px)" };

const plural = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`;
const expiriesText = (n: number) => plural(n, "expiry", "expiries");
const renewalsText = (n: number) => plural(n, "planned renewal", "planned renewals");

function shortDate(key: string): string {
  return new Date(`${key}T00:00:00Z`).toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });
}

function longDate(key: string): string {
  return new Date(`${key}T00:00:00Z`).toLocaleDateString("en-US", { weekday: "short", month: "short", day: "numeric", year: "numeric", timeZone: "UTC" });
}

type Bar = TimelineBucket & { label: string; title: string };

function describe(bar: TimelineBucket): string {
  const parts: string[] = [];
  if (bar.expiries) parts.push(`${expiriesText(bar.expiries)}${bar.manualExpiries ? ` (${bar.manualExpiries} manual)` : ""}`);
  if (bar.renewals) parts.push(renewalsText(bar.renewals));
  return parts.join(", ") || "nothing";
}

function weeks(days: TimelineBucket[]): Bar[] {
  const out: Bar[] = [];
  for (let i = 0; i < days.length; i += 7) {
    const slice = days.slice(i, i + 7);
    const first = slice[0].key;
    const last = slice.at(-1)!.key;
    out.push({
      key: first,
      expiries: slice.reduce((n, d) => n + d.expiries, 0),
      manualExpiries: slice.reduce((n, d) => n + d.manualExpiries, 0),
      renewals: slice.reduce((n, d) => n + d.renewals, 0),
      entries: slice.flatMap((d) => d.entries),
      label: shortDate(first),
      title: `${shortDate(first)} – ${shortDate(last)}`,
    });
  }
  return out;
}

export function ExpiryTimeline({ timeline, generatedAt }: { timeline: Timeline; generatedAt: string }) {
  const { totals, overdue } = timeline;
  const days: Bar[] = timeline.days.map((d) => ({ ...d, label: shortDate(d.key), title: longDate(d.key) }));
  const byWeek = weeks(timeline.days);
  const empty = totals.expiries + totals.renewals + overdue.expiries + overdue.renewals === 0;
  const start = Date.parse(`${timeline.startDay}T00:00:00Z`);
  const todayAt = Math.min(1, Math.max(0, (Date.parse(generatedAt) - start) / DAY_MS));

  return (
    <section aria-labelledby="timeline-heading" className="space-y-3" data-testid="expiry-timeline">
      <div className="flex flex-wrap items-baseline justify-between gap-2">
        <h2 id="timeline-heading" className="text-lg font-semibold">
          Expiry timeline
        </h2>
        <p className="text-xs text-slate-500">Next 90 days, UTC</p>
      </div>
      <p className="text-sm text-slate-700" data-testid="timeline-summary">
        Next 90 days: {expiriesText(totals.expiries)}
        {totals.manualExpiries ? ` (${totals.manualExpiries} manual)` : ""}, {renewalsText(totals.renewals)}.
        {overdue.expiries + overdue.renewals > 0 ? (
          <>
            {" "}
            Overdue: {plural(overdue.expiries, "certificate expired", "certificates expired")}, {plural(overdue.renewals, "renewal", "renewals")} past due.
          </>
        ) : null}
      </p>
      {empty ? (
        <p className="rounded-lg bg-white px-4 py-6 text-center text-sm text-slate-600 ring-1 ring-slate-200" data-testid="timeline-empty">
          Nothing expires or renews in the next 90 days.
        </p>
      ) : (
        <div className="rounded-lg bg-white p-4 ring-1 ring-slate-200">
          <Legend />
          <div className="mt-4 hidden sm:block" data-testid="timeline-days">
            <Chart bars={days} overdue={overdue} todayAt={todayAt / days.length} axisEvery={7} unit="day" />
          </div>
          <div className="mt-4 sm:hidden" data-testid="timeline-weeks">
            <Chart bars={byWeek} overdue={overdue} todayAt={todayAt / 7 / byWeek.length} axisEvery={2} unit="week" />
          </div>
        </div>
      )}
      {empty ? null : <TimelineTable timeline={timeline} />}
    </section>
  );
}

function Legend() {
  const item = (style: string, text: string, striped = false) => (
    <li className="flex items-center gap-2">
      <span aria-hidden="true" className={`inline-block h-3 w-3 rounded-sm ${style}`} style={striped ? MANUAL_STRIPES : undefined} />
      {text}
    </li>
  );
  return (
    <ul className="flex flex-wrap gap-x-5 gap-y-1 text-xs text-slate-700" aria-label="Legend">
      {item(STYLE.renewal, "Planned renewal (automatic, ACME)")}
      {item(STYLE.expiry, "Expiry (renewed automatically)")}
      {item(STYLE.manual, "Expiry, manual: uploaded, on disk or self-signed — nothing renews it", true)}
      <li className="flex items-center gap-2">
        <span aria-hidden="true" className="inline-block h-3 w-0.5 bg-slate-900" />
        Now
      </li>
    </ul>
  );
}

function Chart({ bars, overdue, todayAt, axisEvery, unit }: { bars: Bar[]; overdue: TimelineBucket; todayAt: number; axisEvery: number; unit: "day" | "week" }) {
  const max = Math.max(1, ...bars.map((b) => b.expiries + b.renewals));
  return (
    <div className="flex gap-3">
      <div className="flex w-16 shrink-0 flex-col">
        <div className="h-40">
          <Column
            bar={{ ...overdue, label: "Overdue", title: "Overdue: expired, or past the planned renewal time" }}
            max={Math.max(1, overdue.expiries + overdue.renewals)}
            align="left"
            testId={`timeline-overdue-${unit}`}
            overdueStyle
          />
        </div>
        <p className="mt-1 text-center text-xs font-medium text-red-700">Overdue</p>
      </div>
      <div className="relative min-w-0 flex-1">
        <div className="relative h-40 border-b border-l border-slate-300">
          <div className="grid h-full items-end gap-px" style={{ gridTemplateColumns: `repeat(${bars.length}, minmax(0, 1fr))` }}>
            {bars.map((bar, i) => (
              <Column key={bar.key} bar={bar} max={max} align={i < bars.length / 2 ? "left" : "right"} testId={`timeline-${unit}-${bar.key}`} />
            ))}
          </div>
          <div aria-hidden="true" className="pointer-events-none absolute inset-y-0 w-0.5 bg-slate-900" style={{ left: `${todayAt * 100}%` }} data-testid={`timeline-now-${unit}`}>
            <span className="absolute -top-1 left-1 -translate-y-full whitespace-nowrap text-[10px] font-semibold text-slate-900">Now</span>
          </div>
        </div>
        <div aria-hidden="true" className="relative h-5 text-[10px] text-slate-500">
          {bars.map((bar, i) =>
            i % axisEvery === 0 ? (
              <span key={bar.key} className="absolute top-1 whitespace-nowrap" style={{ left: `${(i / bars.length) * 100}%` }}>
                <span className="absolute -top-1 left-0 h-1 w-px bg-slate-400" />
                {i === 0 ? "Today" : bar.label}
              </span>
            ) : null,
          )}
        </div>
      </div>
    </div>
  );
}

function Column({ bar, max, align, testId, overdueStyle }: { bar: Bar; max: number; align: "left" | "right"; testId: string; overdueStyle?: boolean }) {
  const total = bar.expiries + bar.renewals;
  if (total === 0) return <div className="h-full" data-testid={testId} data-count="0" />;
  const autoExpiries = bar.expiries - bar.manualExpiries;
  const height = (n: number) => (n ? `max(3px, ${(n / max) * 100}%)` : "0");
  const popupId = `popup-${testId}`;
  return (
    <div className="group relative flex h-full flex-col justify-end" data-testid={testId} data-count={total}>
      <button
        type="button"
        aria-label={`${bar.title}: ${describe(bar)}`}
        aria-describedby={popupId}
        className={`flex h-full w-full flex-col justify-end rounded-t-sm focus:outline-none focus-visible:ring-2 focus-visible:ring-indigo-600 ${overdueStyle ? "bg-red-50" : "hover:bg-slate-100"}`}
      >
        <span className={`block w-full ${STYLE.renewal}`} style={{ height: height(bar.renewals) }} />
        <span className={`block w-full ${STYLE.expiry}`} style={{ height: height(autoExpiries) }} />
        <span className={`block w-full ${STYLE.manual}`} style={{ ...MANUAL_STRIPES, height: height(bar.manualExpiries) }} />
      </button>
      <div
        role="tooltip"
        id={popupId}
        className={`absolute bottom-full z-30 hidden w-72 pb-2 group-focus-within:block group-hover:block ${align === "left" ? "left-0" : "right-0"}`}
      >
        <div className="rounded-md bg-white p-3 text-left text-xs text-slate-800 shadow-lg ring-1 ring-slate-300">
          <p className="font-semibold">{bar.title}</p>
          <p className="text-slate-600">{describe(bar)}</p>
          <EntryList bar={bar} />
        </div>
      </div>
    </div>
  );
}

function entryText(e: TimelineEntry): string {
  if (e.kind === "renewal") return "renewal planned";
  return e.manual ? "expires — manual" : "expires";
}

function EntryList({ bar }: { bar: TimelineBucket }) {
  const shown = bar.entries.slice(0, POPUP_NAMES);
  const unnamed = bar.expiries + bar.renewals - shown.length;
  return (
    <ul className="mt-2 space-y-1">
      {shown.map((e) => (
        <li key={`${e.kind}-${e.id}`} className="flex justify-between gap-2">
          <Link href={`/certificates/${e.id}`} className="truncate text-indigo-700 underline">
            {e.name}
          </Link>
          <span className={`shrink-0 ${e.manual && e.kind === "expiry" ? "font-medium text-amber-800" : "text-slate-500"}`}>{entryText(e)}</span>
        </li>
      ))}
      {unnamed > 0 ? <li className="text-slate-500">and {unnamed} more</li> : null}
    </ul>
  );
}

/** The chart's text alternative: every listed item with its date, behind a disclosure. */
function TimelineTable({ timeline }: { timeline: Timeline }) {
  type Row = { when: string; entry: TimelineEntry } | { when: string; more: number };
  const rows: Row[] = [];
  for (const bucket of [timeline.overdue, ...timeline.days]) {
    const when = bucket.key === "overdue" ? "Overdue" : shortDate(bucket.key);
    for (const entry of bucket.entries) rows.push({ when, entry });
    const more = bucket.expiries + bucket.renewals - bucket.entries.length;
    if (more > 0) rows.push({ when, more });
  }
  const shown = rows.slice(0, TABLE_ROWS);
  return (
    <details className="rounded-lg bg-white px-4 py-3 text-sm ring-1 ring-slate-200" data-testid="timeline-details">
      <summary className="cursor-pointer font-medium text-indigo-700">Show the timeline as a table</summary>
      <table className="mt-3 w-full text-left text-sm" data-testid="timeline-table">
        <caption className="sr-only">Expiries and planned renewals in the next 90 days, and what is overdue</caption>
        <thead className="text-xs text-slate-500">
          <tr>
            <th scope="col" className="py-1 pr-3 font-medium">
              Date (UTC)
            </th>
            <th scope="col" className="py-1 pr-3 font-medium">
              Certificate
            </th>
            <th scope="col" className="py-1 font-medium">
              What happens
            </th>
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-100">
          {shown.map((row, i) =>
            "entry" in row ? (
              <tr key={`${row.entry.kind}-${row.entry.id}-${i}`} data-testid="timeline-row">
                <td className="py-1 pr-3 whitespace-nowrap">{row.when}</td>
                <td className="py-1 pr-3">
                  <Link href={`/certificates/${row.entry.id}`} className="text-indigo-700 underline">
                    {row.entry.name}
                  </Link>
                </td>
                <td className="py-1">{describeEntry(row.entry, row.when === "Overdue")}</td>
              </tr>
            ) : (
              <tr key={`more-${i}`}>
                <td className="py-1 pr-3 whitespace-nowrap">{row.when}</td>
                <td className="py-1 text-slate-500" colSpan={2}>
                  and {row.more} more
                </td>
              </tr>
            ),
          )}
        </tbody>
      </table>
      {rows.length > shown.length ? <p className="mt-2 text-xs text-slate-500">The first {TABLE_ROWS} rows are shown; the certificate list has the rest.</p> : null}
    </details>
  );
}

function describeEntry(e: TimelineEntry, overdue: boolean): string {
  const time = e.at.slice(11, 16);
  if (e.kind === "renewal") return overdue ? `Renewal was due ${e.at.slice(0, 10)} ${time}` : `Renewal planned at ${time}`;
  if (overdue) return `Expired ${e.at.slice(0, 10)}${e.manual ? " — manual renewal needed" : ""}`;
  return `Expires at ${time}${e.manual ? " — manual: nothing renews it" : ""}`;
}
