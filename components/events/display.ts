export const SEVERITY_TEXT: Record<string, string> = {
  info: "text-slate-600",
  warning: "text-amber-700",
  error: "text-red-700",
};

export const SEVERITY_LABELS: Record<string, string> = { info: "Info", warning: "Warning", error: "Error" };

/** How many events a certificate's timeline shows. */
export const TIMELINE_LIMIT = 50;
/** How many events the events page shows at first and per "load older". */
export const EVENTS_PAGE_SIZE = 50;
