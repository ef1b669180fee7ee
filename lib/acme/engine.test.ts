import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import pg from "pg";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAriDirectory, type AriDirectory } from "../../tests/support/ari-directory";
import { pebbleAvailable, startPebble, type Pebble } from "../../tests/support/pebble";
import { SYSTEM_ACTOR } from "../audit";
import { getCertificate } from "../certificates";
import { Keyring, sealingKeyFromBytes } from "../crypto/seal";
import { createTestDatabase, POSTGRES_TEST_URL, TEST_ENGINES, type TestDatabase } from "../db/testing";
import { listEvents } from "../events";
import { Edge } from "../listeners/edge";
import { createListener, serveCertificateOnListener, updateListener } from "../listeners/index";
import { findFreePort, listenOnLoopback } from "../net";
import { createAccount } from "./accounts";
import { createAcmeCertificate, requestRenewal } from "./certificates";
import { configureAcmeTransport } from "./client";
import { AcmeEngine } from "./engine";

// The engine against Debian's pebble with real validation: the edge answers HTTP-01 on pebble's
// httpPort and TLS-ALPN-01 on its tlsPort, exactly as it would on ports 80 and 443.

const keyring = new Keyring(sealingKeyFromBytes(crypto.randomBytes(32)));
const log = pino({ level: process.env.TEST_LOG ?? "silent" });
const HOUR = 3_600_000;

function servedFingerprint(port: number, servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()!.fingerprint256);
      socket.end();
    });
    socket.once("error", reject);
  });
}

