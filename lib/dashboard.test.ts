import crypto from "node:crypto";
import type { Insertable } from "kysely";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_ACTOR } from "./audit";
import { createSelfSignedCertificateRecord } from "./certificates";
import { parseConfig } from "./config";
import { Keyring, sealingKeyFromBytes } from "./crypto/seal";
import { attentionList, ATTENTION_LIMIT, dashboardOverview, expiryTimeline, NAMES_PER_BUCKET, TIMELINE_DAYS } from "./dashboard";
import type { Db } from "./db";
import type { CertificatesTable } from "./db/schema";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "./db/testing";
import { recordEvent } from "./events";
import { createListener, setMappings, updateListener } from "./listeners";
import { findFreePort } from "./net";

const keyring = new Keyring(sealingKeyFromBytes(crypto.randomBytes(32)));
const config = parseConfig({});
const DAY = 86_400_000;
// A fixed clock: 10:30 UTC, so that "today" has both a past and a future.
const NOW = new Date("2031-03-10T10:30:00.000Z");
const at = (days: number, from = NOW) => new Date(from.getTime() + days * DAY).toISOString();

let seq = 0;
type CertificateRow = Insertable<CertificatesTable>;

function certificateRow(overrides: Partial<CertificateRow> & Pick<CertificateRow, "name" | "source">): CertificateRow {
  const created = at(-100);
  return {
    id: `crt_dash${++seq}`,
    status: "active",
    domains: JSON.stringify([`${overrides.name}.example.test`]),
    key_type: "ecdsa-p256",
    validity_days: null,
    chain_pem: null,
    sealed_key: null,
    subject: null,
    issuer: null,
    serial: null,
    fingerprint_sha256: null,
    not_before: created,
    not_after: null,
    renew_at: null,
    renew_reason: null,
    next_attempt_at: null,
    attempts: 0,
    last_error: null,
    lease_owner: null,
    lease_expires_at: null,
    created_by: null,
    created_at: created,
    updated_at: created,
    ...overrides,
  };
}

async function insert(db: Db, rows: CertificateRow[]) {
  for (let i = 0; i < rows.length; i += 200) await db.insertInto("certificates").values(rows.slice(i, i + 200)).execute();
  return rows;
}

async function clear(db: Db) {
  for (const table of ["listener_checks", "certificate_mappings", "listeners", "certificate_versions", "events", "audit_log", "dns_credentials", "acme_accounts", "certificates"] as const) {
    await db.deleteFrom(table).execute();
  }
}

