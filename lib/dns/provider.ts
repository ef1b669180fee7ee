import type { DnsProviderKind } from "../db/schema";

// What DNS-01 needs from a DNS provider. Cloudflare fills it (cloudflare.ts); another provider
// (Route 53, deSEC, RFC 2136 …) would implement the same calls and its own error words.

export type DnsZone = {
  id: string;
  /** The zone's apex, lower-case, without a trailing dot. */
  name: string;
  /** The provider's word for the zone's state ("active" when it serves DNS). */
  status: string;
  /** The name servers the provider assigned to the zone (used when an NS lookup finds none). */
  nameServers: string[];
  /** Whether the credential may create and delete records here; null when the provider does not say. */
  canEditDns: boolean | null;
};

export type TokenState = {
  status: "active" | "disabled" | "expired" | "not_yet_valid";
  expiresOn?: string;
  notBefore?: string;
};

export interface DnsProvider {
  readonly kind: DnsProviderKind;
  /** "Cloudflare": for messages. */
  readonly label: string;
  /** Whether the provider accepts the credential at all, and its state. */
  verifyToken(): Promise<TokenState>;
  /** Every zone the credential can read. */
  listZones(): Promise<DnsZone[]>;
  /** The zone whose apex is exactly `name`, if the credential can read it. */
  findZone(name: string): Promise<DnsZone | undefined>;
  /** Creates a TXT record and returns its id at the provider. An identical record is an error with code record_exists. */
  createTxt(zone: DnsZone, fqdn: string, value: string): Promise<string>;
  /** Ids of the TXT records at `fqdn` holding exactly `value`. */
  findTxt(zone: DnsZone, fqdn: string, value: string): Promise<string[]>;
  /** Deletes a record; one that is already gone counts as deleted. */
  deleteTxt(zone: DnsZone, recordId: string): Promise<void>;
}

export type DnsProblemCode =
  | "token_invalid"
  | "token_inactive"
  | "permission"
  | "zone_not_found"
  | "zone_inactive"
  | "record_exists"
  | "rate_limited"
  | "provider_error"
  | "unreachable"
  | "bad_request"
  | "propagation_timeout"
  | "no_name_servers";

/**
 * A DNS provider or propagation failure in plain words: what happened (summary), what to do (fix), and
 * the provider's raw code and message (raw). Never holds the credential.
 */
export class DnsProblem extends Error {
  constructor(
    readonly code: DnsProblemCode,
    readonly summary: string,
    readonly fix: string,
    readonly raw: string,
    readonly opts: { retryable: boolean; retryAfter?: Date; httpStatus?: number } = { retryable: false },
  ) {
    super(`${summary} — ${fix}${raw ? ` [${raw}]` : ""}`);
    this.name = "DnsProblem";
  }
  get retryable() {
    return this.opts.retryable;
  }
}

/** `_acme-challenge.example.com` for example.com and for *.example.com alike. */
export function challengeRecordName(identifier: string): string {
  return `_acme-challenge.${identifier.replace(/^\*\./, "").replace(/\.$/, "").toLowerCase()}`;
}

/** example.com for a.b.example.com: the candidates from the longest to the shortest (one label at least two). */
export function zoneCandidates(name: string): string[] {
  const labels = name.replace(/^\*\./, "").replace(/\.$/, "").toLowerCase().split(".");
  const out: string[] = [];
  for (let i = 0; i < labels.length - 1; i++) out.push(labels.slice(i).join("."));
  return out;
}
