import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_ACTOR } from "../audit";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../db/testing";
import type { Db } from "../db";
import { recordEvent } from "../events";
import { nowIso } from "../ids";
import { createListener } from "../listeners";
import { findFreePort } from "../net";
import { ListenerCounterStore, pruneListenerCounters } from "./listener-counters";
import { renderMetrics } from "./scrape";
import { parseScrape, sampleOf } from "./testing";

// Only the columns without defaults; the rest are left to the migration.
type CertificateRow = Record<string, string | number | null>;

function certificateRow(id: string, over: Partial<CertificateRow> = {}): CertificateRow {
  const at = nowIso();
  return {
    id, name: id, source: "upload", status: "active", domains: JSON.stringify(["private-name.internal.example"]), key_type: "ecdsa-p256", validity_days: null,
    chain_pem: null, sealed_key: "SEALED-KEY-MATERIAL", subject: null, issuer: null, serial: null, fingerprint_sha256: null, not_before: null, not_after: null,
    renew_at: null, renew_reason: null, next_attempt_at: null, attempts: 0, last_error: "LAST-ERROR-TEXT", lease_owner: null, lease_expires_at: null,
    created_by: null, created_at: at, updated_at: at, ...over,
  };
}

async function insertCertificates(db: Db, rows: CertificateRow[]) {
  for (let i = 0; i < rows.length; i += 200) await db.insertInto("certificates").values(rows.slice(i, i + 200) as never).execute();
}

