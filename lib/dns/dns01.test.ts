import { execFileSync, spawn } from "node:child_process";
import crypto from "node:crypto";
import { Resolver } from "node:dns/promises";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeCloudflare, type FakeCloudflare } from "../../tests/support/fake-cloudflare";
import { pebbleAvailable, startPebble, type Pebble } from "../../tests/support/pebble";
import { SYSTEM_ACTOR } from "../audit";
import { createAccount } from "../acme/accounts";
import { createAcmeCertificate } from "../acme/certificates";
import { configureAcmeTransport } from "../acme/client";
import { AcmeEngine } from "../acme/engine";
import { getCertificate } from "../certificates";
import { Keyring, sealingKeyFromBytes } from "../crypto/seal";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../db/testing";
import { AppError } from "../errors";
import { listEvents } from "../events";
import { createCredential, deleteCredential, type DnsSettings } from "./credentials";

// DNS-01 end to end with real parts: the engine orders from pebble, the real `cloudflare` SDK
// talks to the fake Cloudflare API, which writes TXT values into pebble-challtestsrv, where pebble's
// VA looks them up; propagation is checked against challtestsrv as PORTCULLIS_DNS_RESOLVERS.

const sealKey = crypto.randomBytes(32);
const keyring = new Keyring(sealingKeyFromBytes(sealKey));
const LEASE_MS = 1500;
const log = pino({ level: process.env.TEST_LOG ?? "silent" });
const TOKEN = "dns01-test-token-aaaaaaaaaaaaaaaaaaaaaaaaaa";
const PROPAGATION_MS = 2_000;

