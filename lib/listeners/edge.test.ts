import crypto from "node:crypto";
import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_ACTOR } from "../audit";
import { createSelfSignedCertificateRecord, type CertificateDetail } from "../certificates";
import { Keyring, sealingKeyFromBytes } from "../crypto/seal";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../db/testing";
import { listEvents } from "../events";
import { newId, nowIso } from "../ids";
import { findFreePort } from "../net";
import { createSelfSignedCertificate } from "../pki/selfSigned";
import { Edge } from "./edge";
import { addMapping, createListener, listChecks, listenerBindProblem, removeMapping, setMappings, updateListener } from "./index";
import { bumpEdgeRevision } from "./revision";
import { fetchServedCertificate } from "./served-check";

const keyring = new Keyring(sealingKeyFromBytes(crypto.randomBytes(32)));
const log = pino({ level: "silent" });

function handshake(port: number, opts: tls.ConnectionOptions = {}): Promise<{ fingerprint: string; protocol: string | null; alpn: string | false | null }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...opts });
    socket.once("secureConnect", () => {
      const result = { fingerprint: socket.getPeerX509Certificate()!.fingerprint256, protocol: socket.getProtocol(), alpn: socket.alpnProtocol };
      socket.end();
      resolve(result);
    });
    socket.once("error", reject);
  });
}

function httpsGet(port: number, servername: string, path = "/", agent: https.Agent | false = false): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders; fingerprint: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: "127.0.0.1", port, servername, path, rejectUnauthorized: false, agent, headers: { host: servername } },
      (res) => {
        // Node reports no peer certificate for a second request on a kept-alive socket.
        const fingerprint = (res.socket as tls.TLSSocket).getPeerX509Certificate()?.fingerprint256 ?? "(kept-alive socket)";
        const socket = res.socket;
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode!, body, headers: res.headers, fingerprint, socket }));
      },
    );
    req.on("error", reject);
  });
}

