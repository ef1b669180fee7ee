import { sql } from "kysely";
import { caName } from "./acme/errors";
import { dashboardSummary } from "./certificates";
import type { Config } from "./config";
import type { Db } from "./db";
import type { CertificateSource } from "./db/schema";
import { parseVerification } from "./dns/verification";
import { serviceWarnings } from "./warnings";

// The dashboard: an expiry timeline of the next 90 days and the list of what needs an operator.
// Everything is counted and grouped in SQL and every list is capped, so that 10,000 certificates
// cost a few indexed scans, not 10,000 rows in JavaScript.

const DAY_MS = 86_400_000;
export const TIMELINE_DAYS = 90;
/** Certificate names listed per day, per kind (expiry, renewal) and per style (automatic, manual). */
export const NAMES_PER_BUCKET = 8;
/** Certificates expiring this soon with nothing planned to renew them need an operator. */
export const EXPIRING_SOON_DAYS = 14;
/** At most this many items of each kind in the attention list; the rest are counted. */
export const ATTENTION_LIMIT = 20;

export type TimelineEntry = {
  id: string;
  name: string;
  source: CertificateSource;
  kind: "expiry" | "renewal";
  /** Non-ACME certificates: nothing renews them, an operator must. */
  manual: boolean;
  at: string;
};

export type TimelineBucket = {
  /** YYYY-MM-DD (UTC), or "overdue" for what is already expired or past its renewal time. */
  key: string;
  expiries: number;
  /** Of the expiries, those that nothing renews automatically. */
  manualExpiries: number;
  renewals: number;
  /** Up to NAMES_PER_BUCKET of each kind and style; the counts above are complete. */
  entries: TimelineEntry[];
};

export type ExpiryTimeline = {
  /** The first day (UTC) of the 90, today. */
  startDay: string;
  days: TimelineBucket[];
  overdue: TimelineBucket;
  /** Over the 90 days, without the overdue bucket. */
  totals: { expiries: number; manualExpiries: number; renewals: number };
};

export type AttentionKind =
  | "expired_in_service"
  | "served_check"
  | "renewal_failed"
  | "expiring_unrenewed"
  | "dns_credential"
  | "acme_account"
  | "service";

export type AttentionSeverity = "critical" | "warning" | "notice";

export type AttentionItem = {
  id: string;
  kind: AttentionKind;
  severity: AttentionSeverity;
  /** What it is about, e.g. the certificate's or listener's name. */
  subject: string;
  /** Why it needs an operator and what to do, in plain words. */
  reason: string;
  href: string;
  linkText: string;
  /** The deadline that orders items of one severity: expiry, next try. */
  due: string | null;
};

export type AttentionList = {
  items: AttentionItem[];
  /** Items of a kind beyond ATTENTION_LIMIT, counted. */
  omitted: { kind: AttentionKind; count: number; href: string; label: string }[];
  total: number;
};

export type DashboardOverview = {
  generatedAt: string;
  summary: Awaited<ReturnType<typeof dashboardSummary>>;
  timeline: ExpiryTimeline;
  attention: AttentionList;
};

export async function dashboardOverview(db: Db, config: Config, now: Date = new Date()): Promise<DashboardOverview> {
  const summary = await dashboardSummary(db, now);
  const timeline = await expiryTimeline(db, now);
  const attention = await attentionList(db, config, now);
  return { generatedAt: now.toISOString(), summary, timeline, attention };
}

const dayKey = (d: Date) => d.toISOString().slice(0, 10);

/**
 * Expiries (not_after) and planned renewals (an ACME certificate's next_attempt_at, which is when the
 * engine acts: the renewal time, or the next try after a failure) per UTC day, today and the 89 after.
 */
