export const KIND_LABELS: Record<string, string> = { https: "HTTPS", http: "HTTP" };

export const FALLBACK_LABELS: Record<string, string> = {
  self_signed: "serve a self-signed fallback certificate",
  refuse: "refuse the connection",
};

export function EnabledBadge({ enabled }: { enabled: boolean }) {
  return (
    <span
      data-testid="listener-state"
      className={`inline-flex items-center rounded-md px-2 py-1 text-xs font-medium ring-1 ring-inset ${
        enabled ? "bg-emerald-50 text-emerald-700 ring-emerald-600/20" : "bg-slate-100 text-slate-700 ring-slate-500/20"
      }`}
    >
      {enabled ? "Enabled" : "Disabled"}
    </span>
  );
}

export function certificateOptionLabel(c: { name: string; domains: string[]; status: string }): string {
  const names = c.domains.slice(0, 2).join(", ") + (c.domains.length > 2 ? ` +${c.domains.length - 2}` : "");
  return `${c.name} — ${names}${c.status === "active" ? "" : ` (${c.status})`}`;
}
