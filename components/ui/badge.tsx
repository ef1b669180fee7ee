const STATUS_STYLES: Record<string, string> = {
  active: "bg-emerald-50 text-emerald-700 ring-emerald-600/20",
  pending: "bg-slate-100 text-slate-700 ring-slate-500/20",
  requesting: "bg-sky-50 text-sky-700 ring-sky-600/20",
  renewing: "bg-sky-50 text-sky-700 ring-sky-600/20",
  failed: "bg-red-50 text-red-700 ring-red-600/20",
  expired: "bg-amber-50 text-amber-800 ring-amber-600/20",
};

const LABELS: Record<string, string> = {
  active: "Active",
  pending: "Pending",
  requesting: "Requesting",
  renewing: "Renewing",
  failed: "Failed",
  expired: "Expired",
};

export function StatusBadge({ status }: { status: string }) {
  return (
    <span
      data-testid="status-badge"
      className={`inline-flex items-center rounded-md px-2 py-1 text-xs font-medium ring-1 ring-inset ${STATUS_STYLES[status] ?? STATUS_STYLES.pending}`}
    >
      {LABELS[status] ?? status}
    </span>
  );
}