export async function expiryTimeline(db: Db, now: Date = new Date()): Promise<ExpiryTimeline> {
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const nowText = now.toISOString();
  const endText = new Date(start.getTime() + TIMELINE_DAYS * DAY_MS).toISOString();
  // One row per expiry and per planned renewal; "bucket" is the day, or overdue when already past.
  const moments = sql`
    select id, name, source, 'expiry' as kind, case when source = 'acme' then 0 else 1 end as manual, not_after as at,
      case when not_after < ${nowText} then 'overdue' else substr(not_after, 1, 10) end as bucket
    from certificates where not_after is not null and not_after < ${endText}
    union all
    select id, name, source, 'renewal' as kind, 0 as manual, next_attempt_at as at,
      case when next_attempt_at < ${nowText} then 'overdue' else substr(next_attempt_at, 1, 10) end as bucket
    from certificates
    where source = 'acme' and not_after is not null and next_attempt_at is not null and next_attempt_at < ${endText}`;
  const counts = await sql<{ bucket: string; kind: "expiry" | "renewal"; manual: number | string; n: number | string }>`
    select bucket, kind, manual, count(*) as n from (${moments}) m group by bucket, kind, manual`.execute(db);
  // The overdue bucket lists the most recent first: long-expired leftovers matter least.
  const entries = await sql<{ id: string; name: string; source: CertificateSource; kind: "expiry" | "renewal"; manual: number | string; at: string; bucket: string }>`
    select id, name, source, kind, manual, at, bucket from (
      select m.*, row_number() over (
        partition by bucket, kind, manual
        order by case when bucket = 'overdue' then null else at end asc, at desc, name asc
      ) as rn
      from (${moments}) m
    ) ranked
    where rn <= ${NAMES_PER_BUCKET}
    order by bucket, at, name`.execute(db);

  const bucket = (key: string): TimelineBucket => ({ key, expiries: 0, manualExpiries: 0, renewals: 0, entries: [] });
  const days = Array.from({ length: TIMELINE_DAYS }, (_, i) => bucket(dayKey(new Date(start.getTime() + i * DAY_MS))));
  const byKey = new Map(days.map((d) => [d.key, d]));
  const overdue = bucket("overdue");
  byKey.set("overdue", overdue);
  for (const row of counts.rows) {
    const b = byKey.get(row.bucket);
    if (!b) continue;
    const n = Number(row.n);
    if (row.kind === "renewal") b.renewals += n;
    else {
      b.expiries += n;
      if (Number(row.manual) === 1) b.manualExpiries += n;
    }
  }
  for (const row of entries.rows) {
    byKey.get(row.bucket)?.entries.push({ id: row.id, name: row.name, source: row.source, kind: row.kind, manual: Number(row.manual) === 1, at: row.at });
  }
  const totals = days.reduce(
    (t, d) => ({ expiries: t.expiries + d.expiries, manualExpiries: t.manualExpiries + d.manualExpiries, renewals: t.renewals + d.renewals }),
    { expiries: 0, manualExpiries: 0, renewals: 0 },
  );
  return { startDay: days[0].key, days, overdue, totals };
}

const SEVERITY_RANK: Record<AttentionSeverity, number> = { critical: 0, warning: 1, notice: 2 };
const KIND_RANK: Record<AttentionKind, number> = {
  expired_in_service: 0,
  served_check: 1,
  renewal_failed: 2,
  expiring_unrenewed: 3,
  dns_credential: 4,
  acme_account: 5,
  service: 6,
};