async function eventually<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 3000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const v = await fn().catch((e: unknown) => e as T);
    if (ok(v)) return v;
    if (Date.now() - start > timeoutMs) throw new Error(`not reached within ${timeoutMs} ms: ${String(v)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function verifyWithOpenssl(chainPem: string, issuers: { root: string; intermediate: string }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "verify-"));
  try {
    const leaf = chainPem.split(/(?<=-----END CERTIFICATE-----)/)[0].trim() + "\n";
    fs.writeFileSync(path.join(dir, "leaf.pem"), leaf);
    fs.writeFileSync(path.join(dir, "root.pem"), issuers.root);
    fs.writeFileSync(path.join(dir, "int.pem"), issuers.intermediate);
    return execFileSync("openssl", ["verify", "-CAfile", "root.pem", "-untrusted", "int.pem", "leaf.pem"], { cwd: dir }).toString().trim();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!pebbleAvailable()).each(TEST_ENGINES)("the ACME engine with pebble on %s", (kind) => {
  let t: TestDatabase;
  let pebble: Pebble;
  let edge: Edge;
  let upstream: http.Server;
  let httpsListenerId: string;
  let httpListenerId: string;
  let accountId: string;
  let clock = new Date();
  const engine = (opts: Partial<ConstructorParameters<typeof AcmeEngine>[0]> = {}) =>
    new AcmeEngine({ db: t.db, keyring, log, now: () => clock, pollMs: 50, ...opts });

  beforeAll(async () => {
    pebble = await startPebble();
    configureAcmeTransport(pebble.caBundlePath);
    t = await createTestDatabase(kind);
    upstream = http.createServer((_req, res) => res.end("hello from upstream"));
    const upstreamPort = await listenOnLoopback(upstream);
    httpListenerId = (await createListener(t.db, SYSTEM_ACTOR, { name: "http", kind: "http", bindAddress: "127.0.0.1", port: pebble.httpPort, httpAction: "redirect" })).id;
    httpsListenerId = (await createListener(t.db, SYSTEM_ACTOR, { name: "https", kind: "https", bindAddress: "127.0.0.1", port: pebble.tlsPort, upstreamUrl: `http://127.0.0.1:${upstreamPort}` })).id;
    edge = new Edge({ db: t.db, keyring, log, pollIntervalMs: 50, checkIntervalMs: 3_600_000 });
    await edge.start();
    accountId = (await createAccount(t.db, keyring, SYSTEM_ACTOR, { directoryUrl: pebble.directoryUrl, email: "ops@example.com", agreeTos: true })).id;
  });

  afterAll(async () => {
    await edge?.stop();
    upstream?.close();
    await t?.destroy();
    await pebble?.stop();
  });

  const request = (domains: string[], challenge: "http-01" | "tls-alpn-01", extra: Record<string, unknown> = {}) =>
    createAcmeCertificate(t.db, keyring, { acme: { directoryUrl: pebble.directoryUrl } } as never, SYSTEM_ACTOR, { domains, challenge, accountId, ...extra }, clock);

  it.each(["http-01", "tls-alpn-01"] as const)("issues with %s, serves it on a listener, and pebble's chain verifies it", async (challenge) => {
    clock = new Date();
    const name = `${challenge.replace(/-/g, "")}-${kind}.example.test`;
    const { certificate } = await request([name, `www.${name}`], challenge);
    expect(certificate.status).toBe("pending");
    await engine().drain();
    const cert = (await getCertificate(t.db, certificate.id))!;
    expect(cert.lastError).toBeNull();
    expect(cert.status).toBe("active");
    expect(cert.domains).toEqual([name, `www.${name}`]);
    expect(cert.versions).toHaveLength(1);
    expect(cert.renewReason).toMatch(/one third of its/);
    expect(verifyWithOpenssl(cert.chainPem!, await pebble.issuerPems())).toBe("leaf.pem: OK");

    const types = (await listEvents(t.db, { certificateId: cert.id })).map((e) => e.type);
    expect(types).toEqual(["tls.pending", "tls.requesting", "acme.order_created", "acme.challenge_presented", "acme.challenge_presented", "acme.challenge_valid", "acme.challenge_valid", "acme.finalized", "tls.issued"]);
    expect(await t.db.selectFrom("acme_challenges").selectAll().execute()).toEqual([]);

    await serveCertificateOnListener(t.db, SYSTEM_ACTOR, httpsListenerId, cert.id);
    await eventually(() => servedFingerprint(pebble.tlsPort, `www.${name}`), (fp) => fp === cert.fingerprintSha256, 1000);
  });

  it("renews when due on an injected clock, and the listener swaps to the new certificate", async () => {
    clock = new Date();
    const name = `renew-${kind}.example.test`;
    const { certificate } = await request([name], "http-01");
    await engine().drain();
    const first = (await getCertificate(t.db, certificate.id))!;
    await serveCertificateOnListener(t.db, SYSTEM_ACTOR, httpsListenerId, first.id);
    await eventually(() => servedFingerprint(pebble.tlsPort, name), (fp) => fp === first.fingerprintSha256);

    // A minute before the renewal time: nothing happens.
    clock = new Date(new Date(first.renewAt!).getTime() - 60_000);
    await engine().drain();
    expect((await getCertificate(t.db, first.id))!.versions).toHaveLength(1);

    clock = new Date(new Date(first.renewAt!).getTime() + 60_000);
    await engine().drain();
    const renewed = (await getCertificate(t.db, first.id))!;
    expect(renewed.status).toBe("active");
    expect(renewed.versions.map((v) => v.version)).toEqual([2, 1]);
    expect(renewed.fingerprintSha256).not.toBe(first.fingerprintSha256);
    expect((await listEvents(t.db, { certificateId: first.id })).map((e) => e.type)).toContain("tls.renewed");
    const started = Date.now();
    await eventually(() => servedFingerprint(pebble.tlsPort, name), (fp) => fp === renewed.fingerprintSha256, 1000);
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it("backs off 1 h, 2 h, 4 h when validation fails, keeps the working certificate serving, and Retry now recovers", async () => {
    clock = new Date();
    const name = `backoff-${kind}.example.test`;
    const { certificate } = await request([name], "http-01");
    await engine().drain();
    const working = (await getCertificate(t.db, certificate.id))!;
    expect(working.status).toBe("active");
    await serveCertificateOnListener(t.db, SYSTEM_ACTOR, httpsListenerId, working.id);
    // The renewals below must be validated, but the account that got this certificate holds a valid
    // authorization for the name, which a CA may reuse instead (Let's Encrypt does for weeks; pebble 2.4
    // does one order in a hundred even with PEBBLE_AUTHZREUSE=0, since it creates a new one only when
    // rand.Intn(100) > 0). So the certificate moves to an account that has none.
    const renewingAccount = await createAccount(t.db, keyring, SYSTEM_ACTOR, { directoryUrl: pebble.directoryUrl, email: `backoff-${kind}@example.com`, agreeTos: true });
    await t.db.updateTable("certificates").set({ acme_account_id: renewingAccount.id }).where("id", "=", working.id).execute();

    // The HTTP listener goes away: pebble's VA finds nothing on its HTTP-01 port. A disabled listener
    // keeps its open connections (by design), and pebble may reuse one, so the edge is restarted too.
    const httpListener = (enabled: boolean) =>
      updateListener(t.db, SYSTEM_ACTOR, httpListenerId, { name: "http", kind: "http", bindAddress: "127.0.0.1", port: pebble.httpPort, httpAction: "redirect", enabled });
    await httpListener(false);
    try {
      await edge.stop();
      edge = new Edge({ db: t.db, keyring, log, pollIntervalMs: 50, checkIntervalMs: 3_600_000 });
      await edge.start();
      expect(edge.status().some((l) => l.id === httpListenerId)).toBe(false);
      await requestRenewal(t.db, SYSTEM_ACTOR, working.id, {}, clock);
      const delays: number[] = [];
      for (let i = 0; i < 3; i++) {
        await engine().drain();
        const failed = (await getCertificate(t.db, working.id))!;
        expect(failed.status).toBe("failed");
        expect(failed.lastError).toMatch(/could not connect|connection refused|connect/i);
        expect(failed.acme?.lastErrorDetail).toMatch(/connection/i);
        delays.push(Math.round((new Date(failed.nextAttemptAt!).getTime() - clock.getTime()) / HOUR));
        // The old certificate still serves.
        expect(await servedFingerprint(pebble.tlsPort, name)).toBe(working.fingerprintSha256);
        expect(failed.fingerprintSha256).toBe(working.fingerprintSha256);
        clock = new Date(failed.nextAttemptAt!);
      }
      expect(delays).toEqual([1, 2, 4]);
      const failures = (await listEvents(t.db, { certificateId: working.id })).filter((e) => e.type === "tls.renewal_failed");
      expect(failures).toHaveLength(3);
      expect(failures[0].message).toMatch(/keeps serving/);
    } finally {
      // Back on even when an assertion above failed: the tests after this one need pebble's HTTP-01 port answered.
      await httpListener(true);
    }
    await eventually(async () => (edge.status() as { id: string }[]).some((l) => l.id === httpListenerId), (v) => v);
    await requestRenewal(t.db, SYSTEM_ACTOR, working.id, {}, clock);
    await engine().drain();
    const recovered = (await getCertificate(t.db, working.id))!;
    expect(recovered.status).toBe("active");
    expect(recovered.lastError).toBeNull();
    expect(recovered.versions).toHaveLength(2);
  });

  it("refuses names a CA cannot validate before ordering anything", async () => {
    await expect(request(["*.wild.example.test"], "http-01")).rejects.toMatchObject({ fieldErrors: { domains: [expect.stringMatching(/DNS-01/)] } });
    await expect(request(["192.0.2.1"], "http-01")).rejects.toMatchObject({ fieldErrors: { domains: [expect.stringMatching(/IP address/)] } });
  });

  it.runIf(kind === "postgres")("a database outage mid-order is not a CA failure: nothing is lost and the order resumes", async () => {
    clock = new Date();
    const { certificate } = await request([`dbdown-${kind}.example.test`], "http-01");
    const name = new URL(t.url).pathname.slice(1);
    const admin = new pg.Client({ connectionString: POSTGRES_TEST_URL });
    await admin.connect();
    // For a second nobody, superusers included, may connect; every open connection is cut.
    let over: Promise<unknown> = Promise.resolve();
    const outage = async () => {
      await admin.query(`alter database ${name} allow_connections false`);
      await admin.query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1", [name]);
      over = new Promise((r) => setTimeout(r, 1000)).then(() => admin.query(`alter database ${name} allow_connections true`));
    };
    // drain() itself stops at the outage (the worker's loop would just look again a second later).
    await engine({ leaseMs: 1500, onStep: (step) => (step === "challenge_valid" ? outage() : undefined) }).drain().catch(() => {});
    await over;
    await admin.end();
    const interrupted = await t.db.selectFrom("certificates").selectAll().where("id", "=", certificate.id).executeTakeFirstOrThrow();
    expect(interrupted.status).toBe("requesting");
    expect(interrupted.attempts).toBe(0);
    expect(interrupted.last_error).toBeNull();
    expect(interrupted.order_url).not.toBeNull();

    await new Promise((r) => setTimeout(r, 1600));
    clock = new Date(Date.now() + 16_000);
    await engine().drain();
    const cert = (await getCertificate(t.db, certificate.id))!;
    expect(cert.status).toBe("active");
    const types = (await listEvents(t.db, { certificateId: cert.id })).map((e) => e.type);
    expect(types).not.toContain("tls.renewal_failed");
    expect(types.filter((x) => x === "acme.order_created")).toHaveLength(1);
    expect(types).toContain("acme.order_resumed");
  });

  it("a running engine is woken by the request itself, not by its next poll", async () => {
    clock = new Date();
    const running = engine({ pollMs: 60_000, now: () => new Date() });
    running.start();
    try {
      await new Promise((r) => setTimeout(r, 300)); // its first look is over; the next poll is a minute away
      const started = Date.now();
      const { certificate } = await request([`wake-${kind}.example.test`], "http-01");
      await eventually(async () => (await getCertificate(t.db, certificate.id))!.status, (s) => s === "active", 5000);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await running.stop();
    }
  });

  it("two engines never run the same certificate", async () => {
    clock = new Date();
    const { certificate } = await request([`race-${kind}.example.test`], "http-01");
    const a = engine({ workerId: "a" });
    const b = engine({ workerId: "b" });
    await Promise.all([a.drain(), b.drain()]);
    const cert = (await getCertificate(t.db, certificate.id))!;
    expect(cert.status).toBe("active");
    expect(cert.versions).toHaveLength(1);
    expect((await listEvents(t.db, { certificateId: cert.id })).filter((e) => e.type === "acme.order_created")).toHaveLength(1);
  });
});

