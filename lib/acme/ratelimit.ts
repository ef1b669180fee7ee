import { isIP } from "node:net";
import { getDomain } from "tldts";
import type { Db } from "../db/connection";
import type { RateLedgerKind } from "../db/schema";
import { caName } from "./errors";

// A ledger of what we sent to each ACME directory, so that the engine can refuse an order that
// Let's Encrypt would refuse anyway (and that would cost a failed attempt and a longer wait).

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/**
 * Let's Encrypt's published rate limits: https://letsencrypt.org/docs/rate-limits/
 * Let's Encrypt refills its buckets gradually (one certificate per 202 minutes per registered
 * domain, one per 34 hours per exact set, one failure per 12 minutes); counting whole windows here
 * is stricter, never looser. Failed validations are per account there; we count per directory.
 */
export const LETS_ENCRYPT_RATE_LIMITS = {
  certificatesPerRegisteredDomain: { limit: 50, windowMs: 7 * DAY },
  certificatesPerExactSet: { limit: 5, windowMs: 7 * DAY },
  failedValidationsPerIdentifier: { limit: 5, windowMs: HOUR },
} as const;

export type RateLimitName = keyof typeof LETS_ENCRYPT_RATE_LIMITS;

/** Rows older than the longest window are no use; a day more keeps "since …" answers honest. */
const LEDGER_RETENTION_MS = 8 * DAY;

const LETS_ENCRYPT_HOSTS = new Set(["acme-v02.api.letsencrypt.org", "acme-staging-v02.api.letsencrypt.org"]);

export function isLetsEncrypt(directoryUrl: string): boolean {
  try {
    return LETS_ENCRYPT_HOSTS.has(new URL(directoryUrl).hostname.toLowerCase());
  } catch {
    return false;
  }
}

