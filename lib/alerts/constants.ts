// What alerts are about, and how deliveries are retried.

export const ALERT_EVENT_TYPES = ["tls.renewal_failed", "tls.expiring", "tls.expired", "tls.fallback_served", "tls.served_mismatch"] as const;
export type AlertEventType = (typeof ALERT_EVENT_TYPES)[number];

export const ALERT_EVENT_LABELS: Record<AlertEventType, string> = {
  "tls.renewal_failed": "Renewal failed",
  "tls.expiring": "Certificate expiring (30, 14, 7, 1 days before)",
  "tls.expired": "Certificate expired",
  "tls.fallback_served": "Listener served its fallback certificate",
  "tls.served_mismatch": "Listener serves a different certificate than mapped",
};

export const isAlertEventType = (type: string): type is AlertEventType => (ALERT_EVENT_TYPES as readonly string[]).includes(type);

export const secretContext = (webhookId: string) => `webhook-secret:${webhookId}`;

/** How long after each failed attempt the next one is made; after the last, the delivery has failed. */
export const RETRY_DELAYS_MS = [30_000, 2 * 60_000, 10 * 60_000, 60 * 60_000, 6 * 60 * 60_000];
/** The first attempt plus one per retry delay. */
export const MAX_ATTEMPTS = RETRY_DELAYS_MS.length + 1;
export const DELIVERY_TIMEOUT_MS = 10_000;

/** Expiry notices, most distant first; 0 stands for "expired" in expiry_notices. */
export const EXPIRY_THRESHOLDS_DAYS = [30, 14, 7, 1] as const;

/** A listener that has served no fallback certificate for this long no longer has the problem. */
export const FALLBACK_RESOLVE_MS = 24 * 60 * 60_000;
