import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../db/testing";
import {
  checkNewOrder,
  isLetsEncrypt,
  LETS_ENCRYPT_RATE_LIMITS,
  ledgerSummary,
  namesKey,
  pruneLedger,
  recordFailedValidation,
  recordNewOrder,
  registeredDomain,
} from "./ratelimit";

const PRODUCTION = "https://acme-v02.api.letsencrypt.org/directory";
const STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory";
const ZEROSSL = "https://acme.zerossl.com/v2/DV90";
const PEBBLE = "https://127.0.0.1:14000/dir";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = new Date("2026-11-21T10:00:00.000Z");
const at = (offsetMs: number) => new Date(T0.getTime() + offsetMs);

describe("names and directories", () => {
  it("knows Let's Encrypt production and staging, and nothing else", () => {
    expect(isLetsEncrypt(PRODUCTION)).toBe(true);
    expect(isLetsEncrypt(STAGING)).toBe(true);
    expect(isLetsEncrypt(ZEROSSL)).toBe(false);
    expect(isLetsEncrypt(PEBBLE)).toBe(false);
    expect(isLetsEncrypt("https://acme-v02.api.letsencrypt.org.evil.example/directory")).toBe(false);
    expect(isLetsEncrypt("not a url")).toBe(false);
  });

  it("finds the registered domain the way Let's Encrypt counts it", () => {
    expect(registeredDomain("www.example.com")).toBe("example.com");
    expect(registeredDomain("*.Example.COM")).toBe("example.com");
    expect(registeredDomain("new.blog.example.co.uk")).toBe("example.co.uk");
    expect(registeredDomain("app.example.test")).toBe("example.test");
    expect(registeredDomain("alice.github.io")).toBe("alice.github.io");
    expect(registeredDomain("192.0.2.7")).toBe("192.0.2.7");
    expect(registeredDomain("2001:db8:1:2::7")).toBe("2001:db8:1:2::/64");
    expect(registeredDomain("localhost")).toBe("localhost");
  });

  it("builds the exact-set key: lower-cased, deduplicated, sorted", () => {
    expect(namesKey(["www.Example.com", "example.com", "WWW.example.com", "*.example.com"])).toBe("*.example.com,example.com,www.example.com");
  });

  it("publishes Let's Encrypt's numbers", () => {
    expect(LETS_ENCRYPT_RATE_LIMITS.certificatesPerRegisteredDomain).toEqual({ limit: 50, windowMs: 7 * DAY });
    expect(LETS_ENCRYPT_RATE_LIMITS.certificatesPerExactSet).toEqual({ limit: 5, windowMs: 7 * DAY });
    expect(LETS_ENCRYPT_RATE_LIMITS.failedValidationsPerIdentifier).toEqual({ limit: 5, windowMs: HOUR });
  });
});

