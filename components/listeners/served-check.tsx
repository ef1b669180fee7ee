export type ServedCheckView = {
  hostname: string;
  status: "serving" | "mismatch" | "error";
  expectedFingerprint: string | null;
  servedFingerprint: string | null;
  servedSubject: string | null;
  detail: string | null;
  checkedAt: string;
};

/**
 * The latest check of a mapping, if it was made against the certificate mapped now; an older one
 * (before a remap or a renewal) says nothing about what is served today.
 */
export function currentCheck(check: ServedCheckView | undefined, mappedFingerprint: string | undefined): ServedCheckView | undefined {
  if (!check || !mappedFingerprint) return check;
  return check.expectedFingerprint === mappedFingerprint ? check : undefined;
}

/** What the edge's own handshake to this name found: the mapped certificate, another one, or nothing. */
export function ServedCheck({ hostname, check, listenerEnabled }: { hostname: string; check: ServedCheckView | undefined; listenerEnabled: boolean }) {
  const common = { "data-testid": `check-${hostname}`, "data-status": listenerEnabled ? (check?.status ?? "unchecked") : "disabled", title: check ? `checked ${check.checkedAt}` : undefined };
  if (!listenerEnabled) {
    return (
      <span {...common} className="text-slate-500">
        not served: the listener is disabled
      </span>
    );
  }
  if (!check) {
    return (
      <span {...common} className="text-slate-500">
        not checked yet
      </span>
    );
  }
  if (check.status === "serving") {
    return (
      <span className="inline-flex items-center gap-1 font-medium text-emerald-700">
        <span aria-hidden="true">●</span>
        <span {...common}>serving</span>
      </span>
    );
  }
  if (check.status === "mismatch") {
    const fingerprint = check.servedFingerprint ? `${check.servedFingerprint.slice(0, 17)}…` : "(unknown fingerprint)";
    return (
      <span {...common} className="break-words text-amber-800">
        mismatch: serving {check.servedSubject || "(no subject)"} <span className="font-mono text-xs">{fingerprint}</span> instead
      </span>
    );
  }
  return (
    <span {...common} className="break-words text-red-700">
      error: {check.detail ?? "the check failed"}
    </span>
  );
}