/** What needs an operator, most urgent first: critical before warnings, then the nearest deadline. */
export async function attentionList(db: Db, config: Config, now: Date = new Date()): Promise<AttentionList> {
  const items: AttentionItem[] = [];
  const omitted: AttentionList["omitted"] = [];
  const more = (kind: AttentionKind, total: number, shown: number, href: string, what: string) => {
    if (total > shown) omitted.push({ kind, count: total - shown, href, label: `${total - shown} more ${what}` });
  };
  const nowText = now.toISOString();

  // Expired and still mapped to (or the default of) an enabled listener: clients get an expired certificate now.
  const expired = await sql<{ id: string; name: string; not_after: string; listener_id: string; listener_name: string; hostname: string | null; listeners: number | string; places: number | string; total: number | string }>`
    select id, name, not_after, listener_id, listener_name, hostname, listeners, places, total from (
      select c.id, c.name, c.not_after, u.listener_id, u.listener_name, u.hostname,
        count(*) over (partition by c.id) as places,
        dense_rank() over (partition by c.id order by u.listener_id) + dense_rank() over (partition by c.id order by u.listener_id desc) - 1 as listeners,
        row_number() over (partition by c.id order by u.listener_name, u.hostname) as rn
      from certificates c
      join (
        select m.certificate_id, l.id as listener_id, l.name as listener_name, m.hostname
        from certificate_mappings m join listeners l on l.id = m.listener_id where l.enabled = 1
        union all
        select l.default_certificate_id, l.id, l.name, null
        from listeners l where l.enabled = 1 and l.default_certificate_id is not null
      ) u on u.certificate_id = c.id
      where c.not_after is not null and c.not_after <= ${nowText}
    ) x
    cross join (
      select count(distinct c.id) as total from certificates c
      where c.not_after is not null and c.not_after <= ${nowText} and (
        exists (select 1 from certificate_mappings m join listeners l on l.id = m.listener_id where m.certificate_id = c.id and l.enabled = 1)
        or exists (select 1 from listeners l where l.default_certificate_id = c.id and l.enabled = 1))
    ) t
    where rn = 1
    order by not_after desc, name
    limit ${ATTENTION_LIMIT}`.execute(db);
  for (const r of expired.rows) {
    const places = Number(r.places);
    const listeners = Number(r.listeners);
    const where = r.hostname ? `for ${r.hostname}` : "as its default certificate";
    const others = places > 1 ? ` (and ${places - 1} more ${places - 1 === 1 ? "place" : "places"}${listeners > 1 ? ` on ${listeners} listeners` : ""})` : "";
    items.push({
      id: `expired-in-service-${r.id}`,
      kind: "expired_in_service",
      severity: "critical",
      subject: r.name,
      reason: `Expired ${ago(r.not_after, now)} and still served by listener "${r.listener_name}" ${where}${others}: clients refuse it. Renew or replace it, or map another certificate.`,
      href: `/certificates/${r.id}`,
      linkText: "Open the certificate",
      due: r.not_after,
    });
  }
  more("expired_in_service", Number(expired.rows[0]?.total ?? 0), expired.rows.length, "/certificates", "expired certificates still served");

  // What a listener actually serves differs from what it should, or the check could not complete a handshake.
  const checks = await sql<{ listener_id: string; listener_name: string; hostname: string; status: "mismatch" | "error"; detail: string | null; checked_at: string; names: number | string; mismatches: number | string }>`
    select listener_id, listener_name, hostname, status, detail, checked_at, names, mismatches from (
      select c.listener_id, l.name as listener_name, c.hostname, c.status, c.detail, c.checked_at,
        count(*) over (partition by c.listener_id) as names,
        sum(case when c.status = 'mismatch' then 1 else 0 end) over (partition by c.listener_id) as mismatches,
        row_number() over (partition by c.listener_id order by c.status desc, c.hostname) as rn
      from listener_checks c join listeners l on l.id = c.listener_id
      where l.enabled = 1 and c.status in ('mismatch', 'error')
    ) x where rn = 1
    order by mismatches desc, listener_name
    limit ${ATTENTION_LIMIT + 1}`.execute(db);
  for (const r of checks.rows.slice(0, ATTENTION_LIMIT)) {
    const names = Number(r.names);
    const others = names > 1 ? ` (and ${names - 1} more ${names - 1 === 1 ? "name" : "names"})` : "";
    const mismatch = Number(r.mismatches) > 0;
    items.push({
      id: `served-check-${r.listener_id}`,
      kind: "served_check",
      severity: mismatch ? "critical" : "warning",
      subject: r.listener_name,
      reason: mismatch
        ? `Serves a different certificate than the one mapped for ${r.hostname}${others}${r.detail ? `: ${r.detail}` : ""}. Check for another process on its port, then reload the listener.`
        : `The served-certificate check could not complete a handshake for ${r.hostname}${others}${r.detail ? ` (${r.detail.replace(/^could not complete a handshake: /, "")})` : ""}. Check that the listener is running and reachable.`,
      href: `/listeners/${r.listener_id}`,
      linkText: "Open the listener",
      due: r.checked_at,
    });
  }
  if (checks.rows.length > ATTENTION_LIMIT) {
    const total = await db
      .selectFrom("listener_checks")
      .innerJoin("listeners", "listeners.id", "listener_checks.listener_id")
      .select((eb) => eb.fn.count<number | string>("listeners.id").distinct().as("n"))
      .where("listeners.enabled", "=", 1)
      .where("listener_checks.status", "in", ["mismatch", "error"])
      .executeTakeFirstOrThrow();
    more("served_check", Number(total.n), ATTENTION_LIMIT, "/listeners", "listeners with served-certificate problems");
  }

  // Failed orders: the nearest expiry first; one never issued has no expiry and waits behind those.
  const failedQuery = db.selectFrom("certificates").where("last_error", "is not", null);
  const failed = await failedQuery
    .select(["id", "name", "source", "status", "not_after", "next_attempt_at", "attempts", "last_error"])
    .orderBy(sql`case when not_after is null then 1 else 0 end`)
    .orderBy("not_after")
    .orderBy("name")
    .limit(ATTENTION_LIMIT)
    .execute();
  for (const r of failed) {
    const issued = Boolean(r.not_after);
    const soon = r.not_after !== null && Date.parse(r.not_after) - now.getTime() < 7 * DAY_MS;
    const expiry = r.not_after
      ? Date.parse(r.not_after) <= now.getTime()
        ? ` It expired ${ago(r.not_after, now)}.`
        : ` The current certificate keeps serving until it expires ${inTime(r.not_after, now)} (${day(r.not_after)}).`
      : "";
    const retry = r.source !== "acme" ? "" : r.next_attempt_at ? ` Next try ${inTime(r.next_attempt_at, now)}.` : " It is not retried automatically: press Retry now.";
    items.push({
      id: `renewal-failed-${r.id}`,
      kind: "renewal_failed",
      severity: soon ? "critical" : "warning",
      subject: r.name,
      reason: (r.source === "acme"
        ? `${issued ? "Renewal" : "Issuance"} failed${r.attempts > 1 ? ` ${r.attempts} times in a row` : ""}: ${r.last_error}.${expiry}${retry}`
        : `The files on disk are not usable: ${r.last_error}; the last good version keeps serving.${expiry}`
      ).replace(/\.\./g, "."),
      href: `/certificates/${r.id}`,
      linkText: "Open the certificate",
      due: r.not_after ?? r.next_attempt_at,
    });
  }
  if (failed.length === ATTENTION_LIMIT) {
    const total = await failedQuery.select((eb) => eb.fn.countAll<number | string>().as("n")).executeTakeFirstOrThrow();
    more("renewal_failed", Number(total.n), ATTENTION_LIMIT, "/events?type=tls.renewal_failed", "failed renewals");
  }

  // Expiring soon with nothing planned before expiry (failures are listed above, not again here).
  const soonEnd = new Date(now.getTime() + EXPIRING_SOON_DAYS * DAY_MS).toISOString();
  const expiringQuery = db
    .selectFrom("certificates")
    .where("not_after", ">", nowText)
    .where("not_after", "<=", soonEnd)
    .where("last_error", "is", null)
    .where((eb) => eb.or([eb("source", "!=", "acme"), eb("next_attempt_at", "is", null), eb("next_attempt_at", ">=", eb.ref("not_after"))]));
  const expiring = await expiringQuery.select(["id", "name", "source", "not_after"]).orderBy("not_after").orderBy("name").limit(ATTENTION_LIMIT).execute();
  for (const r of expiring) {
    const notAfter = r.not_after!;
    items.push({
      id: `expiring-${r.id}`,
      kind: "expiring_unrenewed",
      severity: Date.parse(notAfter) - now.getTime() < 7 * DAY_MS ? "critical" : "warning",
      subject: r.name,
      reason: `Expires ${inTime(notAfter, now)} (${day(notAfter)}) and nothing will renew it: ${MANUAL_ADVICE[r.source]}`,
      href: `/certificates/${r.id}`,
      linkText: "Open the certificate",
      due: notAfter,
    });
  }
  if (expiring.length === ATTENTION_LIMIT) {
    const total = await expiringQuery.select((eb) => eb.fn.countAll<number | string>().as("n")).executeTakeFirstOrThrow();
    more("expiring_unrenewed", Number(total.n), ATTENTION_LIMIT, "/certificates", `certificates expiring within ${EXPIRING_SOON_DAYS} days with no renewal planned`);
  }

  // DNS credentials that certificates renew with, whose last verification failed (disabled, expired, refused…).
  const credentials = await db
    .selectFrom("dns_credentials")
    .select((eb) => [
      "dns_credentials.id",
      "dns_credentials.name",
      "dns_credentials.token_hint",
      "dns_credentials.verification",
      eb.selectFrom("certificates").select((e) => e.fn.countAll<number | string>().as("n")).whereRef("certificates.dns_credential_id", "=", "dns_credentials.id").as("users"),
    ])
    .where("verification", "is not", null)
    .orderBy("name")
    .execute();
  let credentialProblems = 0;
  for (const c of credentials) {
    const users = Number(c.users ?? 0);
    const v = parseVerification(c.verification);
    if (!users || !v || v.ok) continue;
    if (++credentialProblems > ATTENTION_LIMIT) continue;
    const usedBy = `${users} ${users === 1 ? "certificate renews" : "certificates renew"} with it over DNS-01`;
    const why = v.transient
      ? `Its last verification could not reach the provider (${lowerFirst(v.summary)}); ${usedBy}. Press Verify again.`
      : `${v.tokenStatus === "disabled" ? "The token is disabled at the provider" : `Its last verification failed: ${lowerFirst(v.summary)}`}; ${usedBy}, and their next orders will fail.${v.problems.length ? ` ${v.problems.join(" ")}` : ""}`;
    items.push({
      id: `dns-credential-${c.id}`,
      kind: "dns_credential",
      severity: v.transient ? "notice" : "warning",
      subject: `DNS credential "${c.name}" (…${c.token_hint})`,
      reason: why.replace(/\.\./g, "."),
      href: "/settings/dns",
      linkText: "Open DNS settings",
      due: null,
    });
  }
  more("dns_credential", credentialProblems, Math.min(credentialProblems, ATTENTION_LIMIT), "/settings/dns", "DNS credentials failing verification");

  const accounts = await db
    .selectFrom("acme_accounts")
    .select(["id", "email", "directory_url", "last_error", "updated_at"])
    .where("last_error", "is not", null)
    .orderBy("updated_at", "desc")
    .limit(ATTENTION_LIMIT)
    .execute();
  for (const a of accounts) {
    items.push({
      id: `acme-account-${a.id}`,
      kind: "acme_account",
      severity: "warning",
      subject: `ACME account ${a.email || a.id} at ${caName(a.directory_url)}`,
      reason: `The CA refused or could not be reached for this account: ${a.last_error}. Orders that use it fail until this is fixed.`.replace(/\.\./g, "."),
      href: "/settings/acme",
      linkText: "Open ACME settings",
      due: null,
    });
  }

  // The banner's warnings (self-signed in service, fallback served, plain HTTP) belong here as well.
  for (const w of await serviceWarnings(db, config, now)) {
    items.push({
      id: `service-${w.id}`,
      kind: "service",
      severity: w.id.startsWith("self-signed-") ? "notice" : "warning",
      subject: w.href.startsWith("/listeners/") ? "Listener" : "Console",
      reason: w.message,
      href: w.href,
      linkText: w.linkText,
      due: null,
    });
  }

  items.sort(
    (a, b) =>
      SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity] ||
      (a.due === null ? 1 : 0) - (b.due === null ? 1 : 0) ||
      (a.due !== null && b.due !== null ? a.due.localeCompare(b.due) : 0) ||
      KIND_RANK[a.kind] - KIND_RANK[b.kind] ||
      a.subject.localeCompare(b.subject),
  );
  return { items, omitted, total: items.length + omitted.reduce((n, o) => n + o.count, 0) };
}

const MANUAL_ADVICE: Record<CertificateSource, string> = {
  acme: "no renewal is planned before it expires; press Renew now.",
  upload: "it was uploaded; upload the renewed certificate from your CA.",
  file: "it is read from files on disk; replace them with a renewed certificate.",
  self_signed: "self-signed certificates are not renewed automatically; create a new one and map it in its place.",
  local_ca: "local-CA certificates here are not renewed automatically; issue a new one and map it in its place.",
};

const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);
const day = (iso: string) => iso.slice(0, 10);
const plural = (n: number, unit: string) => `${n} ${unit}${n === 1 ? "" : "s"}`;

function span(ms: number): string {
  if (ms < 3_600_000) return plural(Math.max(1, Math.round(ms / 60_000)), "minute");
  if (ms < DAY_MS) return plural(Math.round(ms / 3_600_000), "hour");
  return plural(Math.floor(ms / DAY_MS), "day");
}

const inTime = (iso: string, now: Date) => {
  const ms = Date.parse(iso) - now.getTime();
  return ms <= 0 ? "now" : `in ${span(ms)}`;
};
const ago = (iso: string, now: Date) => `${span(Math.max(0, now.getTime() - Date.parse(iso)))} ago`;