describe.each(TEST_ENGINES)("rate-limit ledger on %s", (kind) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await t?.destroy();
  });

  const order = (directoryUrl: string, names: string[], now: Date, exempt = false) =>
    recordNewOrder(t.db, { directoryUrl, names, certificateId: "crt_test", exempt, now });

  it("refuses the 6th order for the same names in 7 days, and allows it once the oldest leaves the window", async () => {
    const names = ["exact.example.com", "www.exact.example.com"];
    for (let i = 0; i < 5; i++) {
      expect(await checkNewOrder(t.db, { directoryUrl: PRODUCTION, names, exempt: false, now: at(i * HOUR) })).toEqual({ allowed: true });
      await order(PRODUCTION, names, at(i * HOUR));
    }

    const sixth = await checkNewOrder(t.db, { directoryUrl: PRODUCTION, names: ["WWW.exact.example.com", "exact.example.com"], exempt: false, now: at(2 * DAY) });
    expect(sixth.allowed).toBe(false);
    if (sixth.allowed) return;
    expect(sixth.limit).toBe("certificatesPerExactSet");
    expect(sixth.nextSlotAt.toISOString()).toBe("2026-11-28T10:00:00.000Z");
    expect(sixth.message).toBe(
      "Let's Encrypt allows 5 certificates for exactly these names every 7 days; 5 were ordered since 21 Nov. " +
        "The next slot opens at 2026-11-28 10:00 UTC. Use 'force' to send the order anyway.",
    );

    // A different set of names under the same registered domain is not this limit's business.
    expect(await checkNewOrder(t.db, { directoryUrl: PRODUCTION, names: ["exact.example.com"], exempt: false, now: at(2 * DAY) })).toEqual({ allowed: true });

    expect(await checkNewOrder(t.db, { directoryUrl: PRODUCTION, names, exempt: false, now: at(7 * DAY - 1000) })).toMatchObject({ allowed: false });
    expect(await checkNewOrder(t.db, { directoryUrl: PRODUCTION, names, exempt: false, now: at(7 * DAY) })).toEqual({ allowed: true });

    // Ordering again then fills the window again, until the second-oldest leaves.
    await order(PRODUCTION, names, at(7 * DAY));
    const again = await checkNewOrder(t.db, { directoryUrl: PRODUCTION, names, exempt: false, now: at(7 * DAY + 60_000) });
    expect(again).toMatchObject({ allowed: false, limit: "certificatesPerExactSet", nextSlotAt: at(7 * DAY + HOUR) });
  });

  it("after a forced order, waits until enough orders have left the window", async () => {
    const names = ["forced.example.com"];
    for (let i = 0; i < 5; i++) await order(PRODUCTION, names, at(i * HOUR));
    await order(PRODUCTION, names, at(DAY)); // sent with 'force'
    const verdict = await checkNewOrder(t.db, { directoryUrl: PRODUCTION, names, exempt: false, now: at(DAY + 60_000) });
    expect(verdict).toMatchObject({ allowed: false, limit: "certificatesPerExactSet", nextSlotAt: at(7 * DAY + HOUR) });
    if (!verdict.allowed) expect(verdict.message).toContain("; 6 were ordered since 21 Nov.");
  });

  it("counts an exact set that spans two registered domains once per order", async () => {
    const names = ["shop.example.org", "shop.example.net"];
    for (let i = 0; i < 4; i++) await order(PRODUCTION, names, at(i * HOUR));
    expect(await checkNewOrder(t.db, { directoryUrl: PRODUCTION, names, exempt: false, now: at(DAY) })).toEqual({ allowed: true });
    await order(PRODUCTION, names, at(DAY));
    expect(await checkNewOrder(t.db, { directoryUrl: PRODUCTION, names, exempt: false, now: at(DAY) })).toMatchObject({ allowed: false, limit: "certificatesPerExactSet" });
    expect((await ledgerSummary(t.db, { directoryUrl: PRODUCTION, names, now: at(DAY) })).exactSet).toEqual({ used: 5, limit: 5 });
  });

  it("refuses the 51st certificate under one registered domain across different name sets, while other domains go on", async () => {
    for (let i = 1; i <= 50; i++) await order(PRODUCTION, [`host${i}.fifty.example`], at(i * 60_000));

    const verdict = await checkNewOrder(t.db, { directoryUrl: PRODUCTION, names: ["host51.fifty.example"], exempt: false, now: at(DAY) });
    expect(verdict.allowed).toBe(false);
    if (verdict.allowed) return;
    expect(verdict.limit).toBe("certificatesPerRegisteredDomain");
    expect(verdict.nextSlotAt).toEqual(at(7 * DAY + 60_000));
    expect(verdict.message).toBe(
      "Let's Encrypt allows 50 certificates per registered domain every 7 days; 50 were ordered for fifty.example since 21 Nov. " +
        "The next slot opens at 2026-11-28 10:01 UTC. Use 'force' to send the order anyway.",
    );

    expect(await checkNewOrder(t.db, { directoryUrl: PRODUCTION, names: ["other.org", "www.other.org"], exempt: false, now: at(DAY) })).toEqual({ allowed: true });
    // One full domain among the names is enough to refuse the whole order.
    expect(await checkNewOrder(t.db, { directoryUrl: PRODUCTION, names: ["other.org", "host51.fifty.example"], exempt: false, now: at(DAY) })).toMatchObject({
      allowed: false,
      limit: "certificatesPerRegisteredDomain",
    });
  });

  it("counts each registered domain once per order", async () => {
    await order(PRODUCTION, ["a.once.example", "b.once.example", "once.example", "www.twice.example"], T0);
    const summary = await ledgerSummary(t.db, { directoryUrl: PRODUCTION, names: ["c.once.example", "twice.example"], now: at(HOUR) });
    expect(summary.perDomain).toEqual([
      { domain: "once.example", used: 1, limit: 50 },
      { domain: "twice.example", used: 1, limit: 50 },
    ]);
    expect(summary.exactSet).toEqual({ used: 0, limit: 5 });
  });

  it("refuses a name that failed validation 5 times in the last hour, until the first failure is an hour old", async () => {
    const directoryUrl = PRODUCTION;
    for (let i = 0; i < 5; i++) {
      // A wildcard's authorization is for its base name: both spellings share the count.
      const identifier = i % 2 ? "fails.example.net" : "*.Fails.example.net";
      await recordFailedValidation(t.db, { directoryUrl, identifier, certificateId: "crt_fail", now: at(2 * 60_000 + i * 5 * 60_000) });
    }

    const verdict = await checkNewOrder(t.db, { directoryUrl, names: ["*.fails.example.net"], exempt: false, now: at(30 * 60_000) });
    expect(verdict.allowed).toBe(false);
    if (verdict.allowed) return;
    expect(verdict.limit).toBe("failedValidationsPerIdentifier");
    expect(verdict.nextSlotAt).toEqual(at(HOUR + 2 * 60_000));
    expect(verdict.message).toBe(
      "Let's Encrypt allows 5 failed validations of a name per hour; fails.example.net failed 5 times since 10:02 UTC. " +
        "The next attempt is possible at 2026-11-21 11:02 UTC. Fix what makes the validation fail first. Use 'force' to send the order anyway.",
    );

    expect(await checkNewOrder(t.db, { directoryUrl, names: ["works.example.net"], exempt: false, now: at(30 * 60_000) })).toEqual({ allowed: true });
    expect(await checkNewOrder(t.db, { directoryUrl, names: ["fails.example.net"], exempt: false, now: at(HOUR + 2 * 60_000) })).toEqual({ allowed: true });

    const summary = await ledgerSummary(t.db, { directoryUrl, names: ["fails.example.net", "*.fails.example.net"], now: at(30 * 60_000) });
    expect(summary.failedValidations).toEqual([{ identifier: "fails.example.net", used: 5, limit: 5 }]);
  });

  it("when several limits are full, reports the one that frees up last", async () => {
    const names = ["both.example.info"];
    for (let i = 0; i < 5; i++) await order(PRODUCTION, names, T0);
    const lateFailures = 7 * DAY - 40 * 60_000;
    for (let i = 0; i < 5; i++) {
      await recordFailedValidation(t.db, { directoryUrl: PRODUCTION, identifier: names[0], certificateId: null, now: at(lateFailures + i * 60_000) });
    }
    const verdict = await checkNewOrder(t.db, { directoryUrl: PRODUCTION, names, exempt: false, now: at(7 * DAY - 30 * 60_000) });
    expect(verdict).toMatchObject({ allowed: false, limit: "failedValidationsPerIdentifier", nextSlotAt: at(lateFailures + HOUR) });
  });

  it("does not count exempt (ARI-window) renewals, and never refuses one", async () => {
    const names = ["renew.example.org"];
    for (let i = 0; i < 6; i++) await order(PRODUCTION, names, at(i * HOUR), true);
    for (let i = 0; i < 4; i++) await order(PRODUCTION, names, at(6 * HOUR + i * HOUR));

    expect(await checkNewOrder(t.db, { directoryUrl: PRODUCTION, names, exempt: false, now: at(DAY) })).toEqual({ allowed: true });
    expect((await ledgerSummary(t.db, { directoryUrl: PRODUCTION, names, now: at(DAY) })).exactSet).toEqual({ used: 4, limit: 5 });

    await order(PRODUCTION, names, at(DAY));
    expect(await checkNewOrder(t.db, { directoryUrl: PRODUCTION, names, exempt: false, now: at(DAY + HOUR) })).toMatchObject({
      allowed: false,
      nextSlotAt: at(7 * DAY + 6 * HOUR),
    });
    expect(await checkNewOrder(t.db, { directoryUrl: PRODUCTION, names, exempt: true, now: at(DAY + HOUR) })).toEqual({ allowed: true });
  });

  it("counts staging apart from production", async () => {
    const names = ["staged.example.com"];
    for (let i = 0; i < 5; i++) await order(STAGING, names, at(i * HOUR));

    const staging = await checkNewOrder(t.db, { directoryUrl: STAGING, names, exempt: false, now: at(DAY) });
    expect(staging).toMatchObject({ allowed: false, limit: "certificatesPerExactSet" });
    if (!staging.allowed) expect(staging.message).toMatch(/^Let's Encrypt staging allows 5 certificates/);
    expect(await checkNewOrder(t.db, { directoryUrl: PRODUCTION, names, exempt: false, now: at(DAY) })).toEqual({ allowed: true });
  });

  it("records orders for other CAs but never refuses them", async () => {
    const names = ["elsewhere.example.com"];
    for (let i = 0; i < 8; i++) {
      await order(ZEROSSL, names, at(i * 60_000));
      await order(PEBBLE, names, at(i * 60_000));
      await recordFailedValidation(t.db, { directoryUrl: PEBBLE, identifier: names[0], certificateId: null, now: at(i * 60_000) });
    }
    expect(await checkNewOrder(t.db, { directoryUrl: ZEROSSL, names, exempt: false, now: at(HOUR / 2) })).toEqual({ allowed: true });
    expect(await checkNewOrder(t.db, { directoryUrl: PEBBLE, names, exempt: false, now: at(HOUR / 2) })).toEqual({ allowed: true });

    const summary = await ledgerSummary(t.db, { directoryUrl: PEBBLE, names, now: at(HOUR / 2) });
    expect(summary.exactSet.used).toBe(8);
    expect(summary.failedValidations).toEqual([{ identifier: "elsewhere.example.com", used: 8, limit: 5 }]);
  });

  it("prunes rows older than 8 days and keeps the rest", async () => {
    const directoryUrl = "https://prune.example/directory";
    await order(directoryUrl, ["old.prune.example"], at(-9 * DAY));
    await recordFailedValidation(t.db, { directoryUrl, identifier: "old.prune.example", certificateId: null, now: at(-8 * DAY - 1000) });
    await order(directoryUrl, ["new.prune.example"], at(-7 * DAY));

    const before = await t.db.selectFrom("acme_rate_ledger").select("at").where("directory_url", "=", directoryUrl).execute();
    expect(before).toHaveLength(3);

    const deleted = await pruneLedger(t.db, T0);
    expect(deleted).toBe(2);
    const after = await t.db.selectFrom("acme_rate_ledger").select("at").where("directory_url", "=", directoryUrl).execute();
    expect(after.map((r) => r.at)).toEqual([at(-7 * DAY).toISOString()]);
    const older = await t.db.selectFrom("acme_rate_ledger").select("id").where("at", "<", at(-8 * DAY).toISOString()).execute();
    expect(older).toHaveLength(0);
  });
});
