// Plain-language dates for the console: "in 364 days", "3 days ago", "today".

const DAY = 86_400_000;

export function relativeTime(iso: string | null | undefined, now: Date = new Date()): string {
  if (!iso) return "—";
  const diff = Date.parse(iso) - now.getTime();
  const abs = Math.abs(diff);
  let text: string;
  if (abs < 60_000) return diff >= 0 ? "in under a minute" : "just now";
  if (abs < 3_600_000) text = plural(Math.round(abs / 60_000), "minute");
  else if (abs < DAY) text = plural(Math.round(abs / 3_600_000), "hour");
  else text = plural(Math.floor(abs / DAY), "day");
  return diff >= 0 ? `in ${text}` : `${text} ago`;
}

const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;

export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  return iso.replace("T", " ").replace(/\.\d+Z$/, " UTC").replace(/Z$/, " UTC");
}

export const SOURCE_LABELS: Record<string, string> = {
  acme: "ACME",
  upload: "Uploaded",
  file: "On disk",
  self_signed: "Self-signed",
  local_ca: "Local CA",
};