describe.each(TEST_ENGINES)("the /metrics scrape on %s", (kind) => {
  let t: TestDatabase;
  let mainId: string;
  let otherId: string;

  beforeAll(async () => {
    t = await createTestDatabase(kind);
    await insertCertificates(t.db, [
      certificateRow("crt_alpha", { name: "Alpha", source: "acme", status: "active", not_after: "2027-01-01T00:00:00.000Z", renew_at: "2026-12-02T12:00:00.000Z" }),
      certificateRow("crt_beta", { name: 'Beta "quoted" \\ back\\slash', source: "upload", status: "failed", not_after: "2026-06-01T00:00:00.000Z" }),
      certificateRow("crt_gamma", { name: "Gamma", source: "acme", status: "pending" }),
    ]);
    const main = await createListener(t.db, SYSTEM_ACTOR, { name: "public https", kind: "https", bindAddress: "127.0.0.1", port: await findFreePort(), upstreamUrl: "http://127.0.0.1:9" });
    const other = await createListener(t.db, SYSTEM_ACTOR, { name: "plain http", kind: "http", bindAddress: "127.0.0.1", port: await findFreePort() });
    mainId = main.id;
    otherId = other.id;

    for (const type of ["tls.requesting", "tls.requesting", "tls.renewing", "tls.renewing", "tls.renewing"]) await recordEvent(t.db, { type, certificateId: "crt_alpha", message: "ATTEMPT-MESSAGE" });
    for (let i = 0; i < 4; i++) await recordEvent(t.db, { type: "tls.renewal_failed", severity: "error", certificateId: "crt_beta", message: "FAILED-MESSAGE" });
    await recordEvent(t.db, { type: "tls.served_mismatch", severity: "warning", listenerId: mainId, message: "MISMATCH-MESSAGE" });
    await recordEvent(t.db, { type: "tls.served_mismatch", severity: "warning", listenerId: mainId, message: "MISMATCH-MESSAGE" });

    const at = nowIso();
    for (const [hostname, status] of [["a.example.test", "mismatch"], ["b.example.test", "mismatch"], ["c.example.test", "serving"]] as const) {
      await t.db.insertInto("listener_checks").values({ listener_id: mainId, hostname, checked_at: at, status, expected_fingerprint: null, served_fingerprint: null, served_subject: null, detail: null }).execute();
    }
    await t.db.insertInto("listener_checks").values({ listener_id: otherId, hostname: "x.example.test", checked_at: at, status: "error", expected_fingerprint: null, served_fingerprint: null, served_subject: null, detail: null }).execute();

    // Two edge workers serve the same listener; the scrape adds them up.
    const first = new ListenerCounterStore(t.db, "worker-one");
    const second = new ListenerCounterStore(t.db, "worker-two");
    Object.assign(first.for(mainId), { handshakes: 10, handshakeErrors: 2, fallbackServed: 1, requests: 30, upstreamErrors: 3 });
    Object.assign(second.for(mainId), { handshakes: 5, handshakeErrors: 1, fallbackServed: 0, requests: 7, upstreamErrors: 0 });
    Object.assign(second.for(otherId), { requests: 4 });
    await first.flush();
    await second.flush();
    // A later flush writes the new totals in place: nothing is counted twice.
    first.for(mainId).handshakes += 1;
    await first.flush();
    await first.flush();
    // Counters of a listener that has since been deleted are not shown.
    Object.assign(first.for("lst_deleted"), { handshakes: 99 });
    await first.flush();
  });

  afterAll(() => t?.destroy());

  it("shows each certificate's expiry, renewal time and status with its id, name and source", async () => {
    const m = parseScrape(await renderMetrics(t.db));
    expect(m.get("portcullis_certificate_expiry_timestamp_seconds")?.type).toBe("GAUGE");
    expect(sampleOf(m, "portcullis_certificate_expiry_timestamp_seconds", { id: "crt_alpha", name: "Alpha", source: "acme" })).toBe(1798761600);
    expect(sampleOf(m, "portcullis_certificate_renew_at_timestamp_seconds", { id: "crt_alpha" })).toBe(1796212800);
    // Label values with quotes and backslashes survive the text format.
    expect(sampleOf(m, "portcullis_certificate_expiry_timestamp_seconds", { id: "crt_beta", name: 'Beta "quoted" \\ back\\slash', source: "upload" })).toBe(Date.parse("2026-06-01T00:00:00Z") / 1000);
    expect(sampleOf(m, "portcullis_certificate_renew_at_timestamp_seconds", { id: "crt_beta" })).toBeUndefined();
    expect(sampleOf(m, "portcullis_certificate_expiry_timestamp_seconds", { id: "crt_gamma" })).toBeUndefined();

    expect(sampleOf(m, "portcullis_certificate_status", { id: "crt_alpha", status: "active" })).toBe(1);
    expect(sampleOf(m, "portcullis_certificate_status", { id: "crt_beta", status: "failed" })).toBe(1);
    expect(sampleOf(m, "portcullis_certificate_status", { id: "crt_gamma", status: "pending" })).toBe(1);
    expect(m.get("portcullis_certificate_status")?.metrics).toHaveLength(3);
    expect(sampleOf(m, "portcullis_certificates", { status: "active" })).toBe(1);
    expect(sampleOf(m, "portcullis_certificates", { status: "failed" })).toBe(1);
    expect(sampleOf(m, "portcullis_certificates", { status: "renewing" })).toBe(0);
  });

  it("counts renewal attempts and failures, and events by type and severity", async () => {
    const m = parseScrape(await renderMetrics(t.db));
    expect(m.get("portcullis_renewals_attempted_total")?.type).toBe("COUNTER");
    expect(sampleOf(m, "portcullis_renewals_attempted_total")).toBe(5);
    expect(sampleOf(m, "portcullis_renewals_failed_total")).toBe(4);
    expect(sampleOf(m, "portcullis_events_total", { type: "tls.renewing", severity: "info" })).toBe(3);
    expect(sampleOf(m, "portcullis_events_total", { type: "tls.renewal_failed", severity: "error" })).toBe(4);
    expect(sampleOf(m, "portcullis_events_total", { type: "tls.served_mismatch", severity: "warning" })).toBe(2);
  });

  it("sums the listener counters of every worker, per listener, and shows served-certificate mismatches", async () => {
    const m = parseScrape(await renderMetrics(t.db));
    const main = { listener_id: mainId, listener_name: "public https" };
    const other = { listener_id: otherId, listener_name: "plain http" };
    expect(sampleOf(m, "portcullis_listener_handshakes_total", main)).toBe(16);
    expect(sampleOf(m, "portcullis_listener_handshake_errors_total", main)).toBe(3);
    expect(sampleOf(m, "portcullis_listener_fallback_served_total", main)).toBe(1);
    expect(sampleOf(m, "portcullis_listener_requests_total", main)).toBe(37);
    expect(sampleOf(m, "portcullis_listener_upstream_errors_total", main)).toBe(3);
    expect(sampleOf(m, "portcullis_listener_requests_total", other)).toBe(4);
    expect(sampleOf(m, "portcullis_listener_handshakes_total", other)).toBe(0);
    expect(sampleOf(m, "portcullis_listener_handshakes_total", { listener_id: "lst_deleted" })).toBeUndefined();
    expect(sampleOf(m, "portcullis_listener_served_mismatches", main)).toBe(2);
    expect(sampleOf(m, "portcullis_listener_served_mismatches", other)).toBe(0);
    expect(sampleOf(m, "portcullis_listener_served_mismatch_events_total", main)).toBe(2);
    expect(sampleOf(m, "portcullis_listener_served_mismatch_events_total", other)).toBe(0);
  });

  it("shows names and ids only: no domains, keys or error text; process metrics on request", async () => {
    const text = await renderMetrics(t.db);
    for (const secret of ["private-name", "SEALED-KEY", "LAST-ERROR", "-MESSAGE"]) expect(text).not.toContain(secret);
    expect(text).not.toContain("process_cpu");
    const usedBefore = process.cpuUsage();
    const withProcess = parseScrape(await renderMetrics(t.db, { processMetrics: true }));
    // A total since the process started, not since the first scrape.
    expect(sampleOf(withProcess, "process_cpu_user_seconds_total")).toBeGreaterThanOrEqual(usedBefore.user / 1e6);
    expect(sampleOf(withProcess, "process_cpu_seconds_total")).toBeGreaterThanOrEqual((usedBefore.user + usedBefore.system) / 1e6);
    // Read again at each scrape: the next one counts what was used since, and never less than the process says.
    const busyUntil = performance.now() + 20;
    while (performance.now() < busyUntil);
    const usedBeforeNext = process.cpuUsage();
    const next = parseScrape(await renderMetrics(t.db, { processMetrics: true }));
    expect(sampleOf(next, "process_cpu_seconds_total")).toBeGreaterThanOrEqual((usedBeforeNext.user + usedBeforeNext.system) / 1e6);
    expect(sampleOf(next, "process_cpu_seconds_total")).toBeGreaterThan(sampleOf(withProcess, "process_cpu_seconds_total")!);
    expect(sampleOf(withProcess, "portcullis_renewals_failed_total")).toBe(4);
  });

  it("prunes counter rows older than 30 days whose listener is gone, and keeps the rest", async () => {
    const old = nowIso(new Date(Date.now() - 31 * 24 * 60 * 60_000));
    const row = { handshakes: 1, handshake_errors: 0, fallback_served: 0, requests: 0, upstream_errors: 0 };
    await t.db.insertInto("listener_counters").values([
      { worker_id: "old-worker", listener_id: "lst_gone", ...row, updated_at: old },
      { worker_id: "old-worker", listener_id: mainId, ...row, updated_at: old },
    ]).execute();
    expect(await pruneListenerCounters(t.db)).toBe(1);
    const left = await t.db.selectFrom("listener_counters").select(["worker_id", "listener_id"]).orderBy("worker_id").orderBy("listener_id").execute();
    expect(left).toContainEqual({ worker_id: "old-worker", listener_id: mainId });
    expect(left).toContainEqual({ worker_id: "worker-one", listener_id: "lst_deleted" });
    expect(left).not.toContainEqual({ worker_id: "old-worker", listener_id: "lst_gone" });
    // The dead worker's row still counts: totals never go backwards when a worker exits.
    const m = parseScrape(await renderMetrics(t.db));
    expect(sampleOf(m, "portcullis_listener_handshakes_total", { listener_id: mainId })).toBe(17);
    await t.db.deleteFrom("listener_counters").where("worker_id", "=", "old-worker").execute();
  });

  it("goes on in a new row before a count outgrows PostgreSQL's 32-bit integer column", async () => {
    const store = new ListenerCounterStore(t.db, "worker-busy");
    store.for(otherId).requests = 1_500_000_000;
    await store.flush();
    store.for(otherId).requests = 2_500_000_000;
    await store.flush();
    const rows = await t.db.selectFrom("listener_counters").select(["worker_id", "requests"]).where("worker_id", "like", "worker-busy%").orderBy("worker_id").execute();
    expect(rows).toEqual([{ worker_id: "worker-busy", requests: 1_500_000_000 }, { worker_id: "worker-busy#1", requests: 1_000_000_000 }]);
    const m = parseScrape(await renderMetrics(t.db));
    expect(sampleOf(m, "portcullis_listener_requests_total", { listener_id: otherId })).toBe(2_500_000_004);
    await t.db.deleteFrom("listener_counters").where("worker_id", "like", "worker-busy%").execute();
  });

  it("stays fast with 2,000 certificates: a few aggregate queries, not one per row", async () => {
    const local = await createTestDatabase(kind);
    try {
      const base = Date.parse("2027-03-01T00:00:00Z");
      await insertCertificates(local.db, Array.from({ length: 2000 }, (_, i) => certificateRow(`crt_bulk_${i}`, { name: `bulk ${i}`, not_after: new Date(base + i * 60_000).toISOString(), renew_at: new Date(base - 30 * 86_400_000).toISOString() })));
      for (let i = 0; i < 20; i++) await createListener(local.db, SYSTEM_ACTOR, { name: `listener ${i}`, kind: "https", bindAddress: "127.0.0.1", port: 20_000 + i, upstreamUrl: "http://127.0.0.1:9", enabled: false });
      await renderMetrics(local.db); // warm-up (module loading, prepared statements)
      const started = performance.now();
      const text = await renderMetrics(local.db);
      const elapsed = performance.now() - started;
      const m = parseScrape(text);
      expect(m.get("portcullis_certificate_expiry_timestamp_seconds")?.metrics).toHaveLength(2000);
      expect(sampleOf(m, "portcullis_certificate_expiry_timestamp_seconds", { id: "crt_bulk_1999" })).toBe((base + 1999 * 60_000) / 1000);
      expect(sampleOf(m, "portcullis_certificates", { status: "active" })).toBe(2000);
      expect(elapsed).toBeLessThan(1000);
    } finally {
      await local.destroy();
    }
  });
});
