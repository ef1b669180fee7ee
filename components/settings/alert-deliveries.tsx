import type { DeliveryView } from "@/lib/alerts/webhooks";
import { formatDateTime } from "@/lib/format";

const STATUS_CLASS: Record<string, string> = {
  delivered: "bg-emerald-50 text-emerald-700",
  pending: "bg-sky-50 text-sky-700",
  failed: "bg-red-50 text-red-700",
};

/** A webhook's recent deliveries, each with its last attempt's result. */
export function AlertDeliveries({ deliveries }: { deliveries: DeliveryView[] }) {
  if (!deliveries.length) return <p className="text-sm text-slate-600">No deliveries yet. Press Send test to try the webhook.</p>;
  return (
    <div className="overflow-x-auto">
      <table className="min-w-full divide-y divide-slate-200 text-sm" data-testid="deliveries">
        <caption className="sr-only">Recent deliveries</caption>
        <thead className="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-600">
          <tr>
            <th scope="col" className="px-3 py-2">Time</th>
            <th scope="col" className="px-3 py-2">Type</th>
            <th scope="col" className="px-3 py-2">Problem</th>
            <th scope="col" className="px-3 py-2">Status</th>
            <th scope="col" className="px-3 py-2">HTTP</th>
            <th scope="col" className="px-3 py-2">Error</th>
            <th scope="col" className="px-3 py-2">Attempts</th>
            <th scope="col" className="px-3 py-2">Duration</th>
          </tr>
        </thead>
        <tbody className="divide-y divide-slate-100">
          {deliveries.map((d) => (
            <tr key={d.id} data-testid="delivery" data-id={d.id} data-status={d.status}>
              <td className="whitespace-nowrap px-3 py-2">{formatDateTime(d.createdAt)}</td>
              <td className="px-3 py-2 font-mono text-xs">
                {d.type}
                {d.test ? <span className="ml-1 rounded bg-slate-100 px-1 font-sans text-slate-600">test</span> : null}
              </td>
              <td className="max-w-[14rem] truncate px-3 py-2 font-mono text-xs" title={d.problemKey}>
                {d.test ? "—" : d.problemKey}
              </td>
              <td className="px-3 py-2">
                <span className={`rounded-md px-2 py-0.5 text-xs font-medium ${STATUS_CLASS[d.status] ?? ""}`} data-testid="delivery-status">
                  {d.status}
                </span>
                {d.status === "pending" && d.nextAttemptAt ? <span className="block text-xs text-slate-500">next try {formatDateTime(d.nextAttemptAt)}</span> : null}
              </td>
              <td className="px-3 py-2 font-mono" data-testid="delivery-http">
                {d.lastStatusCode ?? "—"}
              </td>
              <td className="max-w-[20rem] px-3 py-2 text-xs text-red-700" data-testid="delivery-error">
                {d.lastError ?? ""}
              </td>
              <td className="px-3 py-2">{d.attempts}</td>
              <td className="whitespace-nowrap px-3 py-2">{d.lastDurationMs === null ? "—" : `${d.lastDurationMs} ms`}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
