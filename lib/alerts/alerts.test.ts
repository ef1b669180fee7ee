import crypto from "node:crypto";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startWebhookReceiver, type ReceivedRequest, type WebhookReceiver } from "../../tests/support/webhook-receiver";
import { createAccount } from "../acme/accounts";
import { createAcmeCertificate } from "../acme/certificates";
import { configureAcmeTransport } from "../acme/client";
import { AcmeEngine } from "../acme/engine";
import { SYSTEM_ACTOR, type Actor } from "../audit";
import { createSelfSignedCertificateRecord, markExpiredCertificates } from "../certificates";
import { Keyring, sealingKeyFromBytes } from "../crypto/seal";
import { openDatabase, type Db } from "../db/connection";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../db/testing";
import { listEvents, recordEvent } from "../events";
import { createListener } from "../listeners/index";
import { findFreePort } from "../net";
import { secretContext } from "./constants";
import { attemptDelivery } from "./deliver";
import { AlertDispatcher } from "./dispatcher";
import { crossedThreshold } from "./expiry";
import { verifySignature } from "./signature";
import { createWebhook, deleteWebhook, getWebhook, listDeliveries, listWebhooks, queueTestDelivery, rotateWebhookSecret, updateWebhook, type AlertPayload } from "./webhooks";

const keyring = new Keyring(sealingKeyFromBytes(crypto.randomBytes(32)));
const log = pino({ level: process.env.TEST_LOG ?? "silent" });
const ADMIN: Actor = { id: "usr_admin", label: "admin@example.test", role: "admin" };
const DAY = 24 * 3_600_000;

function expectSigned(request: ReceivedRequest, secret: string) {
  expect(verifySignature(secret, request.body, request.headers["x-portcullis-signature"] as string)).toMatchObject({ ok: true });
  expect(request.headers["content-type"]).toBe("application/json");
  expect(request.headers["user-agent"]).toMatch(/^Portcullis\/\d+\.\d+\.\d+/);
  const body = JSON.parse(request.body) as AlertPayload;
  expect(request.headers["x-portcullis-event"]).toBe(body.type);
  expect(request.headers["x-portcullis-delivery"]).toBe(body.id);
  return body;
}

