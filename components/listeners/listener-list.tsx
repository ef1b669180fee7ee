import Link from "next/link";
import { linkButtonClass } from "@/components/ui/button";
import type { ListenerView } from "@/lib/listeners";
import { unverifiedUpstream } from "@/lib/listeners/unverified";
import { formatAddress } from "./data";
import { EnabledBadge, KIND_LABELS } from "./labels";

export type ListenerRow = ListenerView & { mappingCount: number };

export function ListenerList({ listeners, canCreate }: { listeners: ListenerRow[]; canCreate: boolean }) {
  return (
    <div className="space-y-4">
      <div className="flex flex-wrap items-center justify-between gap-3">
        <div>
          <h1 className="text-2xl font-bold">Listeners</h1>
          <p className="text-sm text-slate-600">Where the edge serves your certificates (HTTPS, by SNI name) and answers plain HTTP.</p>
        </div>
        {canCreate ? (
          <Link href="/listeners/new" className={linkButtonClass}>
            New listener
          </Link>
        ) : null}
      </div>
      {listeners.length === 0 ? (
        <p className="rounded-lg bg-white px-4 py-6 text-sm text-slate-600 ring-1 ring-slate-200" data-testid="listeners-empty">
          No listeners yet.{canCreate ? " Create one to serve certificates on a port of this machine." : " An admin can create one."}
        </p>
      ) : (
        <div className="overflow-x-auto rounded-lg bg-white ring-1 ring-slate-200">
          <table className="min-w-full divide-y divide-slate-200 text-sm" data-testid="listener-table">
            <thead className="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-600">
              <tr>
                <th scope="col" className="px-4 py-3">Name</th>
                <th scope="col" className="px-4 py-3">Kind</th>
                <th scope="col" className="px-4 py-3">Address</th>
                <th scope="col" className="hidden px-4 py-3 md:table-cell">Upstream / action</th>
                <th scope="col" className="px-4 py-3">State</th>
                <th scope="col" className="px-4 py-3 text-right">Mappings</th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {listeners.map((l) => (
                <tr key={l.id}>
                  <td className="px-4 py-3 font-medium">
                    <Link href={`/listeners/${l.id}`} className="text-indigo-700 hover:underline">
                      {l.name}
                    </Link>
                  </td>
                  <td className="px-4 py-3">{KIND_LABELS[l.kind]}</td>
                  <td className="px-4 py-3 font-mono text-xs">{formatAddress(l.bindAddress, l.port)}</td>
                  <td className="hidden max-w-xs truncate px-4 py-3 md:table-cell" title={l.upstreamUrl ?? undefined}>
                    {upstreamOrAction(l)}
                  </td>
                  <td className="px-4 py-3">
                    <EnabledBadge enabled={l.enabled} />
                  </td>
                  <td className="px-4 py-3 text-right tabular-nums">{l.kind === "https" ? l.mappingCount : "—"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

export function upstreamOrAction(l: ListenerView): string {
  if (l.kind === "https" || l.httpAction === "proxy") return `proxy to ${l.upstreamUrl ?? "—"}${unverifiedUpstream(l) ? " (its certificate is not verified)" : ""}`;
  return `redirect to HTTPS${l.redirectPort && l.redirectPort !== 443 ? ` (port ${l.redirectPort})` : ""}`;
}