function verifyWithOpenssl(chainPem: string, issuers: { root: string; intermediate: string }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "verify-dns-"));
  try {
    fs.writeFileSync(path.join(dir, "leaf.pem"), `${chainPem.split("-----END CERTIFICATE-----")[0]}-----END CERTIFICATE-----\n`);
    fs.writeFileSync(path.join(dir, "root.pem"), issuers.root);
    fs.writeFileSync(path.join(dir, "int.pem"), issuers.intermediate);
    return execFileSync("openssl", ["verify", "-CAfile", "root.pem", "-untrusted", "int.pem", "leaf.pem"], { cwd: dir }).toString().trim();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(!pebbleAvailable()).each(TEST_ENGINES)("DNS-01 through Cloudflare with pebble on %s", (kind) => {
  let t: TestDatabase;
  let pebble: Pebble;
  let fake: FakeCloudflare;
  let settings: DnsSettings;
  let accountId: string;
  let credentialId: string;
  const zone = `dns-${kind}.test`;

  const engine = () => new AcmeEngine({ db: t.db, keyring, log, pollMs: 50, dns: { settings, propagation: { timeoutMs: PROPAGATION_MS, intervalMs: 100, queryTimeoutMs: 500 } } });
  const request = (domains: string[], extra: Record<string, unknown> = {}) =>
    createAcmeCertificate(t.db, keyring, { acme: { directoryUrl: pebble.directoryUrl } } as never, SYSTEM_ACTOR, { domains, challenge: "dns-01", dnsCredentialId: credentialId, accountId, ...extra });
  const txtInDns = async (fqdn: string) => {
    const r = new Resolver({ timeout: 500, tries: 1 });
    r.setServers([`127.0.0.1:${pebble.dnsPort}`]);
    return (await r.resolveTxt(fqdn).catch(() => [] as string[][])).map((c) => c.join(""));
  };
  const expectNothingLeft = async (fqdns: string[]) => {
    expect(fake.records()).toEqual([]);
    for (const fqdn of fqdns) expect(await txtInDns(fqdn)).toEqual([]);
    expect(await t.db.selectFrom("dns_records").selectAll().execute()).toEqual([]);
  };

  beforeAll(async () => {
    pebble = await startPebble();
    configureAcmeTransport(pebble.caBundlePath);
    fake = await startFakeCloudflare({ zones: [{ name: zone }], tokens: { [TOKEN]: { read: "all", edit: "all" } }, dns: pebble });
    settings = { cloudflareApiUrl: fake.url, resolvers: [`127.0.0.1:${pebble.dnsPort}`] };
    t = await createTestDatabase(kind);
    accountId = (await createAccount(t.db, keyring, SYSTEM_ACTOR, { directoryUrl: pebble.directoryUrl, email: "ops@example.com", agreeTos: true })).id;
    credentialId = (await createCredential(t.db, keyring, SYSTEM_ACTOR, { name: "prod Cloudflare", token: TOKEN }, { settings })).id;
  });

  afterAll(async () => {
    await t?.destroy();
    await fake?.stop();
    await pebble?.stop();
  });

  it("issues a wildcard + apex certificate: both TXT values coexist, pebble's chain verifies it, nothing is left", async () => {
    const started = Date.now();
    const { certificate } = await request([`*.${zone}`, zone]);
    await engine().drain();
    const cert = (await getCertificate(t.db, certificate.id))!;
    expect(cert.lastError).toBeNull();
    expect(cert.status).toBe("active");
    expect(cert.acme?.dnsCredential).toEqual({ id: credentialId, name: "prod Cloudflare" });
    expect(new crypto.X509Certificate(cert.chainPem!).subjectAltName).toBe(`DNS:*.${zone}, DNS:${zone}`);
    expect(verifyWithOpenssl(cert.chainPem!, await pebble.issuerPems())).toBe("leaf.pem: OK");

    const events = await listEvents(t.db, { certificateId: cert.id });
    const types = events.map((e) => e.type);
    expect(types.filter((x) => x === "acme.challenge_presented")).toHaveLength(2);
    expect(types).toContain("dns.propagated");
    expect(types.indexOf("dns.propagated")).toBeLessThan(types.indexOf("acme.challenge_valid"));
    expect(types.indexOf("dns.records_removed")).toBeGreaterThan(types.lastIndexOf("acme.challenge_valid"));
    // Both values share one name and were waited for together.
    const progress = events.filter((e) => e.type === "dns.propagation").map((e) => e.message);
    expect(progress.some((m) => m.startsWith(`The TXT record _acme-challenge.${zone} is visible on all 1 of the configured resolvers`))).toBe(true);
    expect(events.find((e) => e.type === "acme.challenge_presented")!.message).toMatch(new RegExp(`^DNS-01 answer for (\\*\\.)?${zone.replace(/\./g, "\\.")} is published: TXT _acme-challenge\\.${zone.replace(/\./g, "\\.")} in the Cloudflare zone ${zone.replace(/\./g, "\\.")}$`));
    expect(events.find((e) => e.type === "dns.records_removed")!.message).toBe(`Removed 2 TXT records: _acme-challenge.${zone}`);
    await expectNothingLeft([`_acme-challenge.${zone}`]);
    console.log(`[dns-01 ${kind}] wildcard + apex issued in ${Date.now() - started} ms`);
  });

  it("a record the API accepts but DNS never serves: a propagation timeout in plain words, the CA never asked, records removed", async () => {
    const started = Date.now();
    fake.setDnsWrites(false);
    try {
      const { certificate } = await request([`late.${zone}`]);
      await engine().drain();
      const cert = (await getCertificate(t.db, certificate.id))!;
      expect(cert.status).toBe("failed");
      expect(cert.lastError).toBe(
        `the TXT record _acme-challenge.late.${zone} was not visible on the resolvers in PORTCULLIS_DNS_RESOLVERS (127.0.0.1:${pebble.dnsPort}) after 2 seconds: 0 of 1 servers saw it — Check that Cloudflare really serves ${zone} (compare its NS records at the registrar with the provider's name servers) and that nothing else (a second provider, DNSSEC trouble) answers for it; Portcullis retries with backoff.`,
      );
      const events = await listEvents(t.db, { certificateId: cert.id });
      expect(events.map((e) => e.type)).not.toContain("acme.challenge_valid");
      expect(events.find((e) => e.type === "dns.propagation")!.message).toBe(`Waiting for the TXT record _acme-challenge.late.${zone} on 127.0.0.1:${pebble.dnsPort}: 0 of 1 servers see it; giving up after 2 seconds`);
      const failed = events.find((e) => e.type === "tls.renewal_failed")!;
      expect(failed.detail).toMatchObject({ kind: "dns" });
      expect(cert.nextAttemptAt! > new Date(Date.now() + 50 * 60_000).toISOString()).toBe(true);
      await expectNothingLeft([`_acme-challenge.late.${zone}`]);
    } finally {
      fake.setDnsWrites(true);
    }
    console.log(`[dns-01 ${kind}] propagation timeout handled in ${Date.now() - started} ms`);
  });

  it("a token Cloudflare rejects fails the order with the reason and Cloudflare's code", async () => {
    fake.tokens.delete(TOKEN);
    try {
      const { certificate } = await request([`rejected.${zone}`]);
      await engine().drain();
      const cert = (await getCertificate(t.db, certificate.id))!;
      expect(cert.status).toBe("failed");
      expect(cert.lastError).toContain("Cloudflare rejected the API token: it is invalid, expired or was deleted — Create an API token in the Cloudflare dashboard");
      const failed = (await listEvents(t.db, { certificateId: cert.id })).find((e) => e.type === "tls.renewal_failed")!;
      expect(failed.detail).toMatchObject({ kind: "dns_provider", raw: "Cloudflare 9109: Invalid access token (HTTP 401)" });
      expect(fake.records()).toEqual([]);
    } finally {
      fake.tokens.set(TOKEN, { read: "all", edit: "all" });
    }
  });

  it("a 5xx on the second record: the first is removed again, from the API and from DNS", async () => {
    let posts = 0;
    fake.failNext(1, { status: 502, code: 10000, message: "Bad gateway", match: (r) => r.method === "POST" && ++posts === 2 });
    const { certificate } = await request([`one.${zone}`, `two.${zone}`]);
    await engine().drain();
    const cert = (await getCertificate(t.db, certificate.id))!;
    expect(cert.status).toBe("failed");
    // The authorizations come in either order: whichever was second failed, the first is removed.
    const failedName = /^Cloudflare had an internal error \(HTTP 502\) while creating the TXT record _acme-challenge\.(one|two)\./.exec(cert.lastError ?? "")?.[1];
    expect(failedName, cert.lastError ?? "").toBeDefined();
    const events = await listEvents(t.db, { certificateId: cert.id });
    expect(events.find((e) => e.type === "dns.records_removed")!.message).toBe(`Removed the TXT record _acme-challenge.${failedName === "one" ? "two" : "one"}.${zone}`);
    await expectNothingLeft([`_acme-challenge.one.${zone}`, `_acme-challenge.two.${zone}`]);
  });

  it("429 while looking up the zone: rate limited, retried later, nothing created", async () => {
    fake.failNext(1, { status: 429, retryAfter: "7200", match: (r) => r.path === "/zones" });
    const { certificate } = await request([`busy.${zone}`]);
    await engine().drain();
    const cert = (await getCertificate(t.db, certificate.id))!;
    expect(cert.status).toBe("failed");
    expect(cert.lastError).toMatch(new RegExp(`^Cloudflare rate limited the requests while looking up the zone busy\\.${zone.replace(/\./g, "\\.")} until`));
    // Cloudflare's Retry-After (2 h) wins over the first backoff step (1 h).
    expect(new Date(cert.nextAttemptAt!).getTime()).toBeGreaterThan(Date.now() + 110 * 60_000);
    expect(fake.records()).toEqual([]);
  });

  it("a failed delete is kept and retried by the sweep; a crashed worker's records are swept", async () => {
    // Right after validation, and again as the run ends: both fail, so the record waits for the sweep.
    fake.failNext(2, { status: 503, match: (r) => r.method === "DELETE" });
    const { certificate } = await request([`sweep.${zone}`]);
    const e = engine();
    await e.drain();
    expect((await getCertificate(t.db, certificate.id))!.status).toBe("active");
    const warned = (await listEvents(t.db, { certificateId: certificate.id })).find((x) => x.type === "dns.record_removal_failed")!;
    expect(warned.message).toMatch(/^Could not remove the TXT record _acme-challenge\.sweep\..* yet: Cloudflare had an internal error \(HTTP 503\)/);
    expect(fake.records()).toHaveLength(1);
    await e.sweepDnsRecords();
    await expectNothingLeft([`_acme-challenge.sweep.${zone}`]);

    // A worker that died after creating a record (the certificate holds no lease any more).
    const { certificate: crashed } = await request([`crash.${zone}`]);
    await t.db.updateTable("certificates").set({ next_attempt_at: null }).where("id", "=", crashed.id).execute();
    await e.dns.present({ certificateId: crashed.id }, credentialId, `crash.${zone}`, "left-by-a-dead-worker");
    expect(await txtInDns(`_acme-challenge.crash.${zone}`)).toEqual(["left-by-a-dead-worker"]);
    await e.sweepDnsRecords();
    await expectNothingLeft([`_acme-challenge.crash.${zone}`]);
  });

  it("two orders needing the same name keep each other's values; each removes only its own", async () => {
    const { certificate: apex } = await request([`shared.${zone}`]);
    const { certificate: wild } = await request([`*.shared.${zone}`]);
    await engine().drain();
    for (const id of [apex.id, wild.id]) expect((await getCertificate(t.db, id))!).toMatchObject({ status: "active", lastError: null });
    await expectNothingLeft([`_acme-challenge.shared.${zone}`]);

    // Reference counting: a value held by two owners is deleted at the provider only with the last.
    const e = engine();
    const a = await e.dns.present({ certificateId: apex.id }, credentialId, `ref.${zone}`, "same-value");
    const b = await e.dns.present({ certificateId: wild.id }, credentialId, `ref.${zone}`, "same-value");
    expect(b.adopted).toBe(true);
    expect((await e.dns.release({ certificateId: apex.id })).kept).toEqual([`_acme-challenge.ref.${zone}`]);
    expect(await txtInDns(a.fqdn)).toEqual(["same-value"]);
    expect((await e.dns.release({ certificateId: wild.id })).removed).toEqual([`_acme-challenge.ref.${zone}`]);
    await expectNothingLeft([a.fqdn]);
  });

  it("kill -9 after the TXT records are published: the next worker resumes the order, shares the records, and removes them", async () => {
    const { certificate } = await request([`*.crash.${zone}`, `crash.${zone}`]);
    const signal = await new Promise<NodeJS.Signals | number | null>((resolve, reject) => {
      const child = spawn(process.execPath, ["--import", "tsx", "tests/support/engine-process.ts"], {
        cwd: path.resolve(import.meta.dirname, "../.."),
        env: {
          ...process.env,
          PORTCULLIS_TEST_DB_KIND: t.kind,
          PORTCULLIS_TEST_DB_URL: t.url,
          PORTCULLIS_TEST_SEAL_KEY: sealKey.toString("hex"),
          PORTCULLIS_TEST_CRASH_AT: "challenge_presented",
          PORTCULLIS_TEST_LEASE_MS: String(LEASE_MS),
          PORTCULLIS_ACME_CA_BUNDLE: pebble.caBundlePath,
          PORTCULLIS_CLOUDFLARE_API_URL: fake.url,
          PORTCULLIS_DNS_RESOLVERS: `127.0.0.1:${pebble.dnsPort}`,
        },
        stdio: ["ignore", "ignore", "pipe"],
      });
      let stderr = "";
      child.stderr.on("data", (d) => (stderr += d));
      child.once("error", reject);
      child.once("exit", (code, sig) => (sig ? resolve(sig) : code === 0 ? resolve(0) : reject(new Error(`worker exited ${code}: ${stderr.slice(-2000)}`))));
    });
    expect(signal).toBe("SIGKILL");
    const fqdn = `_acme-challenge.crash.${zone}`;
    expect(fake.records()).toHaveLength(2);
    expect((await txtInDns(fqdn)).length).toBe(2);
    expect(await t.db.selectFrom("dns_records").select("id").where("certificate_id", "=", certificate.id).execute()).toHaveLength(2);

    // While the dead worker's lease holds, neither its order nor its records are touched.
    await engine().drain();
    expect(fake.records()).toHaveLength(2);

    await new Promise((r) => setTimeout(r, LEASE_MS + 100));
    await engine().drain();
    const cert = (await getCertificate(t.db, certificate.id))!;
    expect(cert).toMatchObject({ status: "active", lastError: null });
    const types = (await listEvents(t.db, { certificateId: certificate.id })).map((e) => e.type);
    expect(types).toContain("acme.order_resumed");
    await expectNothingLeft([fqdn]);
  });

  it("refuses to delete a credential that certificates use, naming them", async () => {
    const attempt = deleteCredential(t.db, SYSTEM_ACTOR, credentialId);
    await expect(attempt).rejects.toBeInstanceOf(AppError);
    await expect(attempt).rejects.toThrow(new RegExp(`^"prod Cloudflare" is used by (".+", )+".+"( and \\d+ more)? for DNS-01; delete those certificates or move them to another credential first$`));
    await expect(attempt).rejects.toThrow(`"*.${zone}"`);
    expect(await t.db.selectFrom("dns_credentials").select("id").execute()).toHaveLength(1);
  });
});