/** Let's Encrypt counts an IPv6 certificate against its /64. */
function ipv6Prefix64(address: string): string {
  const [head, tail = ""] = address.split("::");
  const groups = (part: string) => (part ? part.split(":") : []);
  const headGroups = groups(head);
  const tailGroups = groups(tail);
  const full = [...headGroups, ...Array(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill("0"), ...tailGroups];
  return `${full.slice(0, 4).map((g) => parseInt(g, 16).toString(16)).join(":")}::/64`;
}

/** The registered domain (public suffix + one label) that Let's Encrypt counts a name against. */
export function registeredDomain(name: string): string {
  const host = name.toLowerCase().replace(/^\*\./, "").replace(/\.$/, "");
  const ipVersion = isIP(host);
  if (ipVersion === 4) return host;
  if (ipVersion === 6) return ipv6Prefix64(host);
  // Private suffixes count too (each github.io site is its own registered domain at Let's Encrypt).
  return getDomain(host, { allowPrivateDomains: true, extractHostname: false }) ?? host;
}

/** The order's names, lower-cased, deduplicated, sorted and joined with ",". */
export function namesKey(names: string[]): string {
  return [...new Set(names.map((n) => n.toLowerCase()))].sort().join(",");
}

/** A wildcard is validated as its base name, so both share the failed-validation count. */
function validationIdentifier(name: string): string {
  return name.toLowerCase().replace(/^\*\./, "");
}

function orderDomains(names: string[]): string[] {
  return [...new Set(names.map(registeredDomain))].sort();
}

function orderIdentifiers(names: string[]): string[] {
  return [...new Set(names.map(validationIdentifier))].sort();
}

export type RateLimitVerdict = { allowed: true } | { allowed: false; limit: RateLimitName; message: string; nextSlotAt: Date };

type LedgerFilter = {
  directoryUrl: string;
  kind: RateLedgerKind;
  registeredDomain?: string;
  namesKey?: string;
  identifier?: string;
};

/** Times (ISO, oldest first) of the counted rows inside the window that ends at `now`. */
async function timesInWindow(db: Db, filter: LedgerFilter, windowMs: number, now: Date): Promise<string[]> {
  const since = new Date(now.getTime() - windowMs).toISOString();
  let query = db
    .selectFrom("acme_rate_ledger")
    .select("at")
    .where("directory_url", "=", filter.directoryUrl)
    .where("kind", "=", filter.kind)
    .where("exempt", "=", 0)
    .where("at", ">", since);
  if (filter.registeredDomain !== undefined) query = query.where("registered_domain", "=", filter.registeredDomain);
  if (filter.namesKey !== undefined) query = query.where("names_key", "=", filter.namesKey);
  if (filter.identifier !== undefined) query = query.where("identifier", "=", filter.identifier);
  return (await query.orderBy("at").orderBy("id").execute()).map((row) => row.at);
}

// An order writes one row per registered domain, each carrying the order's names key: counting the
// rows of one of its domains counts the orders for the exact set.
function exactSetFilter(directoryUrl: string, names: string[]): LedgerFilter {
  return { directoryUrl, kind: "new_order", namesKey: namesKey(names), registeredDomain: orderDomains(names)[0] };
}

type Rule = { limit: number; windowMs: number };

function formatUtc(date: Date): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 10)} ${date.getUTCSeconds() ? iso.slice(11, 19) : iso.slice(11, 16)} UTC`;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const dayAndMonth = (date: Date) => `${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]}`;
const windowWords = (ms: number) => (ms >= DAY ? `${ms / DAY} days` : ms === HOUR ? "hour" : `${ms / HOUR} hours`);
const FORCE_HINT = "Use 'force' to send the order anyway.";

type Refusal = { allowed: false; limit: RateLimitName; message: string; nextSlotAt: Date };
type Full = { used: number; limit: number; since: Date; nextSlotAt: Date };

function exactSetRefusal(ca: string, u: Full): Refusal {
  const every = windowWords(LETS_ENCRYPT_RATE_LIMITS.certificatesPerExactSet.windowMs);
  return {
    allowed: false,
    limit: "certificatesPerExactSet",
    nextSlotAt: u.nextSlotAt,
    message: `${ca} allows ${u.limit} certificates for exactly these names every ${every}; ${u.used} were ordered since ${dayAndMonth(u.since)}. The next slot opens at ${formatUtc(u.nextSlotAt)}. ${FORCE_HINT}`,
  };
}

function registeredDomainRefusal(ca: string, domain: string, u: Full): Refusal {
  const every = windowWords(LETS_ENCRYPT_RATE_LIMITS.certificatesPerRegisteredDomain.windowMs);
  return {
    allowed: false,
    limit: "certificatesPerRegisteredDomain",
    nextSlotAt: u.nextSlotAt,
    message: `${ca} allows ${u.limit} certificates per registered domain every ${every}; ${u.used} were ordered for ${domain} since ${dayAndMonth(u.since)}. The next slot opens at ${formatUtc(u.nextSlotAt)}. ${FORCE_HINT}`,
  };
}

function failedValidationRefusal(ca: string, identifier: string, u: Full): Refusal {
  const every = windowWords(LETS_ENCRYPT_RATE_LIMITS.failedValidationsPerIdentifier.windowMs);
  return {
    allowed: false,
    limit: "failedValidationsPerIdentifier",
    nextSlotAt: u.nextSlotAt,
    message: `${ca} allows ${u.limit} failed validations of a name per ${every}; ${identifier} failed ${u.used} times since ${formatUtc(u.since).slice(11)}. The next attempt is possible at ${formatUtc(u.nextSlotAt)}. Fix what makes the validation fail first. ${FORCE_HINT}`,
  };
}

/** The window's use, when one more row would exceed the limit. */
async function fullWindow(db: Db, filter: LedgerFilter, rule: Rule, now: Date): Promise<Full | undefined> {
  const times = await timesInWindow(db, filter, rule.windowMs, now);
  const used = times.length;
  if (used < rule.limit) return undefined;
  // used - limit + 1 rows must leave the window for one more to fit; the last of them is this one.
  const nextSlotAt = new Date(Date.parse(times[used - rule.limit]) + rule.windowMs);
  return { used, limit: rule.limit, since: new Date(times[0]), nextSlotAt };
}

async function refusals(db: Db, directoryUrl: string, names: string[], now: Date): Promise<Refusal[]> {
  const ca = caName(directoryUrl);
  const L = LETS_ENCRYPT_RATE_LIMITS;
  const found: Refusal[] = [];

  const exactSet = await fullWindow(db, exactSetFilter(directoryUrl, names), L.certificatesPerExactSet, now);
  if (exactSet) found.push(exactSetRefusal(ca, exactSet));
  for (const domain of orderDomains(names)) {
    const full = await fullWindow(db, { directoryUrl, kind: "new_order", registeredDomain: domain }, L.certificatesPerRegisteredDomain, now);
    if (full) found.push(registeredDomainRefusal(ca, domain, full));
  }
  for (const identifier of orderIdentifiers(names)) {
    const full = await fullWindow(db, { directoryUrl, kind: "failed_validation", identifier }, L.failedValidationsPerIdentifier, now);
    if (full) found.push(failedValidationRefusal(ca, identifier, full));
  }
  return found;
}

/**
 * Would Let's Encrypt accept one more order for these names now? Renewals inside the ARI window
 * (exempt) and other CAs are always allowed. When several limits are full, the one that frees up
 * last is reported: the order can only go through then.
 */
export async function checkNewOrder(
  db: Db,
  opts: { directoryUrl: string; names: string[]; exempt: boolean; now?: Date },
): Promise<RateLimitVerdict> {
  if (opts.exempt || !isLetsEncrypt(opts.directoryUrl) || opts.names.length === 0) return { allowed: true };
  const found = await refusals(db, opts.directoryUrl, opts.names, opts.now ?? new Date());
  if (!found.length) return { allowed: true };
  return found.reduce((a, b) => (b.nextSlotAt.getTime() > a.nextSlotAt.getTime() ? b : a));
}

export async function recordNewOrder(
  db: Db,
  opts: { directoryUrl: string; names: string[]; certificateId: string | null; exempt: boolean; now?: Date },
): Promise<void> {
  if (opts.names.length === 0) return;
  const at = (opts.now ?? new Date()).toISOString();
  const key = namesKey(opts.names);
  await db
    .insertInto("acme_rate_ledger")
    .values(
      orderDomains(opts.names).map((domain) => ({
        directory_url: opts.directoryUrl,
        kind: "new_order" as const,
        registered_domain: domain,
        names_key: key,
        identifier: null,
        certificate_id: opts.certificateId,
        exempt: opts.exempt ? 1 : 0,
        at,
      })),
    )
    .execute();
}

export async function recordFailedValidation(
  db: Db,
  opts: { directoryUrl: string; identifier: string; certificateId: string | null; now?: Date },
): Promise<void> {
  await db
    .insertInto("acme_rate_ledger")
    .values({
      directory_url: opts.directoryUrl,
      kind: "failed_validation",
      registered_domain: registeredDomain(opts.identifier),
      names_key: null,
      identifier: validationIdentifier(opts.identifier),
      certificate_id: opts.certificateId,
      exempt: 0,
      at: (opts.now ?? new Date()).toISOString(),
    })
    .execute();
}

export type LedgerSummary = {
  perDomain: { domain: string; used: number; limit: number }[];
  exactSet: { used: number; limit: number };
  failedValidations: { identifier: string; used: number; limit: number }[];
};

/** What the ledger counts against these names now (for any directory; only Let's Encrypt enforces). */
export async function ledgerSummary(db: Db, opts: { directoryUrl: string; names: string[]; now?: Date }): Promise<LedgerSummary> {
  const now = opts.now ?? new Date();
  const L = LETS_ENCRYPT_RATE_LIMITS;
  const count = async (filter: LedgerFilter, rule: Rule) => (await timesInWindow(db, filter, rule.windowMs, now)).length;

  const perDomain = await Promise.all(
    orderDomains(opts.names).map(async (domain) => ({
      domain,
      used: await count({ directoryUrl: opts.directoryUrl, kind: "new_order", registeredDomain: domain }, L.certificatesPerRegisteredDomain),
      limit: L.certificatesPerRegisteredDomain.limit,
    })),
  );
  const exactSetUsed = opts.names.length ? await count(exactSetFilter(opts.directoryUrl, opts.names), L.certificatesPerExactSet) : 0;
  const failedValidations = await Promise.all(
    orderIdentifiers(opts.names).map(async (identifier) => ({
      identifier,
      used: await count({ directoryUrl: opts.directoryUrl, kind: "failed_validation", identifier }, L.failedValidationsPerIdentifier),
      limit: L.failedValidationsPerIdentifier.limit,
    })),
  );
  return { perDomain, exactSet: { used: exactSetUsed, limit: L.certificatesPerExactSet.limit }, failedValidations };
}

/** Delete rows older than 8 days; returns how many went. */
export async function pruneLedger(db: Db, now: Date = new Date()): Promise<number> {
  const cutoff = new Date(now.getTime() - LEDGER_RETENTION_MS).toISOString();
  const result = await db.deleteFrom("acme_rate_ledger").where("at", "<", cutoff).executeTakeFirst();
  return Number(result.numDeletedRows);
}
