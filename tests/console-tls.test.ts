import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import pino from "pino";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { configureAcmeTransport } from "../lib/acme/client";
import { AcmeEngine } from "../lib/acme/engine";
import { parseConfig, type Config } from "../lib/config";
import { createConsoleServer, type ConsoleServer } from "../lib/console/server";
import { checkTlsEnvironment, ConsoleTlsManager, ConsoleTlsStartupError, PROVIDED_POLL_INTERVAL_MS } from "../lib/console/tls-manager";
import { regenerateConsoleCertificate, updateTlsSettings, uploadConsoleCertificate } from "../lib/console/tls-settings";
import { consoleTlsWarnings, getConsoleTlsStatus, getRunningTls, registerRunningTls } from "../lib/console/tls-status";
import { ACME_KEY, readLocalCa, TLS_MODE_KEY, writeSetting } from "../lib/console/tls-store";
import { Keyring, sealingKeyFromBytes } from "../lib/crypto/seal";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../lib/db/testing";
import { listEvents } from "../lib/events";
import { AppError } from "../lib/errors";
import { findFreePort } from "../lib/net";
import { createLocalCa, issueFromLocalCa } from "../lib/pki/local-ca";
import { createSelfSignedCertificate } from "../lib/pki/selfSigned";
import { pebbleAvailable, startPebble, type Pebble } from "./support/pebble";

// The console's own TLS, started for real (createConsoleServer is what server.ts runs, with a small
// handler in place of Next.js) and checked with real TLS clients.

const root = path.resolve(import.meta.dirname, "..");
const silent = pino({ level: "silent" });
const ADMIN = { id: null, label: "test admin", role: "system" as const };

type Peer = { socket: tls.TLSSocket; leaf: crypto.X509Certificate; chain: crypto.X509Certificate[] };

async function connect(port: number, servername: string, host = "127.0.0.1"): Promise<Peer> {
  const socket = tls.connect({ host, port, servername, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] });
  await new Promise<void>((resolve, reject) => {
    socket.once("secureConnect", () => resolve());
    socket.once("error", reject);
  });
  const chain: crypto.X509Certificate[] = [];
  let c: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  const seen = new Set<string>();
  while (c?.raw && !seen.has(c.fingerprint256)) {
    seen.add(c.fingerprint256);
    chain.push(new crypto.X509Certificate(c.raw));
    c = c.issuerCertificate;
  }
  return { socket, leaf: chain[0]!, chain };
}

async function fingerprintServed(port: number, servername: string): Promise<string> {
  const peer = await connect(port, servername);
  peer.socket.destroy();
  return peer.leaf.fingerprint256;
}

