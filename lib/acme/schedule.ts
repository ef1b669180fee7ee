import crypto from "node:crypto";

// When to renew, and when to try again after a failure. Pure functions of the certificate's dates,
// the CA's renewal window and the clock, so that tests can drive them with any "now".

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/** How often the CA's renewal information is asked again (RFC 9773 suggests at least daily). */
export const ARI_RECHECK_MS = 12 * HOUR_MS;
/** The engine looks at every certificate at least this often, whatever else happens. */
export const MAX_SLEEP_MS = 12 * HOUR_MS;

export const BACKOFF_FIRST_MS = HOUR_MS;
export const BACKOFF_CAP_MS = DAY_MS;

export type RenewalWindow = { start: Date; end: Date; explanationUrl?: string };
export type RenewalPlan = { renewAt: Date; reason: string };

const formatDay = (d: Date) => d.toISOString().slice(0, 16).replace("T", " ") + " UTC";

/** Without renewal information: one third of the lifetime left, or one half for lifetimes under 10 days. */
export function lifetimeRenewal(notBefore: Date, notAfter: Date): RenewalPlan {
  const lifetime = notAfter.getTime() - notBefore.getTime();
  const short = lifetime < 10 * DAY_MS;
  const left = short ? lifetime / 2 : lifetime / 3;
  const renewAt = new Date(notAfter.getTime() - left);
  const days = Math.round(lifetime / DAY_MS);
  return {
    renewAt,
    reason: short
      ? `the certificate lives ${days} day${days === 1 ? "" : "s"}; it is renewed when half of that is left (${formatDay(renewAt)})`
      : `renewed when one third of its ${days}-day lifetime is left (${formatDay(renewAt)}); the CA publishes no renewal information`,
  };
}

/**
 * Inside the CA's suggested window (RFC 9773 §4.2): a uniformly random time in it, so that a fleet does
 * not renew all at once; a window that has already passed means "renew now".
 */
export function ariRenewal(window: RenewalWindow, now: Date, random: () => number = () => crypto.randomInt(0, 1_000_000) / 1_000_000): RenewalPlan {
  const start = window.start.getTime();
  const end = Math.max(window.end.getTime(), start);
  const explanation = window.explanationUrl ? ` (the CA explains: ${window.explanationUrl})` : "";
  if (end <= now.getTime()) {
    return { renewAt: now, reason: `the CA's renewal window ended ${formatDay(new Date(end))}: renewing now${explanation}` };
  }
  const from = Math.max(start, now.getTime());
  const renewAt = new Date(from + Math.floor(random() * (end - from)));
  return {
    renewAt,
    reason: `the CA's renewal information suggests ${formatDay(window.start)} – ${formatDay(window.end)}; picked ${formatDay(renewAt)} inside it${explanation}`,
  };
}

/** 1 h, 2 h, 4 h … capped at 24 h, after the given number of consecutive failures (1 = the first). */
export function backoffDelayMs(failures: number): number {
  const n = Math.max(1, Math.floor(failures));
  return Math.min(BACKOFF_FIRST_MS * 2 ** Math.min(n - 1, 16), BACKOFF_CAP_MS);
}

/** The next try after a failure: the backoff, or later when the CA said when to come back. */
export function nextAttemptAfterFailure(failures: number, now: Date, retryAfter?: Date): Date {
  const backoff = new Date(now.getTime() + backoffDelayMs(failures));
  return retryAfter && retryAfter > backoff ? retryAfter : backoff;
}

/**
 * The RFC 9773 certificate identifier: base64url(authority key identifier) "." base64url(serial),
 * the serial as its DER INTEGER content bytes (with the leading zero when the high bit is set).
 */
export function ariCertId(authorityKeyIdHex: string, serialHex: string): string {
  let serial = Buffer.from(serialHex.replace(/[^0-9a-f]/gi, "").padStart(2, "0").replace(/^(.(..)*)$/, "0$1"), "hex");
  while (serial.length > 1 && serial[0] === 0 && serial[1] < 0x80) serial = serial.subarray(1);
  if (serial[0] >= 0x80) serial = Buffer.concat([Buffer.from([0]), serial]);
  return `${Buffer.from(authorityKeyIdHex.replace(/[^0-9a-f]/gi, ""), "hex").toString("base64url")}.${serial.toString("base64url")}`;
}