describe.each(TEST_ENGINES)("the dashboard on %s", (kind) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await t?.destroy();
  });
  afterEach(async () => {
    await clear(t.db);
  });

  it("shows an empty timeline of 90 days from today and nothing that needs attention", async () => {
    const timeline = await expiryTimeline(t.db, NOW);
    expect(timeline.days).toHaveLength(TIMELINE_DAYS);
    expect(timeline.startDay).toBe("2031-03-10");
    expect(timeline.days.at(-1)!.key).toBe("2031-06-07");
    expect(timeline.totals).toEqual({ expiries: 0, manualExpiries: 0, renewals: 0 });
    expect(timeline.overdue).toMatchObject({ expiries: 0, renewals: 0, entries: [] });
    expect(await attentionList(t.db, config, NOW)).toEqual({ items: [], omitted: [], total: 0 });
  });

  it("puts expiries and planned renewals on their UTC day, manual ones apart, the past as overdue, and caps the names", async () => {
    const [acme, upload] = await insert(t.db, [
      certificateRow({ name: "auto", source: "acme", not_after: at(40), renew_at: at(10), next_attempt_at: at(10) }),
      certificateRow({ name: "uploaded", source: "upload", not_after: at(20) }),
      certificateRow({ name: "gone", source: "self_signed", status: "expired", not_after: at(-2) }),
      certificateRow({ name: "late", source: "acme", status: "renewing", not_after: at(25), next_attempt_at: at(-1 / 24) }),
      certificateRow({ name: "beyond", source: "upload", not_after: at(95) }),
      certificateRow({ name: "never-issued", source: "acme", status: "pending", next_attempt_at: at(0) }),
      // Today, later than now: today's bucket, not overdue.
      certificateRow({ name: "tonight", source: "file", not_after: "2031-03-10T23:00:00.000Z" }),
    ]);
    await insert(t.db, Array.from({ length: 12 }, (_, i) => certificateRow({ name: `busy-${String(i).padStart(2, "0")}`, source: "acme", not_after: `${at(30).slice(0, 10)}T0${i % 10}:00:00.000Z` })));

    const timeline = await expiryTimeline(t.db, NOW);
    const dayOf = (iso: string) => timeline.days.find((d) => d.key === iso.slice(0, 10))!;
    expect(dayOf(at(40))).toMatchObject({ expiries: 1, manualExpiries: 0, renewals: 0, entries: [{ id: acme.id, kind: "expiry", manual: false }] });
    expect(dayOf(at(10))).toMatchObject({ expiries: 0, renewals: 1, entries: [{ id: acme.id, kind: "renewal", at: at(10) }] });
    expect(dayOf(at(20))).toMatchObject({ expiries: 1, manualExpiries: 1, entries: [{ id: upload.id, name: "uploaded", source: "upload", manual: true }] });
    expect(timeline.days[0]).toMatchObject({ key: "2031-03-10", expiries: 1, manualExpiries: 1, entries: [{ name: "tonight" }] });
    expect(timeline.overdue).toMatchObject({ expiries: 1, manualExpiries: 1, renewals: 1 });
    expect(timeline.overdue.entries.map((e) => `${e.name}:${e.kind}`).sort()).toEqual(["gone:expiry", "late:renewal"]);
    const busy = dayOf(at(30));
    expect(busy.expiries).toBe(12);
    expect(busy.entries).toHaveLength(NAMES_PER_BUCKET);
    expect(busy.entries.map((e) => e.name)).toEqual(["busy-00", "busy-10", "busy-01", "busy-11", "busy-02", "busy-03", "busy-04", "busy-05"]);
    // 12 busy + auto + uploaded + late + tonight; "beyond" is past the 90 days, "never-issued" has nothing to renew.
    expect(timeline.totals).toEqual({ expiries: 16, manualExpiries: 2, renewals: 1 });
    expect(JSON.stringify(timeline)).not.toContain("beyond");
    expect(JSON.stringify(timeline)).not.toContain("never-issued");
  });

  it("lists what needs an operator, most urgent first, with plain reasons and links", async () => {
    const port = await findFreePort();
    const listenerInput = { name: "front", kind: "https", bindAddress: "127.0.0.1", port, upstreamUrl: "http://127.0.0.1:9" };
    const listener = await createListener(t.db, SYSTEM_ACTOR, listenerInput);
    const idle = await createListener(t.db, SYSTEM_ACTOR, { ...listenerInput, name: "idle", port: await findFreePort() });
    // Self-signed for 5 days: expired by "later", and still mapped.
    const served = await createSelfSignedCertificateRecord(t.db, keyring, SYSTEM_ACTOR, { name: "served-short", domains: ["shop.example.test"], validityDays: 5 }, NOW);
    const unmapped = await createSelfSignedCertificateRecord(t.db, keyring, SYSTEM_ACTOR, { name: "idle-short", domains: ["idle.example.test"], validityDays: 5 }, NOW);
    await setMappings(t.db, SYSTEM_ACTOR, listener.id, { mappings: [{ hostname: "shop.example.test", certificateId: served.id }, { hostname: "www.shop.example.test", certificateId: served.id }] });
    await setMappings(t.db, SYSTEM_ACTOR, idle.id, { mappings: [{ hostname: "idle.example.test", certificateId: unmapped.id }] });
    await updateListener(t.db, SYSTEM_ACTOR, idle.id, { ...listenerInput, name: "idle", port: idle.port, enabled: false });

    const [failing] = await insert(t.db, [
      certificateRow({ name: "failing", source: "acme", status: "failed", not_after: at(20), next_attempt_at: at(1 / 24), attempts: 3, last_error: "the CA could not reach port 80 — open port 80 to the internet" }),
      certificateRow({ name: "renews-in-time", source: "acme", not_after: at(10), next_attempt_at: at(3) }),
      certificateRow({ name: "renews-too-late", source: "acme", not_after: at(10), next_attempt_at: at(11) }),
      certificateRow({ name: "far-upload", source: "upload", not_after: at(60) }),
    ]);
    const later = new Date(NOW.getTime() + 6 * DAY);

    const before = await attentionList(t.db, config, NOW);
    // Critical (5 days left) first, then warnings by the nearest expiry; nothing about those renewed in time.
    expect(before.items.map((i) => `${i.kind}:${i.subject}`)).toEqual([
      "expiring_unrenewed:idle-short",
      "expiring_unrenewed:served-short",
      "expiring_unrenewed:renews-too-late",
      "renewal_failed:failing",
      `service:Listener`,
    ]);
    const short = before.items[1];
    expect(short).toMatchObject({ severity: "critical", href: `/certificates/${served.id}`, linkText: "Open the certificate" });
    expect(short.reason).toBe("Expires in 5 days (2031-03-15) and nothing will renew it: self-signed certificates are not renewed automatically; create a new one and map it in its place.");
    const failed = before.items.find((i) => i.kind === "renewal_failed")!;
    expect(failed).toMatchObject({ severity: "warning", href: `/certificates/${failing.id}` });
    expect(failed.reason).toBe("Renewal failed 3 times in a row: the CA could not reach port 80 — open port 80 to the internet. The current certificate keeps serving until it expires in 20 days (2031-03-30). Next try in 1 hour.");
    expect(before.items.at(-1)!.reason).toContain('serves self-signed certificate "served-short"');

    // Six days on: "served-short" has expired on an enabled listener; the idle listener's one is not listed as in service.
    await t.db.insertInto("listener_checks").values([
      { listener_id: listener.id, hostname: "shop.example.test", checked_at: at(-1 / 24, later), status: "mismatch", expected_fingerprint: "AA", served_fingerprint: "BB", served_subject: "CN=other", detail: 'expected "served-short" (AA), served CN=other (BB)' },
      { listener_id: listener.id, hostname: "www.shop.example.test", checked_at: at(-1 / 24, later), status: "error", expected_fingerprint: "AA", served_fingerprint: null, served_subject: null, detail: "could not complete a handshake: ECONNREFUSED" },
      { listener_id: idle.id, hostname: "idle.example.test", checked_at: at(-1 / 24, later), status: "error", expected_fingerprint: "CC", served_fingerprint: null, served_subject: null, detail: "could not complete a handshake: ECONNREFUSED" },
    ]).execute();
    await recordEvent(t.db, { type: "tls.fallback_served", severity: "warning", listenerId: listener.id, message: "fallback" }, later);
    const afterExpiry = await attentionList(t.db, config, later);
    const kinds = afterExpiry.items.map((i) => `${i.severity}:${i.kind}:${i.subject}`);
    expect(kinds.slice(0, 3)).toEqual(["critical:expired_in_service:served-short", "critical:served_check:front", "critical:expiring_unrenewed:renews-too-late"]);
    expect(kinds).not.toContain("critical:expired_in_service:idle-short");
    expect(kinds.filter((k) => k.includes("served_check"))).toHaveLength(1);
    const expired = afterExpiry.items[0];
    expect(expired.reason).toBe('Expired 1 day ago and still served by listener "front" for shop.example.test (and 1 more place): clients refuse it. Renew or replace it, or map another certificate.');
    expect(afterExpiry.items[1].reason).toContain("Serves a different certificate than the one mapped for shop.example.test (and 1 more name)");
    expect(afterExpiry.items[1].href).toBe(`/listeners/${listener.id}`);
    expect(afterExpiry.items.some((i) => i.id === `service-fallback-${listener.id}`)).toBe(true);
  });

  it("names DNS credentials that fail verification and ACME accounts with errors, only when they matter", async () => {
    const verification = (ok: boolean, tokenStatus: string, transient = false) =>
      JSON.stringify({ ok, checkedAt: NOW.toISOString(), tokenStatus, expiresOn: null, summary: ok ? "The token works" : "The Cloudflare token is disabled", problems: ok ? [] : ["Enable it again or create a new token."], zones: [], raw: null, transient });
    const credential = (id: string, name: string, v: string) => ({ id, name, provider: "cloudflare" as const, sealed_token: keyring.seal("token-value-for-tests-0000", `dns-credential-token:${id}`), token_hint: "0000", verified_at: NOW.toISOString(), verification: v, created_by: null, created_at: NOW.toISOString(), updated_at: NOW.toISOString() });
    await t.db.insertInto("dns_credentials").values([
      credential("dns_bad", "prod cloudflare", verification(false, "disabled")),
      credential("dns_unused", "spare", verification(false, "disabled")),
      credential("dns_good", "fine", verification(true, "active")),
    ]).execute();
    await insert(t.db, [
      certificateRow({ name: "wild", source: "acme", not_after: at(50), next_attempt_at: at(20), challenge: "dns-01", dns_credential_id: "dns_bad" }),
      certificateRow({ name: "wild2", source: "acme", not_after: at(50), next_attempt_at: at(20), challenge: "dns-01", dns_credential_id: "dns_good" }),
    ]);
    await t.db.insertInto("acme_accounts").values({ id: "acc_broken", directory_url: "https://acme-v02.api.letsencrypt.org/directory", email: "ops@example.test", sealed_key: keyring.seal("key", "acme-account-key:acc_broken"), account_url: null, eab_kid: null, sealed_eab_hmac: null, tos_agreed_at: NOW.toISOString(), is_default: 1, last_error: "the account was deactivated", created_at: NOW.toISOString(), updated_at: NOW.toISOString() }).execute();

    const list = await attentionList(t.db, config, NOW);
    expect(list.items.map((i) => i.subject)).toEqual(['DNS credential "prod cloudflare" (…0000)', "ACME account ops@example.test at Let's Encrypt"]);
    expect(list.items[0]).toMatchObject({ kind: "dns_credential", href: "/settings/dns" });
    expect(list.items[0].reason).toBe("The token is disabled at the provider; 1 certificate renews with it over DNS-01, and their next orders will fail. Enable it again or create a new token.");
    expect(list.items[1]).toMatchObject({ kind: "acme_account", href: "/settings/acme", reason: "The CA refused or could not be reached for this account: the account was deactivated. Orders that use it fail until this is fixed." });
  });

  it("answers for 3,000 certificates quickly, with complete counts and capped lists", async () => {
    const rows: CertificateRow[] = [];
    for (let i = 0; i < 3000; i++) {
      const days = (i % 120) - 10; // -10 … 109 days from now
      const acme = i % 3 !== 0;
      const failed = acme && i % 50 === 1;
      rows.push(
        certificateRow({
          name: `bulk-${String(i).padStart(4, "0")}`,
          source: acme ? "acme" : i % 2 ? "upload" : "self_signed",
          status: days < 0 ? "expired" : failed ? "failed" : "active",
          not_after: at(days + (i % 24) / 24),
          next_attempt_at: acme ? at(days - 30 + (i % 7) / 7) : null,
          last_error: failed ? "rate limited — wait" : null,
          attempts: failed ? 2 : 0,
        }),
      );
    }
    await insert(t.db, rows);

    const started = performance.now();
    const overview = await dashboardOverview(t.db, config, NOW);
    const elapsed = performance.now() - started;
    expect(elapsed).toBeLessThan(3000);

    // The counts are the whole truth, however many names are listed.
    const end = new Date(Date.parse(`${overview.timeline.startDay}T00:00:00.000Z`) + TIMELINE_DAYS * DAY).toISOString();
    const nowText = NOW.toISOString();
    const inWindow = rows.filter((r) => r.not_after! >= nowText && r.not_after! < end);
    const renewalsInWindow = rows.filter((r) => r.source === "acme" && r.next_attempt_at && r.next_attempt_at >= nowText && r.next_attempt_at < end);
    expect(overview.timeline.totals).toEqual({ expiries: inWindow.length, manualExpiries: inWindow.filter((r) => r.source !== "acme").length, renewals: renewalsInWindow.length });
    expect(overview.timeline.overdue.expiries).toBe(rows.filter((r) => r.not_after! < nowText).length);
    for (const day of overview.timeline.days) expect(day.entries.length).toBeLessThanOrEqual(NAMES_PER_BUCKET * 3);
    expect(overview.summary.total).toBe(3000);

    const failing = rows.filter((r) => r.last_error).length;
    const shownFailures = overview.attention.items.filter((i) => i.kind === "renewal_failed");
    expect(shownFailures).toHaveLength(ATTENTION_LIMIT);
    expect(overview.attention.omitted.find((o) => o.kind === "renewal_failed")?.count).toBe(failing - ATTENTION_LIMIT);
    expect(overview.attention.items.filter((i) => i.kind === "expiring_unrenewed")).toHaveLength(ATTENTION_LIMIT);
    expect(JSON.stringify(overview).length).toBeLessThan(200_000);
  });
});