describe.skipIf(!pebbleAvailable())("renewal information (RFC 9773) through a directory that offers it", () => {
  let t: TestDatabase;
  let pebble: Pebble;
  let ari: AriDirectory;
  let edge: Edge;

  beforeAll(async () => {
    pebble = await startPebble();
    configureAcmeTransport(pebble.caBundlePath);
    ari = await startAriDirectory(pebble);
    t = await createTestDatabase("sqlite");
    await createListener(t.db, SYSTEM_ACTOR, { name: "http", kind: "http", bindAddress: "127.0.0.1", port: pebble.httpPort, httpAction: "redirect" });
    edge = new Edge({ db: t.db, keyring, log, pollIntervalMs: 50, checkIntervalMs: 3_600_000 });
    await edge.start();
  });

  afterAll(async () => {
    await edge?.stop();
    await ari?.stop();
    await t?.destroy();
    await pebble?.stop();
  });

  it("renews inside the CA's window, sends replaces, and follows a moved window", async () => {
    let clock = new Date();
    const start = new Date(clock.getTime() + 10 * 24 * HOUR);
    const end = new Date(clock.getTime() + 12 * 24 * HOUR);
    ari.setWindow({ start, end });
    const account = await createAccount(t.db, keyring, SYSTEM_ACTOR, { directoryUrl: ari.directoryUrl, agreeTos: true });
    const { certificate } = await createAcmeCertificate(t.db, keyring, { acme: { directoryUrl: ari.directoryUrl } } as never, SYSTEM_ACTOR, { domains: ["ari.example.test"], challenge: "http-01", accountId: account.id }, clock);
    const engine = () => new AcmeEngine({ db: t.db, keyring, log, now: () => clock });
    await engine().drain();
    const issued = (await getCertificate(t.db, certificate.id))!;
    expect(issued.status).toBe("active");
    const renewAt = new Date(issued.renewAt!);
    expect(renewAt.getTime()).toBeGreaterThanOrEqual(start.getTime());
    expect(renewAt.getTime()).toBeLessThan(end.getTime());
    expect(issued.renewReason).toMatch(/renewal information/);
    expect(ari.requests.length).toBeGreaterThan(0);

    // Half a day later the CA moves the window earlier: the next check follows it.
    clock = new Date(clock.getTime() + 13 * HOUR);
    const movedStart = new Date(clock.getTime() + HOUR);
    ari.setWindow({ start: movedStart, end: new Date(movedStart.getTime() + HOUR) });
    await engine().tick();
    const moved = (await getCertificate(t.db, certificate.id))!;
    expect(new Date(moved.renewAt!).getTime()).toBeGreaterThanOrEqual(movedStart.getTime());
    expect(new Date(moved.renewAt!).getTime()).toBeLessThan(movedStart.getTime() + HOUR);
    expect((await listEvents(t.db, { certificateId: certificate.id })).map((e) => e.type)).toContain("tls.renewal_rescheduled");

    clock = new Date(movedStart.getTime() + 2 * HOUR);
    await engine().drain();
    const renewed = (await getCertificate(t.db, certificate.id))!;
    expect(renewed.versions).toHaveLength(2);
    const replaced = ari.orderPayloads.map((p) => p.replaces).filter(Boolean);
    expect(replaced).toHaveLength(1);
    expect(String(replaced[0])).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const created = (await listEvents(t.db, { certificateId: certificate.id })).filter((e) => e.type === "acme.order_created");
    expect(created.at(-1)!.message).toMatch(/not counted against rate limits/);
  });
});