describe.each(TEST_ENGINES)("webhook alerts on %s", (kind) => {
  let t: TestDatabase;
  let receiver: WebhookReceiver;
  let clock = new Date();
  const dispatcher = (opts: Partial<ConstructorParameters<typeof AlertDispatcher>[0]> = {}) =>
    new AlertDispatcher({ db: t.db, keyring, log, now: () => clock, timeoutMs: 3000, ...opts });
  const selfSigned = (name: string, validityDays = 365) => createSelfSignedCertificateRecord(t.db, keyring, SYSTEM_ACTOR, { domains: [name], validityDays }, clock);
  const hook = (extra: Record<string, unknown> = {}) => createWebhook(t.db, keyring, ADMIN, { name: `hook-${crypto.randomBytes(3).toString("hex")}`, url: receiver.url, ...extra });

  beforeAll(async () => {
    t = await createTestDatabase(kind);
    // As the worker does: acme-client's own retries off, so that a refused connection fails at once.
    configureAcmeTransport(undefined);
    // The cursor starts at the newest event, as on a first start.
    await dispatcher().followEvents();
  });
  afterAll(async () => {
    await t?.destroy();
  });
  afterEach(async () => {
    await receiver?.stop();
    await t.db.deleteFrom("webhook_deliveries").execute();
    await t.db.deleteFrom("webhooks").execute();
  });
  const freshReceiver = async () => (receiver = await startWebhookReceiver());

  it("a certificate failing five times in a row (the real engine, CA unreachable) alerts once, signed; after a renewal, a new failure alerts again", async () => {
    await freshReceiver();
    clock = new Date();
    const created = await hook();
    expect(created.secret).toMatch(/^whsec_/);
    const deadPort = await findFreePort();
    const directoryUrl = `https://127.0.0.1:${deadPort}/dir`;
    const account = await createAccount(t.db, keyring, SYSTEM_ACTOR, { directoryUrl, email: "ops@example.com", agreeTos: true });
    const { certificate } = await createAcmeCertificate(t.db, keyring, { acme: { directoryUrl } } as never, SYSTEM_ACTOR, { domains: [`fails-${kind}.example.test`], challenge: "http-01", accountId: account.id }, clock);
    const engine = () => new AcmeEngine({ db: t.db, keyring, log, now: () => clock, pollMs: 50 });
    const alerts = dispatcher();
    for (let i = 0; i < 5; i++) {
      await engine().drain();
      const row = await t.db.selectFrom("certificates").select(["status", "next_attempt_at", "last_error"]).where("id", "=", certificate.id).executeTakeFirstOrThrow();
      expect(row.status).toBe("failed");
      await alerts.drain();
      clock = new Date(row.next_attempt_at!);
    }
    const failures = (await listEvents(t.db, { certificateId: certificate.id })).filter((e) => e.type === "tls.renewal_failed");
    expect(failures).toHaveLength(5);
    expect(receiver.requests).toHaveLength(1);
    const body = expectSigned(receiver.requests[0], created.secret);
    expect(body).toMatchObject({ type: "tls.renewal_failed", problemKey: `renewal_failed:${certificate.id}`, severity: "error", certificate: { id: certificate.id, domains: [`fails-${kind}.example.test`] } });
    expect(body.message).toMatch(/failed/);
    expect(body.test).toBeUndefined();
    // A signature made with another secret does not verify.
    expect(verifySignature("whsec_other", receiver.requests[0].body, receiver.requests[0].headers["x-portcullis-signature"] as string).ok).toBe(false);
    const problem = await t.db.selectFrom("alert_problems").selectAll().where("problem_key", "=", `renewal_failed:${certificate.id}`).executeTakeFirstOrThrow();
    expect(Number(problem.occurrences)).toBe(5);
    expect(problem.resolved_at).toBeNull();

    // Resolved by a renewal (the event the engine records), then failing again: a new problem, a new alert.
    await recordEvent(t.db, { type: "tls.renewed", certificateId: certificate.id, message: "renewed", detail: { status: "active", fingerprintSha256: "AA:BB" } });
    await alerts.drain();
    expect((await t.db.selectFrom("alert_problems").select("resolved_at").where("problem_key", "=", problem.problem_key).executeTakeFirstOrThrow()).resolved_at).not.toBeNull();
    await engine().drain();
    await alerts.drain();
    expect(receiver.requests).toHaveLength(2);
    expect(expectSigned(receiver.requests[1], created.secret).problemKey).toBe(`renewal_failed:${certificate.id}`);
    const deliveries = await listDeliveries(t.db, created.id);
    expect(deliveries.map((d) => [d.status, d.attempts, d.lastStatusCode])).toEqual([
      ["delivered", 1, 200],
      ["delivered", 1, 200],
    ]);
  });

  it("never returns the secret after creation; it is sealed in the database; rotation replaces it", async () => {
    await freshReceiver();
    const created = await hook();
    const listed = JSON.stringify(await listWebhooks(t.db));
    const got = JSON.stringify(await getWebhook(t.db, created.id));
    expect(listed).toContain(created.name);
    expect(listed).not.toContain(created.secret);
    expect(got).not.toContain(created.secret);
    expect(got).not.toContain("sealed");
    const row = await t.db.selectFrom("webhooks").selectAll().where("id", "=", created.id).executeTakeFirstOrThrow();
    expect(row.sealed_secret).not.toContain(created.secret.slice(6));
    expect(keyring.open(row.sealed_secret, secretContext(created.id))).toBe(created.secret);
    expect(() => keyring.open(row.sealed_secret, secretContext("whk_other"))).toThrow(/integrity/);
    const audit = JSON.stringify(await t.db.selectFrom("audit_log").selectAll().execute());
    expect(audit).toContain("webhook.create");
    expect(audit).not.toContain(created.secret);

    const rotated = await rotateWebhookSecret(t.db, keyring, ADMIN, created.id);
    expect(rotated.secret).not.toBe(created.secret);
    const test = await queueTestDelivery(t.db, ADMIN, created.id, {});
    await attemptDelivery(t.db, keyring, test.id, { workerId: "w1" });
    expect(verifySignature(rotated.secret, receiver.requests[0].body, receiver.requests[0].headers["x-portcullis-signature"] as string).ok).toBe(true);
    expect(verifySignature(created.secret, receiver.requests[0].body, receiver.requests[0].headers["x-portcullis-signature"] as string).ok).toBe(false);
  });

  it.each([
    ["ftp://hooks.example.com/x", /https:\/\/ or http:\/\//],
    ["https://user:pass@hooks.example.com/x", /remove the user name and password/],
    ["not a url", /this is not a URL/],
    ["https://hooks.example.com/a b", /spaces/],
    ["hooks.example.com/x", /not a URL/],
    ["javascript:alert(1)", /https:\/\/ or http:\/\//],
    ["", /give the URL/],
  ])("refuses the URL %j with a clear message, and saves nothing", async (url, message) => {
    const before = await listWebhooks(t.db);
    const err = await createWebhook(t.db, keyring, ADMIN, { name: "bad", url }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "validation_failed", status: 400, fieldErrors: { url: [expect.stringMatching(message)] } });
    expect(await listWebhooks(t.db)).toEqual(before);
  });

  it("accepts loopback and private addresses, checks event types, names and bodies", async () => {
    const a = await createWebhook(t.db, keyring, ADMIN, { name: "loopback", url: "http://127.0.0.1:9/x" });
    expect(a.eventTypes).toEqual(["tls.renewal_failed", "tls.expiring", "tls.expired", "tls.fallback_served", "tls.served_mismatch"]);
    expect(a.enabled).toBe(true);
    await createWebhook(t.db, keyring, ADMIN, { name: "private", url: "https://10.1.2.3/hook", eventTypes: ["tls.expiring"] });
    await expect(createWebhook(t.db, keyring, ADMIN, { name: "loopback", url: "http://127.0.0.1:9/y" })).rejects.toMatchObject({ code: "conflict" });
    await expect(createWebhook(t.db, keyring, ADMIN, { name: "x", url: "http://127.0.0.1/", eventTypes: ["tls.nope"] })).rejects.toMatchObject({ code: "validation_failed", fieldErrors: { eventTypes: [expect.stringMatching(/must be one of/)] } });
    await expect(createWebhook(t.db, keyring, ADMIN, { name: "x", url: "http://127.0.0.1/", eventTypes: [] })).rejects.toMatchObject({ fieldErrors: { eventTypes: ["choose at least one event type"] } });
    await expect(createWebhook(t.db, keyring, ADMIN, [1, 2])).rejects.toMatchObject({ code: "bad_request" });
    await expect(updateWebhook(t.db, ADMIN, a.id, { url: "gopher://x" })).rejects.toMatchObject({ code: "validation_failed" });
    await expect(updateWebhook(t.db, ADMIN, a.id, { enabled: "yes" })).rejects.toMatchObject({ fieldErrors: { enabled: [expect.stringMatching(/true or false/)] } });
    expect((await updateWebhook(t.db, ADMIN, a.id, { enabled: false, eventTypes: ["tls.expired", "tls.renewal_failed"] })).eventTypes).toEqual(["tls.renewal_failed", "tls.expired"]);
    await expect(updateWebhook(t.db, ADMIN, "whk_missing", { enabled: false })).rejects.toMatchObject({ code: "not_found" });
    await deleteWebhook(t.db, ADMIN, a.id);
    expect(await getWebhook(t.db, a.id)).toBeUndefined();
  });

  it("retries on HTTP 500 after 30 s and 2 min, then delivers; every attempt's result is stored", async () => {
    await freshReceiver();
    clock = new Date();
    const created = await hook();
    receiver.respondWith(500, 503);
    const cert = await selfSigned(`retry-${kind}.example.test`);
    await recordEvent(t.db, { type: "tls.renewal_failed", severity: "error", certificateId: cert.id, message: "boom" });
    const alerts = dispatcher();
    await alerts.drain();
    let [d] = await listDeliveries(t.db, created.id);
    expect(d).toMatchObject({ status: "pending", attempts: 1, lastStatusCode: 500, lastError: "the receiver answered HTTP 500: receiver says 500" });
    expect(new Date(d.nextAttemptAt!).getTime() - clock.getTime()).toBe(30_000);
    expect(d.lastDurationMs).toBeGreaterThanOrEqual(0);
    await alerts.drain();
    expect(receiver.requests).toHaveLength(1); // not due yet
    clock = new Date(clock.getTime() + 30_000);
    await alerts.drain();
    [d] = await listDeliveries(t.db, created.id);
    expect(d).toMatchObject({ status: "pending", attempts: 2, lastStatusCode: 503 });
    expect(new Date(d.nextAttemptAt!).getTime() - clock.getTime()).toBe(120_000);
    clock = new Date(clock.getTime() + 120_000);
    await alerts.drain();
    [d] = await listDeliveries(t.db, created.id);
    expect(d).toMatchObject({ status: "delivered", attempts: 3, lastStatusCode: 200, lastError: null, nextAttemptAt: null });
    expect(receiver.requests).toHaveLength(3);
    // The same delivery, retried: one id, one body.
    expect(new Set(receiver.requests.map((r) => r.headers["x-portcullis-delivery"])).size).toBe(1);
    for (const r of receiver.requests) expectSigned(r, created.secret);
  });

  it("a receiver that is down: 'connection refused' is recorded, retried with backoff, and failed after the last attempt", async () => {
    await freshReceiver();
    clock = new Date();
    const created = await hook();
    await receiver.stop();
    const cert = await selfSigned(`down-${kind}.example.test`);
    await recordEvent(t.db, { type: "tls.renewal_failed", severity: "error", certificateId: cert.id, message: "boom" });
    const alerts = dispatcher();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      await alerts.drain();
      const [d] = await listDeliveries(t.db, created.id);
      expect(d.attempts).toBe(i + 1);
      expect(d.lastStatusCode).toBeNull();
      expect(d.lastError).toMatch(/^connection refused by 127\.0\.0\.1:\d+/);
      if (d.status === "failed") break;
      delays.push((new Date(d.nextAttemptAt!).getTime() - clock.getTime()) / 1000);
      clock = new Date(d.nextAttemptAt!);
    }
    expect(delays).toEqual([30, 120, 600, 3600, 21600]);
    const [d] = await listDeliveries(t.db, created.id);
    expect(d).toMatchObject({ status: "failed", attempts: 6, nextAttemptAt: null });
    // Back up: a failed delivery is not retried any more.
    await receiver.start();
    clock = new Date(clock.getTime() + DAY);
    await alerts.drain();
    expect(receiver.requests).toHaveLength(0);
  });

  it("two dispatchers racing (on PostgreSQL with separate pools) send every alert exactly once", async () => {
    await freshReceiver();
    clock = new Date();
    const created = await hook();
    // PostgreSQL: a second pool, as a second worker has. SQLite: the same handle (better-sqlite3 waits
    // for a lock synchronously, so two handles in one process would block each other's commits).
    const second: Db = kind === "postgres" ? openDatabase({ kind: "postgres", url: t.url }).db : t.db;
    try {
      const certs = await Promise.all(Array.from({ length: 12 }, (_, i) => selfSigned(`race-${i}-${kind}.example.test`)));
      for (const c of certs) {
        for (let k = 0; k < 3; k++) await recordEvent(t.db, { type: "tls.renewal_failed", severity: "error", certificateId: c.id, message: `failure ${k}` });
      }
      const a = dispatcher({ workerId: "a" });
      const b = new AlertDispatcher({ db: second, keyring, log, now: () => clock, workerId: "b", timeoutMs: 3000 });
      await Promise.all([a.drain(), b.drain(), a.drain(), b.drain()]);
      await Promise.all([a.drain(), b.drain()]);
      expect(receiver.requests).toHaveLength(12);
      const keys = receiver.requests.map((r) => (JSON.parse(r.body) as AlertPayload).problemKey).sort();
      expect(keys).toEqual(certs.map((c) => `renewal_failed:${c.id}`).sort());
      const deliveries = await listDeliveries(t.db, created.id);
      expect(deliveries).toHaveLength(12);
      expect(deliveries.every((d) => d.status === "delivered" && d.attempts === 1)).toBe(true);
      const problems = await t.db.selectFrom("alert_problems").select("occurrences").where("problem_key", "in", keys).execute();
      expect(problems.map((p) => Number(p.occurrences))).toEqual(Array(12).fill(3));
    } finally {
      if (second !== t.db) await second.destroy();
    }
  });

  it("a webhook gets only the event types it chose; a disabled one gets nothing", async () => {
    await freshReceiver();
    clock = new Date();
    const other = await startWebhookReceiver();
    try {
      const expiringOnly = await hook({ eventTypes: ["tls.expiring"] });
      const disabled = await createWebhook(t.db, keyring, ADMIN, { name: "disabled", url: other.url, enabled: false });
      const cert = await selfSigned(`filter-${kind}.example.test`);
      await recordEvent(t.db, { type: "tls.renewal_failed", severity: "error", certificateId: cert.id, message: "boom" });
      const listener = await createListener(t.db, SYSTEM_ACTOR, { name: `l-${kind}-filter`, kind: "https", bindAddress: "127.0.0.1", port: await findFreePort(), upstreamUrl: "http://127.0.0.1:3000" });
      await recordEvent(t.db, { type: "tls.fallback_served", severity: "warning", listenerId: listener.id, message: "fallback" });
      await dispatcher().drain();
      expect(receiver.requests).toHaveLength(0);
      expect(other.requests).toHaveLength(0);
      expect(await listDeliveries(t.db, disabled.id)).toEqual([]);
      await recordEvent(t.db, { type: "tls.expiring", severity: "warning", certificateId: cert.id, message: "soon", detail: { thresholdDays: 7, fingerprintSha256: cert.fingerprintSha256 } });
      await dispatcher().drain();
      expect(receiver.requests).toHaveLength(1);
      expect(JSON.parse(receiver.requests[0].body)).toMatchObject({ type: "tls.expiring", problemKey: `expiring:${cert.id}:${cert.fingerprintSha256}:7` });
      expect(other.requests).toHaveLength(0);
      expect((await listDeliveries(t.db, expiringOnly.id)).length).toBe(1);
    } finally {
      await other.stop();
    }
  });

  it("the Test button: one signed delivery with test: true, its result stored; a failing receiver shows the failure at once", async () => {
    await freshReceiver();
    const created = await hook({ eventTypes: ["tls.expiring", "tls.expired"] });
    const queued = await queueTestDelivery(t.db, ADMIN, created.id, { type: "tls.expired" });
    expect(queued).toMatchObject({ status: "pending", test: true, type: "tls.expired" });
    const done = await attemptDelivery(t.db, keyring, queued.id, { workerId: "console" });
    expect(done).toMatchObject({ status: "delivered", attempts: 1, lastStatusCode: 200, lastError: null });
    const body = expectSigned(receiver.requests[0], created.secret);
    expect(body).toMatchObject({ id: queued.id, type: "tls.expired", test: true, problemKey: `test:${queued.id}` });
    // A second attempt at the same delivery does nothing: it is no longer pending.
    expect(await attemptDelivery(t.db, keyring, queued.id, { workerId: "console" })).toBeUndefined();
    expect(receiver.requests).toHaveLength(1);

    // The default type is the webhook's first; a test is one attempt, not retried.
    receiver.respondWith(404);
    const second = await queueTestDelivery(t.db, ADMIN, created.id, undefined);
    expect(second.type).toBe("tls.expiring");
    const failed = await attemptDelivery(t.db, keyring, second.id, { workerId: "console" });
    expect(failed).toMatchObject({ status: "failed", attempts: 1, lastStatusCode: 404, lastError: "the receiver answered HTTP 404: receiver says 404" });
    // A disabled webhook can still be tested (before enabling it).
    await updateWebhook(t.db, ADMIN, created.id, { enabled: false });
    const whileDisabled = await queueTestDelivery(t.db, ADMIN, created.id, {});
    expect(await attemptDelivery(t.db, keyring, whileDisabled.id, { workerId: "console" })).toMatchObject({ status: "delivered" });
    await expect(queueTestDelivery(t.db, ADMIN, created.id, { type: "tls.bogus" })).rejects.toMatchObject({ code: "validation_failed" });
    const audit = (await t.db.selectFrom("audit_log").select("action").where("target_id", "=", created.id).execute()).map((r) => r.action);
    expect(audit).toEqual(expect.arrayContaining(["webhook.create", "webhook.test"]));
  });

  it("expiry notices: 5 days left gives only the 7-day notice; crossing 1 day gives the 1-day notice; a renewed version starts over; tls.expired once", async () => {
    await freshReceiver();
    const start = new Date();
    clock = start;
    const created = await hook();
    const cert = await selfSigned(`expiry-${kind}.example.test`, 30);
    const notAfter = new Date(cert.notAfter!);
    const alerts = dispatcher();
    const notices = async () => (await listEvents(t.db, { certificateId: cert.id, type: "tls.expiring" })).map((e) => (e.detail as { thresholdDays: number }).thresholdDays);

    clock = new Date(notAfter.getTime() - 5 * DAY);
    await alerts.drain();
    await alerts.drain();
    expect(await notices()).toEqual([7]);
    const seven = (await listEvents(t.db, { certificateId: cert.id, type: "tls.expiring" }))[0];
    expect(seven.severity).toBe("warning");
    expect(seven.message).toMatch(/expires in 5 days/);

    clock = new Date(notAfter.getTime() - 2 * DAY);
    await alerts.drain();
    expect(await notices()).toEqual([7]);

    clock = new Date(notAfter.getTime() - 12 * 3_600_000);
    await alerts.drain();
    await alerts.drain();
    expect(await notices()).toEqual([7, 1]);
    const one = (await listEvents(t.db, { certificateId: cert.id, type: "tls.expiring" }))[1];
    expect(one.severity).toBe("error");
    expect(receiver.requests.map((r) => (JSON.parse(r.body) as AlertPayload).problemKey)).toEqual([`expiring:${cert.id}:${cert.fingerprintSha256}:7`, `expiring:${cert.id}:${cert.fingerprintSha256}:1`]);

    // Expired: one tls.expired for this version, however often the sweep runs or the status is reset.
    clock = new Date(notAfter.getTime() + 1000);
    await markExpiredCertificates(t.db, clock);
    await t.db.updateTable("certificates").set({ status: "failed" }).where("id", "=", cert.id).execute();
    await markExpiredCertificates(t.db, clock);
    expect(await listEvents(t.db, { certificateId: cert.id, type: "tls.expired" })).toHaveLength(1);
    await alerts.drain();
    expect(receiver.requests).toHaveLength(3);
    expect(JSON.parse(receiver.requests[2].body)).toMatchObject({ type: "tls.expired", severity: "error", problemKey: `expired:${cert.id}:${cert.fingerprintSha256}` });

    // A renewed version (new fingerprint, 30 more days, as the engine stores it) gets its own notices.
    const newFingerprint = crypto.randomBytes(32).toString("hex").toUpperCase().match(/../g)!.join(":");
    const newNotAfter = new Date(notAfter.getTime() + 30 * DAY);
    await t.db.updateTable("certificates").set({ status: "active", fingerprint_sha256: newFingerprint, not_after: newNotAfter.toISOString() }).where("id", "=", cert.id).execute();
    await recordEvent(t.db, { type: "tls.renewed", certificateId: cert.id, message: "renewed", detail: { status: "active", fingerprintSha256: newFingerprint } });
    clock = new Date(newNotAfter.getTime() - 20 * DAY);
    await alerts.drain();
    expect(await notices()).toEqual([7, 1, 30]);
    expect(JSON.parse(receiver.requests[3].body)).toMatchObject({ problemKey: `expiring:${cert.id}:${newFingerprint}:30` });
    // The old version's problems were resolved by the renewal.
    const open = await t.db.selectFrom("alert_problems").select("problem_key").where("certificate_id", "=", cert.id).where("resolved_at", "is", null).execute();
    expect(open.map((p) => p.problem_key)).toEqual([`expiring:${cert.id}:${newFingerprint}:30`]);
    expect(created.id).toBeTruthy();
  });

  it("crossedThreshold picks the most urgent threshold crossed", () => {
    expect(crossedThreshold(31 * DAY)).toBeUndefined();
    expect(crossedThreshold(30 * DAY)).toBe(30);
    expect(crossedThreshold(20 * DAY)).toBe(30);
    expect(crossedThreshold(5 * DAY)).toBe(7);
    expect(crossedThreshold(DAY)).toBe(1);
    expect(crossedThreshold(60_000)).toBe(1);
    expect(crossedThreshold(0)).toBeUndefined();
  });

  it("fallback: repeated events alert once, the problem resolves after 24 quiet hours, and a new fallback alerts again", async () => {
    await freshReceiver();
    clock = new Date();
    await hook({ eventTypes: ["tls.fallback_served"] });
    const listener = await createListener(t.db, SYSTEM_ACTOR, { name: `l-${kind}-fallback`, kind: "https", bindAddress: "127.0.0.1", port: await findFreePort(), upstreamUrl: "http://127.0.0.1:3000" });
    const alerts = dispatcher();
    for (let i = 0; i < 3; i++) await recordEvent(t.db, { type: "tls.fallback_served", severity: "warning", listenerId: listener.id, message: "fallback" });
    await alerts.drain();
    expect(receiver.requests).toHaveLength(1);
    expect(JSON.parse(receiver.requests[0].body)).toMatchObject({ problemKey: `fallback:${listener.id}`, listener: { id: listener.id, name: listener.name } });
    clock = new Date(Date.now() + 23 * 3_600_000);
    await alerts.drain();
    expect((await t.db.selectFrom("alert_problems").select("resolved_at").where("problem_key", "=", `fallback:${listener.id}`).executeTakeFirstOrThrow()).resolved_at).toBeNull();
    clock = new Date(Date.now() + 25 * 3_600_000);
    await alerts.drain();
    expect((await t.db.selectFrom("alert_problems").select("resolved_at").where("problem_key", "=", `fallback:${listener.id}`).executeTakeFirstOrThrow()).resolved_at).not.toBeNull();
    await recordEvent(t.db, { type: "tls.fallback_served", severity: "warning", listenerId: listener.id, message: "fallback again" });
    await alerts.drain();
    expect(receiver.requests).toHaveLength(2);
  });

  it("mismatch: alerts once per listener and hostname, resolved by a later serving check", async () => {
    await freshReceiver();
    clock = new Date();
    await hook({ eventTypes: ["tls.served_mismatch"] });
    const listener = await createListener(t.db, SYSTEM_ACTOR, { name: `l-${kind}-mismatch`, kind: "https", bindAddress: "127.0.0.1", port: await findFreePort(), upstreamUrl: "http://127.0.0.1:3000" });
    const alerts = dispatcher();
    const mismatch = (hostname: string) => recordEvent(t.db, { type: "tls.served_mismatch", severity: "warning", listenerId: listener.id, message: `mismatch on ${hostname}`, detail: { hostname, expected: "AA", served: "BB" } });
    const check = (hostname: string, status: "serving" | "mismatch", at: Date) =>
      t.db
        .insertInto("listener_checks")
        .values({ listener_id: listener.id, hostname, checked_at: at.toISOString(), status, expected_fingerprint: "AA", served_fingerprint: status === "serving" ? "AA" : "BB", served_subject: null, detail: null })
        .onConflict((oc) => oc.columns(["listener_id", "hostname"]).doUpdateSet({ status, checked_at: at.toISOString() }))
        .execute();
    await check("a.example.test", "mismatch", new Date());
    await check("b.example.test", "mismatch", new Date());
    await mismatch("a.example.test");
    await mismatch("a.example.test");
    await mismatch("b.example.test");
    await alerts.drain();
    expect(receiver.requests.map((r) => (JSON.parse(r.body) as AlertPayload).problemKey).sort()).toEqual([`mismatch:${listener.id}:a.example.test`, `mismatch:${listener.id}:b.example.test`]);
    await check("a.example.test", "serving", new Date(Date.now() + 1000));
    await alerts.drain();
    const open = await t.db.selectFrom("alert_problems").select("problem_key").where("listener_id", "=", listener.id).where("resolved_at", "is", null).execute();
    expect(open.map((p) => p.problem_key)).toEqual([`mismatch:${listener.id}:b.example.test`]);
    await mismatch("a.example.test");
    await alerts.drain();
    expect(receiver.requests).toHaveLength(3);
  });

  it("a running dispatcher is woken by the event itself", async () => {
    await freshReceiver();
    clock = new Date();
    await hook();
    const running = dispatcher({ now: () => new Date(), pollMs: 60_000 });
    running.start();
    try {
      await new Promise((r) => setTimeout(r, 300));
      const cert = await selfSigned(`live-${kind}.example.test`);
      await recordEvent(t.db, { type: "tls.renewal_failed", severity: "error", certificateId: cert.id, message: "boom" });
      await receiver.waitFor(1, 5000);
      expect(JSON.parse(receiver.requests[0].body)).toMatchObject({ problemKey: `renewal_failed:${cert.id}` });
    } finally {
      await running.stop();
    }
  });
});