async function waitFor<T>(fn: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 3000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = await fn().catch((e: unknown) => e as T);
    if (ok(value)) return value;
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms; last: ${String(value)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.each(TEST_ENGINES)("the edge on %s", (kind) => {
  let t: TestDatabase;
  let edge: Edge;
  let upstream: http.Server;
  let upstreamPort: number;
  let httpsPort: number;
  let listenerId: string;
  const certs: Record<string, CertificateDetail> = {};

  beforeAll(async () => {
    t = await createTestDatabase(kind);
    upstream = http.createServer((req, res) => {
      res.setHeader("Content-Type", "application/json");
      res.end(JSON.stringify({ path: req.url, headers: req.headers }));
    });
    upstream.on("upgrade", (req, socket) => {
      socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n");
      socket.pipe(socket);
    });
    upstreamPort = await findFreePort();
    await new Promise<void>((r) => upstream.listen(upstreamPort, "127.0.0.1", r));
    for (const [key, domains] of Object.entries({ exact: ["a.example.test"], wildcard: ["*.example.test"], fallbackDefault: ["default.example.test"], other: ["a.example.test"] })) {
      certs[key] = await createSelfSignedCertificateRecord(t.db, keyring, SYSTEM_ACTOR, { name: `${key}-${kind}`, domains });
    }
    httpsPort = await findFreePort();
    const listener = await createListener(t.db, SYSTEM_ACTOR, {
      name: "public https",
      kind: "https",
      bindAddress: "127.0.0.1",
      port: httpsPort,
      upstreamUrl: `http://127.0.0.1:${upstreamPort}`,
      defaultCertificateId: certs.fallbackDefault.id,
    });
    listenerId = listener.id;
    await setMappings(t.db, SYSTEM_ACTOR, listenerId, {
      mappings: [
        { hostname: "a.example.test", certificateId: certs.exact.id },
        { hostname: "*.example.test", certificateId: certs.wildcard.id },
      ],
    });
    edge = new Edge({ db: t.db, keyring, log, pollIntervalMs: 50, checkIntervalMs: 3_600_000 });
    await edge.start();
  });

  afterAll(async () => {
    await edge?.stop();
    upstream?.close();
    await t?.destroy();
  });

  it("picks exact over wildcard, a wildcard for one label only, then the default", async () => {
    expect((await handshake(httpsPort, { servername: "a.example.test" })).fingerprint).toBe(certs.exact.fingerprintSha256);
    expect((await handshake(httpsPort, { servername: "b.example.test" })).fingerprint).toBe(certs.wildcard.fingerprintSha256);
    expect((await handshake(httpsPort, { servername: "x.b.example.test" })).fingerprint).toBe(certs.fallbackDefault.fingerprintSha256);
    expect((await handshake(httpsPort, {})).fingerprint).toBe(certs.fallbackDefault.fingerprintSha256);
  });

  it("proxies to the upstream with X-Forwarded headers, and shows a 502 page when it is down", async () => {
    const res = await httpsGet(httpsPort, "a.example.test", "/hello?x=1");
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body) as { path: string; headers: Record<string, string> };
    expect(seen.path).toBe("/hello?x=1");
    expect(seen.headers["x-forwarded-proto"]).toBe("https");
    expect(seen.headers["x-forwarded-host"]).toBe("a.example.test");
    expect(seen.headers["x-forwarded-for"]).toBe("127.0.0.1");

    const down = await findFreePort();
    const listener = await createListener(t.db, SYSTEM_ACTOR, { name: "down", kind: "https", bindAddress: "127.0.0.1", port: await findFreePort(), upstreamUrl: `http://127.0.0.1:${down}`, defaultCertificateId: certs.exact.id });
    const port = await waitFor(async () => edge.status().find((s) => s.id === listener.id), Boolean);
    const bad = await httpsGet(Number(port!.address.split(":").at(-1)), "a.example.test");
    expect(bad.status).toBe(502);
    expect(bad.body).toContain("could not reach the service");
    expect(bad.body).toContain("connection was refused");
  });

  it("passes WebSocket-style upgrades through", async () => {
    const socket = tls.connect({ host: "127.0.0.1", port: httpsPort, servername: "a.example.test", rejectUnauthorized: false });
    await new Promise((r) => socket.once("secureConnect", r));
    socket.write("GET /ws HTTP/1.1\r\nHost: a.example.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
    let received = "";
    socket.on("data", (d) => {
      received += d;
      if (received.includes("\r\n\r\n") && !received.includes("ping")) socket.write("ping");
    });
    await waitFor(async () => received, (r) => r.includes("ping"));
    expect(received).toMatch(/^HTTP\/1.1 101/);
    socket.destroy();
  });

  it("serves a persisted self-signed fallback for unmapped names without a default, records it, or refuses if told to", async () => {
    await updateListener(t.db, SYSTEM_ACTOR, listenerId, { name: "public https", kind: "https", bindAddress: "127.0.0.1", port: httpsPort, upstreamUrl: `http://127.0.0.1:${upstreamPort}`, defaultCertificateId: "" });
    const fallback = await waitFor(() => handshake(httpsPort, { servername: "unmapped.other.test" }), (h) => h.fingerprint !== certs.fallbackDefault.fingerprintSha256);
    const stored = await t.db.selectFrom("listeners").select("fallback_chain_pem").where("id", "=", listenerId).executeTakeFirstOrThrow();
    expect(new crypto.X509Certificate(stored.fallback_chain_pem!).fingerprint256).toBe(fallback.fingerprint);
    const events = await waitFor(() => listEvents(t.db, {}), (e) => e.some((x) => x.type === "tls.fallback_served"));
    expect(events.find((e) => e.type === "tls.fallback_served")?.message).toContain("unmapped.other.test");

    await updateListener(t.db, SYSTEM_ACTOR, listenerId, { name: "public https", kind: "https", bindAddress: "127.0.0.1", port: httpsPort, upstreamUrl: `http://127.0.0.1:${upstreamPort}`, fallbackPolicy: "refuse" });
    await waitFor(() => handshake(httpsPort, { servername: "unmapped.other.test" }).then(() => "served", () => "refused"), (r) => r === "refused");
    expect((await handshake(httpsPort, { servername: "a.example.test" })).fingerprint).toBe(certs.exact.fingerprintSha256);
  });

  it("refuses clients below the minimum TLS version", async () => {
    expect((await handshake(httpsPort, { servername: "a.example.test", maxVersion: "TLSv1.2" })).protocol).toBe("TLSv1.2");
    await updateListener(t.db, SYSTEM_ACTOR, listenerId, { name: "public https", kind: "https", bindAddress: "127.0.0.1", port: httpsPort, upstreamUrl: `http://127.0.0.1:${upstreamPort}`, minTlsVersion: "TLSv1.3", fallbackPolicy: "refuse" });
    await waitFor(() => handshake(httpsPort, { servername: "a.example.test", maxVersion: "TLSv1.2" }).then(() => "ok", () => "refused"), (r) => r === "refused");
    expect((await handshake(httpsPort, { servername: "a.example.test" })).protocol).toBe("TLSv1.3");
  });

  it("answers a TLS-ALPN-01 handshake with the pending challenge certificate", async () => {
    const { certificatePem, privateKeyPem } = await createSelfSignedCertificate({ names: [{ type: "dns", value: "challenge.example.test" }], keyType: "ecdsa-p256", validityDays: 1 });
    const id = newId("chl");
    await t.db
      .insertInto("acme_challenges")
      .values({ id, kind: "tls-alpn-01", identifier: "challenge.example.test", token: null, key_authorization: null, certificate_pem: certificatePem, sealed_key: keyring.seal(privateKeyPem, `acme-challenge:${id}`), expires_at: new Date(Date.now() + 60_000).toISOString(), created_at: nowIso() })
      .execute();
    const result = await handshake(httpsPort, { servername: "challenge.example.test", ALPNProtocols: ["acme-tls/1"] });
    expect(result.alpn).toBe("acme-tls/1");
    expect(result.fingerprint).toBe(new crypto.X509Certificate(certificatePem).fingerprint256);
    // Without acme-tls/1 the same name gets the normal certificate.
    expect((await handshake(httpsPort, { servername: "challenge.example.test" })).fingerprint).toBe(certs.wildcard.fingerprintSha256);
  });

  it("swaps certificates under load within a second with no failed request, and keeps open connections", async () => {
    const keepAliveAgent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
    const first = await httpsGet(httpsPort, "a.example.test", "/", keepAliveAgent);
    expect(first.fingerprint).toBe(certs.exact.fingerprintSha256);

    let failures = 0;
    const errors: string[] = [];
    let requests = 0;
    let running = true;
    let swappedAt = 0;
    let firstNewAt = 0;
    const loops = Array.from({ length: 50 }, async () => {
      while (running) {
        try {
          const r = await httpsGet(httpsPort, "a.example.test");
          requests++;
          if (r.status !== 200) failures++;
          if (swappedAt && !firstNewAt && r.fingerprint === certs.other.fingerprintSha256) firstNewAt = Date.now();
        } catch (err) {
          failures++;
          errors.push(String(err));
        }
      }
    });
    // The swap happens under load: 50 clients busy, and at least 100 requests answered already.
    await waitFor(async () => requests, (n) => n >= 100, 10_000);
    const beforeSwap = requests;
    swappedAt = Date.now();
    await setMappings(t.db, SYSTEM_ACTOR, listenerId, {
      mappings: [
        { hostname: "a.example.test", certificateId: certs.other.id },
        { hostname: "*.example.test", certificateId: certs.wildcard.id },
      ],
    });
    await waitFor(async () => firstNewAt, (v) => v > 0, 2000);
    await new Promise((r) => setTimeout(r, 200));
    running = false;
    await Promise.all(loops);
    expect(errors.slice(0, 3)).toEqual([]);
    expect(failures).toBe(0);
    expect(requests).toBeGreaterThan(beforeSwap);
    expect(firstNewAt - swappedAt).toBeLessThanOrEqual(1000);

    // The keep-alive connection opened before the swap (on the old certificate) still serves.
    const again = await httpsGet(httpsPort, "a.example.test", "/", keepAliveAgent);
    expect(again.status).toBe(200);
    expect(again.socket).toBe(first.socket);
    keepAliveAgent.destroy();
  }, 20_000);

  it("moves a listener to another port within a second, keeping connections that are open", async () => {
    const oldPort = await findFreePort();
    const input = { name: "moving", kind: "https", bindAddress: "127.0.0.1", port: oldPort, upstreamUrl: `http://127.0.0.1:${upstreamPort}`, defaultCertificateId: certs.exact.id };
    const listener = await createListener(t.db, SYSTEM_ACTOR, input);
    await waitFor(async () => edge.status().some((s) => s.id === listener.id), Boolean);
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
    const first = await httpsGet(oldPort, "a.example.test", "/", agent);
    expect(first.status).toBe(200);

    const newPort = await findFreePort();
    const movedAt = Date.now();
    await updateListener(t.db, SYSTEM_ACTOR, listener.id, { ...input, port: newPort });
    await waitFor(() => handshake(newPort, { servername: "a.example.test" }), (h) => Boolean((h as { fingerprint?: string }).fingerprint), 1000);
    expect(Date.now() - movedAt).toBeLessThanOrEqual(1000);
    await expect(handshake(oldPort, { servername: "a.example.test" })).rejects.toThrow();
    const again = await httpsGet(oldPort, "a.example.test", "/", agent);
    expect(again.status).toBe(200);
    expect(again.socket).toBe(first.socket);
    agent.destroy();
  });

  it("checks what each mapping really serves, and reports a mismatch", async () => {
    const stale = new Edge({ db: t.db, keyring, log, pollIntervalMs: 3_600_000, checkIntervalMs: 3_600_000 });
    const port = await findFreePort();
    const listener = await createListener(t.db, SYSTEM_ACTOR, { name: "checked", kind: "https", bindAddress: "127.0.0.1", port, upstreamUrl: `http://127.0.0.1:${upstreamPort}` });
    await setMappings(t.db, SYSTEM_ACTOR, listener.id, { mappings: [{ hostname: "a.example.test", certificateId: certs.exact.id }] });
    // The running edge must not serve this listener: it would compete for the port.
    await edge.stop();
    try {
      await stale.start();
      const { checkServedCertificates } = await import("./served-check");
      const row = await t.db.selectFrom("listeners").selectAll().where("id", "=", listener.id).executeTakeFirstOrThrow();
      await checkServedCertificates(t.db, [row]);
      expect((await listChecks(t.db, listener.id))[0]).toMatchObject({ hostname: "a.example.test", status: "serving" });

      // "Renewed but still serving the old one": the database moves on, this edge does not reload.
      await t.db.updateTable("certificate_mappings").set({ certificate_id: certs.other.id }).where("listener_id", "=", listener.id).execute();
      await checkServedCertificates(t.db, [row]);
      const check = (await listChecks(t.db, listener.id))[0];
      expect(check).toMatchObject({ status: "mismatch", expected_fingerprint: certs.other.fingerprintSha256, served_fingerprint: certs.exact.fingerprintSha256 });
      const events = await listEvents(t.db, {});
      expect(events.filter((e) => e.type === "tls.served_mismatch" && e.listenerId === listener.id)).toHaveLength(1);
      await stale.reload();
      await checkServedCertificates(t.db, [row]);
      expect((await listChecks(t.db, listener.id))[0].status).toBe("serving");
      expect((await fetchServedCertificate("127.0.0.1", port, "a.example.test")).fingerprint).toBe(certs.other.fingerprintSha256);
    } finally {
      await stale.stop();
    }
  });

  it("runs HTTP listeners: redirect to HTTPS and ACME HTTP-01 tokens from the database", async () => {
    const http01 = new Edge({ db: t.db, keyring, log, pollIntervalMs: 50, checkIntervalMs: 3_600_000 });
    const port = await findFreePort();
    await createListener(t.db, SYSTEM_ACTOR, { name: "plain http", kind: "http", bindAddress: "127.0.0.1", port, httpAction: "redirect", redirectPort: 8443 });
    await t.db
      .insertInto("acme_challenges")
      .values({ id: newId("chl"), kind: "http-01", identifier: "a.example.test", token: "tok_123-abc", key_authorization: "tok_123-abc.thumbprint", certificate_pem: null, sealed_key: null, expires_at: new Date(Date.now() + 60_000).toISOString(), created_at: nowIso() })
      .execute();
    await bumpEdgeRevision(t.db);
    try {
      await http01.start();
      const get = (path: string) =>
        new Promise<{ status: number; body: string; location?: string }>((resolve, reject) => {
          http.get({ host: "127.0.0.1", port, path, headers: { host: "a.example.test" } }, (res) => {
            let body = "";
            res.on("data", (d) => (body += d));
            res.on("end", () => resolve({ status: res.statusCode!, body, location: res.headers.location }));
          }).on("error", reject);
        });
      expect(await get("/.well-known/acme-challenge/tok_123-abc")).toMatchObject({ status: 200, body: "tok_123-abc.thumbprint" });
      expect((await get("/.well-known/acme-challenge/unknown")).status).toBe(404);
      expect(await get("/some/page?q=1")).toMatchObject({ status: 301, location: "https://a.example.test:8443/some/page?q=1" });
    } finally {
      await http01.stop();
    }
  });
});

describe("listener validation", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase("sqlite");
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it("refuses bad input with a message per field, and saves nothing", async () => {
    const busy = net.createServer();
    const busyPort = await findFreePort();
    await new Promise<void>((r) => busy.listen(busyPort, "127.0.0.1", r));
    const cases: [unknown, string, RegExp][] = [
      [{ name: "x", kind: "https", port: 70000, upstreamUrl: "http://127.0.0.1:1" }, "port", /between 1 and 65535/],
      [{ name: "x", kind: "https", port: "abc", upstreamUrl: "http://127.0.0.1:1" }, "port", /number/],
      [{ name: "x", kind: "https", port: 1, upstreamUrl: "ftp://files" }, "upstreamUrl", /http:\/\/ or https:\/\//],
      [{ name: "x", kind: "https", port: 1 }, "upstreamUrl", /needs the upstream URL/],
      [{ name: "x", kind: "tcp", port: 1 }, "kind", /https or http/],
      [{ name: "x", kind: "http", bindAddress: "example.com", port: 1 }, "bindAddress", /IP address/],
      [{ name: "x", kind: "http", bindAddress: "127.0.0.1", port: busyPort }, "port", /already in use/],
      [{ name: "", kind: "http", port: 1 }, "name", /give the listener a name/],
    ];
    for (const [input, field, message] of cases) {
      const err = (await createListener(t.db, SYSTEM_ACTOR, input).catch((e: unknown) => e)) as { code: string; fieldErrors: Record<string, string[]> };
      expect(err.code, JSON.stringify(input)).toBe("validation_failed");
      expect(err.fieldErrors[field]?.join(" "), JSON.stringify(input)).toMatch(message);
    }
    busy.close();
    expect(await t.db.selectFrom("listeners").selectAll().execute()).toHaveLength(0);
  });

  it("refuses a second listener on an overlapping address and port", async () => {
    const port = await findFreePort();
    await createListener(t.db, SYSTEM_ACTOR, { name: "one", kind: "http", bindAddress: "0.0.0.0", port });
    const err = (await createListener(t.db, SYSTEM_ACTOR, { name: "two", kind: "http", bindAddress: "127.0.0.1", port }).catch((e: unknown) => e)) as { fieldErrors: Record<string, string[]> };
    expect(err.fieldErrors.port[0]).toContain('listener "one" already uses 0.0.0.0');
  });

  it("refuses mappings with bad names or unknown certificates, and keeps the old ones", async () => {
    const listener = await createListener(t.db, SYSTEM_ACTOR, { name: "maps", kind: "https", bindAddress: "127.0.0.1", port: await findFreePort(), upstreamUrl: "http://127.0.0.1:9" });
    const cert = await createSelfSignedCertificateRecord(t.db, keyring, SYSTEM_ACTOR, { domains: ["ok.example.test"] });
    await setMappings(t.db, SYSTEM_ACTOR, listener.id, { mappings: [{ hostname: "ok.example.test", certificateId: cert.id }] });
    for (const mappings of [
      [{ hostname: "exa mple.com", certificateId: cert.id }],
      [{ hostname: "192.0.2.1", certificateId: cert.id }],
      [{ hostname: "x.example.test", certificateId: "crt_nope" }],
      [
        { hostname: "dup.example.test", certificateId: cert.id },
        { hostname: "DUP.example.test", certificateId: cert.id },
      ],
    ]) {
      await expect(setMappings(t.db, SYSTEM_ACTOR, listener.id, { mappings })).rejects.toMatchObject({ code: "validation_failed" });
    }
    const kept = await t.db.selectFrom("certificate_mappings").select("hostname").where("listener_id", "=", listener.id).execute();
    expect(kept.map((k) => k.hostname)).toEqual(["ok.example.test"]);
    const { warnings } = await setMappings(t.db, SYSTEM_ACTOR, listener.id, { mappings: [{ hostname: "other.example.test", certificateId: cert.id }] });
    expect(warnings[0]).toContain("does not cover other.example.test");

    // One mapping at a time: a name already mapped is refused even when two saves race.
    const results = await Promise.allSettled([1, 2, 3].map(() => addMapping(t.db, SYSTEM_ACTOR, listener.id, { hostname: "Race.example.test", certificateId: cert.id })));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    expect(results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason.code)).toEqual(["conflict", "conflict"]);
    await expect(addMapping(t.db, SYSTEM_ACTOR, listener.id, { hostname: "192.0.2.1", certificateId: cert.id })).rejects.toMatchObject({ fieldErrors: { hostname: [expect.stringContaining("IP addresses")] } });
    await removeMapping(t.db, SYSTEM_ACTOR, listener.id, "race.example.test");
    await expect(removeMapping(t.db, SYSTEM_ACTOR, listener.id, "race.example.test")).rejects.toMatchObject({ code: "not_found" });
    const left = await t.db.selectFrom("certificate_mappings").select("hostname").where("listener_id", "=", listener.id).execute();
    expect(left.map((m) => m.hostname)).toEqual(["other.example.test"]);
  });

  it("says when the edge could not open a listener's port, until it can", async () => {
    const busy = net.createServer();
    const port = await findFreePort();
    const listener = await createListener(t.db, SYSTEM_ACTOR, { name: "busy", kind: "http", bindAddress: "127.0.0.1", port });
    await new Promise<void>((r) => busy.listen(port, "127.0.0.1", r));
    const edge = new Edge({ db: t.db, keyring, log, pollIntervalMs: 50, checkIntervalMs: 3_600_000 });
    try {
      await edge.start();
      expect((await listenerBindProblem(t.db, listener.id))?.message).toContain("is in use by another program");
      await new Promise<void>((r) => busy.close(() => r()));
      await edge.reload();
      expect(await listenerBindProblem(t.db, listener.id)).toBeNull();
      expect(edge.status().map((s) => s.id)).toContain(listener.id);
    } finally {
      await edge.stop();
      busy.close();
    }
  });
});
