// A DNS credential's last verification, as stored (JSON text) and shown. Kept apart from credentials.ts so
// that readers of it (the dashboard) do not load the DNS provider SDKs.

export type DnsZoneView = { id: string; name: string; status: string; canEditDns: boolean | null };

export type Verification = {
  ok: boolean;
  checkedAt: string;
  /** active, disabled, expired, not_yet_valid, rejected (the provider refused it), or unknown (not reached). */
  tokenStatus: string;
  expiresOn: string | null;
  /** One sentence: what the verification found. */
  summary: string;
  /** What is missing and how to fix it, one sentence each. */
  problems: string[];
  zones: DnsZoneView[];
  /** The provider's raw code and message when a call failed. */
  raw: string | null;
  /** The provider could not be asked (rate limit, outage, network): the token may well be fine. */
  transient: boolean;
};

/** The stored verification JSON, or null when there is none (or it cannot be read). */
export function parseVerification(text: string | null): Verification | null {
  if (!text) return null;
  try {
    return JSON.parse(text) as Verification;
  } catch {
    return null;
  }
}