describe.skipIf(!pebbleAvailable())("External Account Binding", () => {
  const kid = "kid-portcullis";
  const hmacKey = crypto.randomBytes(32).toString("base64url");
  let t: TestDatabase;
  let pebble: Pebble;
  let edge: Edge;

  beforeAll(async () => {
    pebble = await startPebble({ eab: { [kid]: hmacKey } });
    configureAcmeTransport(pebble.caBundlePath);
    t = await createTestDatabase("sqlite");
    await createListener(t.db, SYSTEM_ACTOR, { name: "http", kind: "http", bindAddress: "127.0.0.1", port: pebble.httpPort, httpAction: "redirect" });
    edge = new Edge({ db: t.db, keyring, log, pollIntervalMs: 50, checkIntervalMs: 3_600_000 });
    await edge.start();
  });

  afterAll(async () => {
    await edge?.stop();
    await t?.destroy();
    await pebble?.stop();
  });

  const issue = async (accountInput: Record<string, unknown>, name: string) => {
    const account = await createAccount(t.db, keyring, SYSTEM_ACTOR, { directoryUrl: pebble.directoryUrl, agreeTos: true, ...accountInput });
    const { certificate } = await createAcmeCertificate(t.db, keyring, { acme: { directoryUrl: pebble.directoryUrl } } as never, SYSTEM_ACTOR, { domains: [name], challenge: "http-01", accountId: account.id });
    await new AcmeEngine({ db: t.db, keyring, log }).drain();
    return (await getCertificate(t.db, certificate.id))!;
  };

  it("says plainly that the CA wants EAB when none is given", async () => {
    const cert = await issue({ email: "none@example.com" }, "no-eab.example.test");
    expect(cert.status).toBe("failed");
    expect(cert.lastError).toMatch(/External Account Binding/i);
  });

  it("refuses a wrong HMAC key and accepts the right one", async () => {
    const wrong = await issue({ email: "wrong@example.com", eabKid: kid, eabHmacKey: crypto.randomBytes(32).toString("base64url") }, "wrong-eab.example.test");
    expect(wrong.status).toBe("failed");
    expect(wrong.lastError).toMatch(/EAB|External Account Binding|HMAC/i);
    const right = await issue({ email: "right@example.com", eabKid: kid, eabHmacKey: hmacKey }, "eab.example.test");
    expect(right.lastError).toBeNull();
    expect(right.status).toBe("active");
  });
});