/** One HTTP/1.1 request on an open TLS (or plain) socket; the connection stays open. */
function requestOn(socket: tls.TLSSocket, pathName = "/"): Promise<string> {
  return new Promise((resolve, reject) => {
    let data = "";
    const onData = (chunk: Buffer) => {
      data += chunk.toString();
      const end = data.indexOf("\r\n\r\n");
      if (end < 0) return;
      const length = Number(/content-length: (\d+)/i.exec(data)?.[1] ?? 0);
      if (data.length >= end + 4 + length) {
        socket.off("data", onData);
        resolve(data);
      }
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.write(`GET ${pathName} HTTP/1.1\r\nHost: console\r\n\r\n`);
  });
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const echo = (_req: http.IncomingMessage, res: http.ServerResponse, ctx: { https: boolean; clientIp: string }) => {
  res.setHeader("Content-Type", "application/json");
  res.end(JSON.stringify({ https: ctx.https, clientIp: ctx.clientIp, proto: _req.headers["x-forwarded-proto"] }));
};

describe.each(TEST_ENGINES)("the console's TLS modes on %s", (kind) => {
  let t: TestDatabase;
  let keyring: Keyring;
  let dir: string;
  const servers: ConsoleServer[] = [];

  beforeAll(async () => {
    t = await createTestDatabase(kind);
    keyring = new Keyring(sealingKeyFromBytes(crypto.randomBytes(32)));
  });
  afterAll(async () => {
    await t.destroy();
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
    await t.db.deleteFrom("settings").where("key", "like", "tls.%").execute();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  const configOf = async (env: Record<string, string>): Promise<Config> => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-console-tls-"));
    return parseConfig({ PORTCULLIS_DATA_DIR: dir, PORTCULLIS_PORT: String(await findFreePort()), ...env });
  };
  const start = async (config: Config) => {
    const s = await createConsoleServer({ config, db: t.db, keyring, log: silent, handler: echo });
    servers.push(s);
    return s;
  };

  it("auto on a public bind: a local-CA certificate with the bind, public URL, extra and host names, chained to the CA that /api/v1/ca serves, kept across restarts", async () => {
    const config = await configOf({ PORTCULLIS_HOST: "0.0.0.0", PORTCULLIS_PUBLIC_URL: "https://console.example.net", PORTCULLIS_TLS_SANS: "extra.example.net,10.1.2.3" });
    const s = await start(config);
    expect(s.https).toBe(true);
    const peer = await connect(s.port, "console.example.net");
    expect(peer.chain).toHaveLength(2); // leaf + CA
    const [leaf, ca] = peer.chain as [crypto.X509Certificate, crypto.X509Certificate];
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(ca.ca).toBe(true);
    expect(ca.subject).toMatch(/CN=Portcullis local CA [0-9a-f]{8}/);
    for (const name of ["DNS:console.example.net", "DNS:extra.example.net", "IP Address:10.1.2.3", "DNS:localhost", "IP Address:127.0.0.1", `DNS:${os.hostname().toLowerCase()}`]) {
      expect(leaf.subjectAltName).toContain(name);
    }
    expect(leaf.subjectAltName).not.toContain("0.0.0.0");
    const days = (Date.parse(leaf.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(85);
    expect(days).toBeLessThan(91);
    expect(leaf.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(ca.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect((Date.parse(ca.validTo) - Date.now()) / 86_400_000).toBeGreaterThan(3600);
    // What GET /api/v1/ca reads and publishes.
    const stored = await readLocalCa(t.db);
    expect(stored!.facts.fingerprintSha256).toBe(ca.fingerprint256);
    const body = JSON.parse(await requestOn(peer.socket).then((r) => r.slice(r.indexOf("\r\n\r\n") + 4)));
    expect(body).toEqual({ https: true, clientIp: "127.0.0.1", proto: "https" });
    peer.socket.destroy();

    // The status and the banner say what is served.
    const status = await getConsoleTlsStatus(t.db, config);
    expect(status).toMatchObject({ mode: "auto", modeSource: "default", https: true, restartRequired: null, served: { kind: "local_ca", trusted: false, fingerprintSha256: leaf.fingerprint256 } });
    expect(status.localCa?.fingerprintSha256).toBe(ca.fingerprint256);
    const warnings = await consoleTlsWarnings(t.db, config);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatchObject({ id: "console-local-ca", href: "/settings/tls" });
    expect(warnings[0]!.message).toContain("/api/v1/ca");

    // A restart serves the same CA and the same server certificate (both live in the database).
    await servers.pop()!.close();
    const again = await start(config);
    const second = await connect(again.port, "console.example.net");
    expect(second.leaf.fingerprint256).toBe(leaf.fingerprint256);
    expect(second.chain[1]!.fingerprint256).toBe(ca.fingerprint256);
    second.socket.destroy();

    // New wanted names: a new server certificate from the same CA at the next start.
    await servers.pop()!.close();
    const renamed = await start({ ...config, tls: { ...config.tls, sans: ["other.example.net"] } });
    const third = await connect(renamed.port, "other.example.net");
    expect(third.leaf.fingerprint256).not.toBe(leaf.fingerprint256);
    expect(third.leaf.subjectAltName).toContain("DNS:other.example.net");
    expect(third.leaf.verify(ca.publicKey)).toBe(true);
    third.socket.destroy();
  });

  it("regenerate: a new server certificate from the same CA, swapped in while an open connection keeps working", async () => {
    const config = await configOf({ PORTCULLIS_HOST: "0.0.0.0" });
    const s = await start(config);
    const before = await connect(s.port, "localhost");
    await requestOn(before.socket);
    const status = await regenerateConsoleCertificate(t.db, keyring, config, ADMIN);
    expect(status.served!.fingerprintSha256).not.toBe(before.leaf.fingerprint256);
    const after = await connect(s.port, "localhost");
    expect(after.leaf.fingerprint256).toBe(status.served!.fingerprintSha256);
    expect(after.chain[1]!.fingerprint256).toBe(before.chain[1]!.fingerprint256);
    // The connection opened before the swap still answers.
    expect(await requestOn(before.socket)).toMatch(/^HTTP\/1\.1 200/);
    before.socket.destroy();
    after.socket.destroy();
    const events = await listEvents(t.db, { type: "console.tls_changed" });
    expect(events.length).toBeGreaterThan(0);
  });

  it("a change made by another process (the CLI) reaches the running console through its event", async () => {
    const config = await configOf({ PORTCULLIS_HOST: "0.0.0.0" });
    const s = await start(config);
    const before = await connect(s.port, "localhost");
    before.socket.destroy();
    // What `portcullis tls regenerate`-like changes do outside the console: no running manager in that process.
    const running = getRunningTls();
    registerRunningTls(undefined);
    let status;
    try {
      status = await regenerateConsoleCertificate(t.db, keyring, config, ADMIN);
    } finally {
      registerRunningTls(running);
    }
    // Derived from the database, as another process sees it: the stored server certificate.
    const row = await t.db.selectFrom("settings").select("value").where("key", "=", "tls.local_server").executeTakeFirstOrThrow();
    const wanted = new crypto.X509Certificate((JSON.parse(row.value) as { certificatePem: string }).certificatePem).fingerprint256;
    expect(status.served?.fingerprintSha256).toBe(wanted);
    expect(wanted).not.toBe(before.leaf.fingerprint256);
    await waitFor("the running console to serve the new certificate", async () => {
      const now = await connect(s.port, "localhost");
      now.socket.destroy();
      return now.leaf.fingerprint256 === wanted ? true : undefined;
    }, 10_000);
  });

  it("auto on loopback and off serve plain HTTP without HSTS; the headers are there", async () => {
    const envs: Record<string, string>[] = [{ PORTCULLIS_HOST: "127.0.0.1" }, { PORTCULLIS_HOST: "127.0.0.1", PORTCULLIS_TLS_MODE: "off" }];
    for (const env of envs) {
      const config = await configOf(env);
      const s = await start(config);
      expect(s.https).toBe(false);
      const res = await fetch(`http://127.0.0.1:${s.port}/api/x`);
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      expect(res.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
      expect(res.headers.get("strict-transport-security")).toBeNull();
      expect(await res.json()).toMatchObject({ https: false, proto: "http" });
      expect(await readLocalCa(t.db)).toBeUndefined(); // no CA where none is needed
      await servers.pop()!.close();
    }
  });

  it("HTTPS responses carry HSTS and the other security headers", async () => {
    const config = await configOf({ PORTCULLIS_HOST: "0.0.0.0" });
    const s = await start(config);
    const peer = await connect(s.port, "localhost");
    const head = await requestOn(peer.socket, "/_next/static/x.js");
    peer.socket.destroy();
    expect(head).toMatch(/strict-transport-security: max-age=31536000/i);
    expect(head).toMatch(/x-content-type-options: nosniff/i);
    expect(head).toMatch(/x-frame-options: DENY/i);
    expect(head).toMatch(/content-security-policy: default-src 'self'/i);
  });

  it("behind_proxy: X-Forwarded-Proto and X-Forwarded-For count only from PORTCULLIS_TRUSTED_PROXIES", async () => {
    const trustedConfig = await configOf({ PORTCULLIS_HOST: "127.0.0.1", PORTCULLIS_TLS_MODE: "behind_proxy", PORTCULLIS_TRUSTED_PROXIES: "127.0.0.1/8" });
    const trusted = await start(trustedConfig);
    const viaProxy = await fetch(`http://127.0.0.1:${trusted.port}/`, { headers: { "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9" } });
    expect(await viaProxy.json()).toEqual({ https: true, clientIp: "203.0.113.9", proto: "https" });
    expect(viaProxy.headers.get("strict-transport-security")).toMatch(/max-age=/);

    const untrustedConfig = await configOf({ PORTCULLIS_HOST: "127.0.0.1", PORTCULLIS_TLS_MODE: "behind_proxy", PORTCULLIS_TRUSTED_PROXIES: "10.9.9.9,fd00::/8" });
    const untrusted = await start(untrustedConfig);
    const spoofed = await fetch(`http://127.0.0.1:${untrusted.port}/`, { headers: { "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9" } });
    expect(await spoofed.json()).toEqual({ https: false, clientIp: "127.0.0.1", proto: "http" });
    expect(spoofed.headers.get("strict-transport-security")).toBeNull();
  });

  describe("provided files", () => {
    const writePair = async (dirName: string, name: string, opts: { days?: number; now?: Date } = {}) => {
      const pair = await createSelfSignedCertificate({ names: [{ type: "dns", value: name }], keyType: "ecdsa-p256", validityDays: opts.days ?? 30, now: opts.now });
      fs.mkdirSync(dirName, { recursive: true });
      fs.writeFileSync(path.join(dirName, "fullchain.pem"), pair.certificatePem);
      fs.writeFileSync(path.join(dirName, "privkey.pem"), pair.privateKeyPem);
      return { pair, fingerprint: new crypto.X509Certificate(pair.certificatePem).fingerprint256 };
    };

    it("serves the files, reloads a replacement without a restart, and keeps the last good one when the replacement is garbage", async () => {
      const config = await configOf({ PORTCULLIS_HOST: "127.0.0.1", PORTCULLIS_TLS_MODE: "provided" });
      const live = path.join(dir, "live");
      const first = await writePair(live, "console.example.org");
      const cfg = { ...config, tls: { ...config.tls, certFile: path.join(live, "fullchain.pem"), keyFile: path.join(live, "privkey.pem") } };
      const s = await start(cfg);
      const open = await connect(s.port, "console.example.org");
      expect(open.leaf.fingerprint256).toBe(first.fingerprint);
      // Self-signed files: served, and the banner says so, naming the file.
      expect((await getConsoleTlsStatus(t.db, cfg)).served).toMatchObject({ kind: "provided", trusted: false });
      const warnings = await consoleTlsWarnings(t.db, cfg);
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatchObject({ id: "console-self-signed", href: "/settings/tls" });
      expect(warnings[0]!.message).toContain(cfg.tls.certFile!);

      // Replaced in place.
      const second = await writePair(live, "console.example.org");
      await waitFor("the replacement to be served", async () => ((await fingerprintServed(s.port, "console.example.org")) === second.fingerprint ? true : undefined), 4 * PROVIDED_POLL_INTERVAL_MS + 2000);
      expect(await requestOn(open.socket)).toMatch(/^HTTP\/1\.1 200/); // the old connection lives on
      expect((await listEvents(t.db, { type: "console.tls_reloaded" })).length).toBeGreaterThan(0);

      // Garbage: the last good certificate stays, and an error event says why.
      fs.writeFileSync(cfg.tls.certFile!, "not a certificate at all\n");
      const failed = await waitFor("the failure event", async () => (await listEvents(t.db, { type: "console.tls_reload_failed" }))[0]);
      expect(failed.severity).toBe("error");
      expect(failed.message).toContain(cfg.tls.certFile!);
      expect(await fingerprintServed(s.port, "console.example.org")).toBe(second.fingerprint);
      expect((await getConsoleTlsStatus(t.db, cfg)).provided.lastError).toContain("PORTCULLIS_TLS_CERT");

      // A mismatched pair is refused too; a good pair after that is served again.
      const other = await createSelfSignedCertificate({ names: [{ type: "dns", value: "x.example.org" }], keyType: "ecdsa-p256", validityDays: 30 });
      fs.writeFileSync(cfg.tls.certFile!, other.certificatePem);
      await waitFor("the mismatch to be reported", async () => ((await getConsoleTlsStatus(t.db, cfg)).provided.lastError?.includes("PORTCULLIS_TLS_KEY") ? true : undefined));
      expect(await fingerprintServed(s.port, "console.example.org")).toBe(second.fingerprint);
      open.socket.destroy();
    });

    it("follows a certbot-style symlink swap of the live directory", async () => {
      const config = await configOf({ PORTCULLIS_HOST: "127.0.0.1", PORTCULLIS_TLS_MODE: "provided" });
      const first = await writePair(path.join(dir, "archive1"), "console.example.org");
      const second = await writePair(path.join(dir, "archive2"), "console.example.org");
      fs.mkdirSync(path.join(dir, "live"));
      fs.symlinkSync(path.join(dir, "archive1", "fullchain.pem"), path.join(dir, "live", "fullchain.pem"));
      fs.symlinkSync(path.join(dir, "archive1", "privkey.pem"), path.join(dir, "live", "privkey.pem"));
      const cfg = { ...config, tls: { ...config.tls, certFile: path.join(dir, "live", "fullchain.pem"), keyFile: path.join(dir, "live", "privkey.pem") } };
      const s = await start(cfg);
      expect(await fingerprintServed(s.port, "console.example.org")).toBe(first.fingerprint);
      for (const f of ["fullchain.pem", "privkey.pem"]) {
        fs.symlinkSync(path.join(dir, "archive2", f), path.join(dir, "live", `${f}.new`));
        fs.renameSync(path.join(dir, "live", `${f}.new`), path.join(dir, "live", f));
      }
      await waitFor("the swapped files to be served", async () => ((await fingerprintServed(s.port, "console.example.org")) === second.fingerprint ? true : undefined), 4 * PROVIDED_POLL_INTERVAL_MS + 2000);
    });

    it("refuses to start on missing, unreadable, non-PEM, mismatched and expired files, naming the file", async () => {
      const config = await configOf({ PORTCULLIS_HOST: "127.0.0.1", PORTCULLIS_TLS_MODE: "provided" });
      const good = await writePair(path.join(dir, "good"), "a.example.org");
      const expired = await writePair(path.join(dir, "expired"), "a.example.org", { days: 1, now: new Date(Date.now() - 10 * 86_400_000) });
      void good;
      void expired;
      const other = await writePair(path.join(dir, "other"), "b.example.org");
      void other;
      fs.writeFileSync(path.join(dir, "garbage.pem"), "hello\n");
      fs.writeFileSync(path.join(dir, "secret.pem"), fs.readFileSync(path.join(dir, "good", "privkey.pem")));
      fs.chmodSync(path.join(dir, "secret.pem"), 0o000);
      const cases: [string, string, string, RegExp][] = [
        [path.join(dir, "missing.pem"), path.join(dir, "good", "privkey.pem"), "PORTCULLIS_TLS_CERT", /does not exist/],
        [path.join(dir, "garbage.pem"), path.join(dir, "good", "privkey.pem"), "PORTCULLIS_TLS_CERT", /not a PEM file/],
        [path.join(dir, "good", "fullchain.pem"), path.join(dir, "other", "privkey.pem"), "PORTCULLIS_TLS_KEY", /key/],
        [path.join(dir, "expired", "fullchain.pem"), path.join(dir, "expired", "privkey.pem"), "PORTCULLIS_TLS_CERT", /expired/],
      ];
      if (process.getuid?.() !== 0) cases.push([path.join(dir, "good", "fullchain.pem"), path.join(dir, "secret.pem"), "PORTCULLIS_TLS_KEY", /permission denied/]);
      for (const [certFile, keyFile, variable, why] of cases) {
        const cfg = { ...config, tls: { ...config.tls, certFile, keyFile } };
        const check = checkTlsEnvironment(cfg);
        expect(check.ok, `${certFile} + ${keyFile}`).toBe(false);
        const message = (check as { message: string }).message;
        expect(message).toContain(`${variable}=${variable === "PORTCULLIS_TLS_KEY" ? keyFile : certFile}`);
        expect(message).toMatch(why);
        await expect(new ConsoleTlsManager({ config: cfg, db: t.db, keyring, log: silent }).start()).rejects.toBeInstanceOf(ConsoleTlsStartupError);
      }
    });
  });

  it("Settings → TLS: an upload is served at once, a locked mode is refused naming the variable, a switch to plain HTTP asks for a restart", async () => {
    const config = await configOf({ PORTCULLIS_HOST: "0.0.0.0" });
    const s = await start(config);
    const open = await connect(s.port, "localhost");
    const ca = await createLocalCa();
    const leaf = await issueFromLocalCa(ca, { names: [{ type: "dns", value: "console.example.org" }] });
    // Bad input first: nothing is stored, the message names the field.
    const bad = await uploadConsoleCertificate(t.db, keyring, config, ADMIN, { certificatePem: leaf.certificatePem, privateKeyPem: "nope" }).catch((e: unknown) => e);
    expect(bad).toBeInstanceOf(AppError);
    expect((bad as AppError).status).toBe(400);
    expect(Object.keys((bad as AppError).fieldErrors ?? {})).toContain("privateKeyPem");
    expect((await getConsoleTlsStatus(t.db, config)).mode).toBe("auto");

    const status = await uploadConsoleCertificate(t.db, keyring, config, ADMIN, { certificatePem: `${leaf.certificatePem}${ca.certificatePem}`, privateKeyPem: leaf.privateKeyPem });
    expect(status).toMatchObject({ mode: "provided", modeSource: "settings", provided: { source: "upload" }, served: { kind: "provided", trusted: true } });
    expect(await consoleTlsWarnings(t.db, config)).toEqual([]); // issued by a CA: no banner
    expect(await fingerprintServed(s.port, "console.example.org")).toBe(new crypto.X509Certificate(leaf.certificatePem).fingerprint256);
    expect(await requestOn(open.socket)).toMatch(/^HTTP\/1\.1 200/);
    open.socket.destroy();
    const audit = await t.db.selectFrom("audit_log").select("action").where("action", "like", "console_tls.%").execute();
    expect(audit.map((a) => a.action)).toContain("console_tls.upload");
    expect(JSON.stringify(await t.db.selectFrom("settings").selectAll().where("key", "=", "tls.provided").execute())).not.toContain("PRIVATE KEY");

    // Back to the local CA, live.
    const back = await updateTlsSettings(t.db, keyring, config, ADMIN, { mode: "auto" });
    expect(back.served?.kind).toBe("local_ca");
    // To plain HTTP: stored, but only a restart can do it; the status says so.
    const toHttp = await updateTlsSettings(t.db, keyring, { ...config, tls: { ...config.tls, allowInsecureHttp: true } }, ADMIN, { mode: "off" });
    expect(toHttp.restartRequired).toMatch(/restart/);
    expect(toHttp.https).toBe(true);

    // A mode set by the environment wins, and the API says which variable to change.
    const locked = { ...config, tls: { ...config.tls, mode: "auto" as const, modeFromEnv: true } };
    const refused = await updateTlsSettings(t.db, keyring, locked, ADMIN, { acme: { enabled: true, domain: "console.example.org", email: "ops@example.org" } }).catch((e: unknown) => e);
    expect((refused as AppError).status).toBe(409);
    expect((refused as AppError).message).toContain("PORTCULLIS_TLS_MODE");
    expect((await getConsoleTlsStatus(t.db, locked)).locked).toEqual({ mode: "PORTCULLIS_TLS_MODE" });
    const badDomain = await updateTlsSettings(t.db, keyring, config, ADMIN, { acme: { enabled: true, domain: "not a domain", email: "ops@example.org" } }).catch((e: unknown) => e);
    expect((badDomain as AppError).status).toBe(400);
    const badEmail = await updateTlsSettings(t.db, keyring, config, ADMIN, { acme: { enabled: true, domain: "console.example.org", email: "nope" } }).catch((e: unknown) => e);
    expect((badEmail as AppError).status).toBe(400);
  });

  it("re-issues the local-CA server certificate when a third of its life is left, not before", async () => {
    const config = await configOf({ PORTCULLIS_HOST: "0.0.0.0" });
    const at = (days: number) => () => new Date(Date.now() + days * 86_400_000);
    const first = new ConsoleTlsManager({ config, db: t.db, keyring, log: silent });
    await first.start();
    first.stop();
    const day50 = new ConsoleTlsManager({ config, db: t.db, keyring, log: silent, now: at(50) });
    await day50.start();
    day50.stop();
    expect(day50.served!.fingerprintSha256).toBe(first.served!.fingerprintSha256);
    const day65 = new ConsoleTlsManager({ config, db: t.db, keyring, log: silent, now: at(65) });
    await day65.start();
    day65.stop();
    expect(day65.served!.fingerprintSha256).not.toBe(first.served!.fingerprintSha256);
    expect(day65.served!.issuer).toBe(first.served!.issuer);
  });

  it("a mode off stored in the settings does not start on a public bind without the opt-in", async () => {
    const config = await configOf({ PORTCULLIS_HOST: "0.0.0.0" });
    await writeSetting(t.db, TLS_MODE_KEY, "off");
    await expect(new ConsoleTlsManager({ config, db: t.db, keyring, log: silent }).start()).rejects.toThrow(/PORTCULLIS_ALLOW_INSECURE_HTTP/);
  });
});

describe.skipIf(!pebbleAvailable()).each(TEST_ENGINES)("acme mode against pebble on %s", (kind) => {
  let pebble: Pebble;
  let t: TestDatabase;
  beforeAll(async () => {
    pebble = await startPebble();
    configureAcmeTransport(pebble.caBundlePath);
    t = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await t?.destroy();
    await pebble?.stop();
  });

  it("serves a self-signed stand-in, answers TLS-ALPN-01 itself, and swaps in the issued certificate without a restart", async () => {
    const keyring = new Keyring(sealingKeyFromBytes(crypto.randomBytes(32)));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-console-acme-"));
    const domain = "console.example.test";
    // The console listens where pebble's VA dials for TLS-ALPN-01 (443 in production).
    const config = parseConfig({
      PORTCULLIS_DATA_DIR: dir,
      PORTCULLIS_HOST: "127.0.0.1",
      PORTCULLIS_PORT: String(pebble.tlsPort),
      PORTCULLIS_TLS_MODE: "acme",
      PORTCULLIS_ACME_DOMAIN: domain,
      PORTCULLIS_ACME_EMAIL: "ops@example.com",
      PORTCULLIS_ACME_DIRECTORY_URL: pebble.directoryUrl,
      PORTCULLIS_ACME_CA_BUNDLE: pebble.caBundlePath,
    });
    await writeSetting(t.db, ACME_KEY, { enabled: true, domain: null, email: null, certificateId: null, challenge: "tls-alpn-01" });
    const s = await createConsoleServer({ config, db: t.db, keyring, log: silent, handler: echo });
    const engine = new AcmeEngine({ db: t.db, keyring, log: silent, pollMs: 100 });
    try {
      const before = await connect(s.port, domain);
      expect(before.leaf.issuer).toBe(before.leaf.subject); // self-signed stand-in
      expect(before.leaf.subjectAltName).toBe(`DNS:${domain}`);
      const status = await getConsoleTlsStatus(t.db, config);
      expect(status).toMatchObject({ mode: "acme", modeSource: "env", served: { kind: "self_signed", trusted: false }, acme: { domain, email: "ops@example.com" } });
      expect(status.acme.certificateId).toBeTruthy();
      expect((await consoleTlsWarnings(t.db, config))[0]?.id).toBe("console-self-signed");
      expect(await requestOn(before.socket)).toMatch(/^HTTP\/1\.1 200/);

      engine.start();
      const issued = await waitFor("the issued certificate to be served", async () => {
        const peer = await connect(s.port, domain);
        peer.socket.destroy();
        return peer.leaf.issuer !== peer.leaf.subject ? peer : undefined;
      }, 30_000);
      const { intermediate } = await pebble.issuerPems();
      expect(issued.leaf.verify(new crypto.X509Certificate(intermediate).publicKey)).toBe(true);
      expect(issued.leaf.subjectAltName).toBe(`DNS:${domain}`);
      // The connection opened on the self-signed certificate still works after the swap.
      expect(await requestOn(before.socket)).toMatch(/^HTTP\/1\.1 200/);
      before.socket.destroy();
      const after = await getConsoleTlsStatus(t.db, config);
      expect(after).toMatchObject({ served: { kind: "acme", trusted: true }, acme: { status: "active", lastError: null } });
      // statusAsOf is the newest event when the status was read: the engine's status events came after the first read and before the second.
      const statusEvents = (await listEvents(t.db, { certificateId: status.acme.certificateId!, limit: 100 })).filter((e) => typeof (e.detail as { status?: unknown } | null)?.status === "string");
      const requesting = statusEvents.filter((e) => (e.detail as { status: string }).status === "requesting");
      expect(requesting.length).toBeGreaterThan(0);
      expect(requesting.every((e) => e.id > status.acme.statusAsOf && e.id <= after.acme.statusAsOf)).toBe(true);
      expect(status.acme.status).toBe("pending");
      // The status changes up to statusAsOf come with it, oldest first: a page whose live stream lags this
      // read still steps through Requesting on its way to Active.
      const changes = statusEvents.map((e) => ({ eventId: e.id, status: (e.detail as { status: string }).status }));
      expect(status.acme.statusSteps).toEqual(changes.filter((e) => e.eventId <= status.acme.statusAsOf));
      expect(after.acme.statusSteps).toEqual(changes.filter((e) => e.eventId <= after.acme.statusAsOf));
      expect(after.acme.statusSteps.map((e) => e.status)).toEqual(expect.arrayContaining(["pending", "requesting", "active"]));
      expect((await getConsoleTlsStatus(t.db, config, { statusAsOf: false })).acme.statusSteps).toEqual([]);
      expect(await consoleTlsWarnings(t.db, config)).toEqual([]);
    } finally {
      await engine.stop();
      await s.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("when issuance fails, keeps serving the stand-in and reports the CA's error", async () => {
    const keyring = new Keyring(sealingKeyFromBytes(crypto.randomBytes(32)));
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-console-acme-"));
    const domain = "broken.example.test";
    const config = parseConfig({
      PORTCULLIS_DATA_DIR: dir,
      PORTCULLIS_HOST: "127.0.0.1",
      PORTCULLIS_PORT: String(await findFreePort()),
      PORTCULLIS_ACME_DIRECTORY_URL: pebble.directoryUrl,
      PORTCULLIS_ACME_CA_BUNDLE: pebble.caBundlePath,
    });
    // Chosen in Settings → TLS (no environment): HTTP-01, and nothing answers on pebble's HTTP port.
    await writeSetting(t.db, TLS_MODE_KEY, "acme");
    await writeSetting(t.db, ACME_KEY, { enabled: true, domain, email: "ops@example.com", certificateId: null, challenge: "http-01" });
    const s = await createConsoleServer({ config, db: t.db, keyring, log: silent, handler: echo });
    try {
      const before = await fingerprintServed(s.port, domain);
      await new AcmeEngine({ db: t.db, keyring, log: silent }).drain();
      const status = await getConsoleTlsStatus(t.db, config);
      expect(status).toMatchObject({ mode: "acme", modeSource: "settings", served: { kind: "self_signed" }, acme: { enabled: true, domain } });
      expect(status.acme.lastError).toBeTruthy();
      expect(await fingerprintServed(s.port, domain)).toBe(before);
      expect((await consoleTlsWarnings(t.db, config))[0]!.message).toContain(status.acme.lastError!);
    } finally {
      await s.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("refusals of the real `portcullis console` process (exit 2, no build needed)", () => {
  const run = (env: Record<string, string>, command: "console" | "serve" = "console") =>
    new Promise<{ code: number | null; stderr: string; databaseCreated: boolean }>((resolve) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-console-refusal-"));
      const child = spawn(process.execPath, [path.join(root, "bin", "portcullis.mjs"), command], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? "", HOME: dir, PORTCULLIS_DATA_DIR: dir, PORTCULLIS_LOG_LEVEL: "silent", ...env } as unknown as NodeJS.ProcessEnv,
      });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill("SIGKILL"), 90_000);
      child.on("exit", (code) => {
        clearTimeout(timer);
        const databaseCreated = fs.readdirSync(dir).some((f) => f.endsWith(".db"));
        fs.rmSync(dir, { recursive: true, force: true });
        resolve({ code, stderr, databaseCreated });
      });
    });

  it("refuses each bad TLS setting with a message naming the variable or file, and no stack", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-console-files-"));
    const pair = await createSelfSignedCertificate({ names: [{ type: "dns", value: "a.example.org" }], keyType: "ecdsa-p256", validityDays: 30 });
    const otherKey = (await createSelfSignedCertificate({ names: [{ type: "dns", value: "b.example.org" }], keyType: "ecdsa-p256", validityDays: 30 })).privateKeyPem;
    const old = await createSelfSignedCertificate({ names: [{ type: "dns", value: "a.example.org" }], keyType: "ecdsa-p256", validityDays: 1, now: new Date(Date.now() - 5 * 86_400_000) });
    const file = (name: string, text: string) => {
      fs.writeFileSync(path.join(dir, name), text);
      return path.join(dir, name);
    };
    const cert = file("cert.pem", pair.certificatePem);
    const key = file("key.pem", pair.privateKeyPem);
    const cases: [Record<string, string>, RegExp[]][] = [
      [{ PORTCULLIS_TLS_MODE: "https-please" }, [/PORTCULLIS_TLS_MODE/, /auto, acme, provided, off, behind_proxy/]],
      [{ PORTCULLIS_TLS_MODE: "off", PORTCULLIS_HOST: "0.0.0.0" }, [/PORTCULLIS_TLS_MODE=off on 0\.0\.0\.0/, /PORTCULLIS_ALLOW_INSECURE_HTTP=true/]],
      [{ PORTCULLIS_TLS_MODE: "provided", PORTCULLIS_TLS_CERT: path.join(dir, "nope.pem"), PORTCULLIS_TLS_KEY: key }, [new RegExp(`PORTCULLIS_TLS_CERT=${path.join(dir, "nope.pem")}`), /does not exist/]],
      [{ PORTCULLIS_TLS_MODE: "provided", PORTCULLIS_TLS_CERT: file("junk.pem", "junk"), PORTCULLIS_TLS_KEY: key }, [/PORTCULLIS_TLS_CERT=.*junk\.pem/, /not a PEM file/]],
      [{ PORTCULLIS_TLS_MODE: "provided", PORTCULLIS_TLS_CERT: cert, PORTCULLIS_TLS_KEY: file("other.pem", otherKey) }, [/PORTCULLIS_TLS_KEY=.*other\.pem/]],
      [{ PORTCULLIS_TLS_MODE: "provided", PORTCULLIS_TLS_CERT: file("old.pem", old.certificatePem), PORTCULLIS_TLS_KEY: file("oldkey.pem", old.privateKeyPem) }, [/PORTCULLIS_TLS_CERT=.*old\.pem/, /expired/]],
      [{ PORTCULLIS_TLS_MODE: "provided", PORTCULLIS_TLS_CERT: cert }, [/PORTCULLIS_TLS_KEY is not set/]],
      [{ PORTCULLIS_HOST: "0.0.0.0", PORTCULLIS_TLS_SANS: "ok.example.org,bad name!" }, [/PORTCULLIS_TLS_SANS: "bad name!"/]],
    ];
    if (process.getuid?.() !== 0) {
      const locked = file("locked.pem", pair.privateKeyPem);
      fs.chmodSync(locked, 0o000);
      cases.push([{ PORTCULLIS_TLS_MODE: "provided", PORTCULLIS_TLS_CERT: cert, PORTCULLIS_TLS_KEY: locked }, [/PORTCULLIS_TLS_KEY=.*locked\.pem/, /permission denied/]]);
    }
    // Three at a time: each is a Node process with the TypeScript loader, and CI machines are busy.
    const results: Awaited<ReturnType<typeof run>>[] = [];
    for (let i = 0; i < cases.length; i += 3) results.push(...(await Promise.all(cases.slice(i, i + 3).map(([env]) => run(env)))));
    for (const [index, [env, patterns]] of cases.entries()) {
      const { code, stderr } = results[index]!;
      expect(code, `${JSON.stringify(env)}: ${stderr}`).toBe(2);
      for (const p of patterns) expect(stderr, JSON.stringify(env)).toMatch(p);
      expect(stderr).not.toMatch(/\n\s+at /); // no stack trace
    }
    // `npm start` (serve) refuses the same way, before it migrates a database or builds the console.
    const served = await run({ PORTCULLIS_TLS_MODE: "provided", PORTCULLIS_TLS_CERT: path.join(dir, "nope.pem"), PORTCULLIS_TLS_KEY: key }, "serve");
    expect(served.code, served.stderr).toBe(2);
    expect(served.stderr).toMatch(/PORTCULLIS_TLS_CERT=.*nope\.pem/);
    expect(served.databaseCreated).toBe(false);
    fs.rmSync(dir, { recursive: true, force: true });
  }, 240_000);
});
