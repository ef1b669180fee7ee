import Link from "next/link";
import type { AttentionList as Attention, AttentionSeverity } from "@/lib/dashboard";

const SEVERITY: Record<AttentionSeverity, { label: string; style: string }> = {
  critical: { label: "Urgent", style: "bg-red-50 text-red-700 ring-red-600/20" },
  warning: { label: "Warning", style: "bg-amber-50 text-amber-800 ring-amber-600/20" },
  notice: { label: "Notice", style: "bg-slate-100 text-slate-700 ring-slate-500/20" },
};

/** What needs an operator, most urgent first, each with its reason and where to fix it. */
export function AttentionList({ attention }: { attention: Attention }) {
  return (
    <section aria-labelledby="attention-heading" className="space-y-3" data-testid="attention">
      <h2 id="attention-heading" className="text-lg font-semibold">
        Needs attention{attention.total ? <span className="ml-2 text-sm font-normal text-slate-500">({attention.total})</span> : null}
      </h2>
      {attention.items.length === 0 ? (
        <p className="rounded-lg bg-white px-4 py-4 text-sm text-emerald-800 ring-1 ring-slate-200" data-testid="attention-empty">
          Nothing needs you right now.
        </p>
      ) : (
        <ul className="divide-y divide-slate-200 rounded-lg bg-white ring-1 ring-slate-200">
          {attention.items.map((item) => (
            <li key={item.id} className="flex flex-wrap items-start gap-3 px-4 py-3" data-testid="attention-item" data-kind={item.kind} data-severity={item.severity}>
              <span className={`mt-0.5 inline-flex shrink-0 items-center rounded-md px-2 py-0.5 text-xs font-medium ring-1 ring-inset ${SEVERITY[item.severity].style}`}>
                {SEVERITY[item.severity].label}
              </span>
              <div className="min-w-0 flex-1">
                <p className="font-medium break-words">{item.subject}</p>
                <p className="text-sm break-words text-slate-700">{item.reason}</p>
              </div>
              <Link href={item.href} className="basis-full pl-[4.5rem] text-sm text-indigo-700 underline sm:basis-auto sm:shrink-0 sm:pl-0">
                {item.linkText}
                <span className="sr-only">: {item.subject}</span>
              </Link>
            </li>
          ))}
          {attention.omitted.map((o) => (
            <li key={`more-${o.kind}`} className="px-4 py-2 text-sm text-slate-600">
              <Link href={o.href} className="text-indigo-700 underline">
                And {o.label}
              </Link>
            </li>
          ))}
        </ul>
      )}
    </section>
  );
}