describe.skipIf(!pebbleAvailable())("faults: an unreachable or untrusted CA", () => {
  let t: TestDatabase;
  let pebble: Pebble;

  beforeAll(async () => {
    pebble = await startPebble();
    t = await createTestDatabase("sqlite");
  });

  afterAll(async () => {
    configureAcmeTransport(pebble?.caBundlePath);
    await t?.destroy();
    await pebble?.stop();
  });

  const attempt = async (directoryUrl: string, name: string) => {
    const account = await createAccount(t.db, keyring, SYSTEM_ACTOR, { directoryUrl, email: `${name.split(".")[0]}@example.com`, agreeTos: true });
    const { certificate } = await createAcmeCertificate(t.db, keyring, { acme: { directoryUrl } } as never, SYSTEM_ACTOR, { domains: [name], challenge: "http-01", accountId: account.id });
    const clock = new Date();
    await new AcmeEngine({ db: t.db, keyring, log, now: () => clock }).drain();
    const cert = (await getCertificate(t.db, certificate.id))!;
    return { cert, delayHours: (new Date(cert.nextAttemptAt!).getTime() - clock.getTime()) / HOUR };
  };

  it("an unreachable directory fails with the reason and a retry in an hour, not stuck in requesting", async () => {
    configureAcmeTransport(pebble.caBundlePath);
    const port = await findFreePort();
    const { cert, delayHours } = await attempt(`https://127.0.0.1:${port}/dir`, "unreachable.example.test");
    expect(cert.status).toBe("failed");
    expect(cert.lastError).toMatch(/could not reach/);
    expect(cert.acme?.lastErrorDetail).toMatch(/ECONNREFUSED/);
    expect(delayHours).toBe(1);
  });

  it("a directory whose certificate is not trusted says so and names PORTCULLIS_ACME_CA_BUNDLE", async () => {
    configureAcmeTransport(undefined);
    const started = Date.now();
    const { cert } = await attempt(pebble.directoryUrl, "untrusted.example.test");
    expect(Date.now() - started).toBeLessThan(5000);
    expect(cert.status).toBe("failed");
    expect(cert.lastError).toMatch(/not trusted/);
    expect(cert.lastError).toMatch(/PORTCULLIS_ACME_CA_BUNDLE/);
  });
});

