import Link from "next/link";
import { StatusBadge } from "@/components/ui/badge";
import { linkButtonClass, secondaryLinkClass } from "@/components/ui/button";
import type { CertificateSummary } from "@/lib/certificates";
import { relativeTime, SOURCE_LABELS } from "@/lib/format";

type Page = { items: CertificateSummary[]; nextCursor: string | null; total: number };

export function CertificateList({ page, canCreate }: { page: Page; canCreate: boolean }) {
  return (
    <div className="space-y-4">
      <div className="flex flex-wrap items-center justify-between gap-3">
        <div>
          <h1 className="text-2xl font-bold">Certificates</h1>
          <p className="text-sm text-slate-600">{page.total} in all</p>
        </div>
        {canCreate ? (
          <Link href="/certificates/new" className={linkButtonClass}>
            New certificate
          </Link>
        ) : null}
      </div>
      {page.items.length === 0 ? (
        <p className="rounded-lg bg-white px-4 py-6 text-sm text-slate-600 ring-1 ring-slate-200">No certificates yet.</p>
      ) : (
        <div className="overflow-x-auto rounded-lg bg-white ring-1 ring-slate-200">
          <table className="min-w-full divide-y divide-slate-200 text-sm" data-testid="certificate-table">
            <thead className="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-600">
              <tr>
                <th scope="col" className="px-4 py-3">Name</th>
                <th scope="col" className="hidden px-4 py-3 md:table-cell">Names</th>
                <th scope="col" className="hidden px-4 py-3 sm:table-cell">Source</th>
                <th scope="col" className="px-4 py-3">Status</th>
                <th scope="col" className="px-4 py-3">Expires</th>
              </tr>
            </thead>
            <tbody className="divide-y divide-slate-100">
              {page.items.map((c) => (
                <tr key={c.id}>
                  <td className="px-4 py-3 font-medium">
                    <Link href={`/certificates/${c.id}`} className="text-indigo-700 hover:underline">
                      {c.name}
                    </Link>
                  </td>
                  <td className="hidden max-w-xs truncate px-4 py-3 font-mono text-xs md:table-cell" title={c.domains.join(", ")}>
                    {c.domains.slice(0, 3).join(", ")}
                    {c.domains.length > 3 ? ` +${c.domains.length - 3}` : ""}
                  </td>
                  <td className="hidden px-4 py-3 sm:table-cell">{SOURCE_LABELS[c.source] ?? c.source}</td>
                  <td className="px-4 py-3">
                    <StatusBadge status={c.status} />
                  </td>
                  <td className="px-4 py-3" title={c.notAfter ?? undefined}>
                    {relativeTime(c.notAfter)}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {page.nextCursor ? (
        <Link href={`/certificates?cursor=${encodeURIComponent(page.nextCursor)}`} className={secondaryLinkClass}>
          Next page
        </Link>
      ) : null}
    </div>
  );
}