describe("the Let's Encrypt rate-limit ledger on request", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase("sqlite");
  });
  afterAll(async () => t?.destroy());

  it("refuses a sixth order for the same names in a week, saying when the next slot opens, unless forced", async () => {
    const directoryUrl = "https://acme-v02.api.letsencrypt.org/directory";
    const account = await createAccount(t.db, keyring, SYSTEM_ACTOR, { directoryUrl, email: "ops@example.com", agreeTos: true });
    const { recordNewOrder } = await import("./ratelimit");
    const now = new Date("2026-11-20T10:00:00Z");
    for (let i = 0; i < 5; i++) await recordNewOrder(t.db, { directoryUrl, names: ["shop.example.com"], certificateId: null, exempt: false, now: new Date(now.getTime() + i * HOUR) });
    const input = { domains: ["shop.example.com"], challenge: "http-01", accountId: account.id };
    const config = { acme: { directoryUrl } } as never;
    const at = new Date("2026-11-22T10:00:00Z");
    await expect(createAcmeCertificate(t.db, keyring, config, SYSTEM_ACTOR, input, at)).rejects.toMatchObject({ status: 429, message: expect.stringMatching(/2026-11-27 10:00 UTC/) });
    expect(await t.db.selectFrom("certificates").select("id").execute()).toEqual([]);
    const forced = await createAcmeCertificate(t.db, keyring, config, SYSTEM_ACTOR, { ...input, force: true }, at);
    expect(forced.certificate.status).toBe("pending");
    expect(forced.warnings[0]).toMatch(/forced/);
    // Names Let's Encrypt will not validate are refused before anything is written.
    await expect(createAcmeCertificate(t.db, keyring, config, SYSTEM_ACTOR, { ...input, domains: ["printer.local"] }, at)).rejects.toMatchObject({ fieldErrors: { domains: [expect.stringMatching(/public domain suffix/)] } });
  });
});
