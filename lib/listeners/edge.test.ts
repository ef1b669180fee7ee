import crypto from "node:crypto";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import { once } from "node:events";
import net from "node:net";
import tls from "node:tls";
import { setTimeout as sleep } from "node:timers/promises";
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
import { checkServedCertificates, fetchServedCertificate } from "./served-check";

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

function httpsGet(
  port: number,
  servername: string,
  path = "/",
  agent: https.Agent | false = false,
): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders; trailers: NodeJS.Dict<string>; fingerprint: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const req = https.get(
      { host: "127.0.0.1", port, servername, path, rejectUnauthorized: false, agent, headers: { host: servername } },
      (res) => {
        // Node reports no peer certificate for a second request on a kept-alive socket.
        const fingerprint = (res.socket as tls.TLSSocket).getPeerX509Certificate()?.fingerprint256 ?? "(kept-alive socket)";
        const socket = res.socket;
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode!, body, headers: res.headers, trailers: res.trailers, fingerprint, socket }));
      },
    );
    req.on("error", reject);
  });
}

// 8 MiB of random bytes for the streaming case: far more than any socket or stream buffer on the way holds.
const BIG_PIECE = crypto.randomBytes(64 * 1024);
const BIG_PIECES = 128;
const BIG_SHA256 = crypto.createHash("sha256").update(Buffer.concat(Array<Buffer>(BIG_PIECES).fill(BIG_PIECE))).digest("hex");

/** Writes BIG_PIECES × BIG_PIECE to a writable as fast as it drains, then ends it. */
async function writeBig(out: NodeJS.WritableStream) {
  for (let i = 0; i < BIG_PIECES; i++) if (!out.write(BIG_PIECE)) await once(out as unknown as NodeJS.EventEmitter, "drain");
  out.end();
}

/** Hashes a readable's bytes, stopping reading for pauseMs after the first chunk (a client that is slow to read). */
function digestOf(stream: NodeJS.ReadableStream, pauseMs: number): Promise<{ length: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const hash = crypto.createHash("sha256");
    let length = 0;
    let paused = false;
    stream.on("data", (d: Buffer) => {
      hash.update(d);
      length += d.length;
      if (paused) return;
      paused = true;
      stream.pause();
      setTimeout(() => stream.resume(), pauseMs);
    });
    stream.on("end", () => resolve({ length, sha256: hash.digest("hex") }));
    stream.on("error", reject);
  });
}

/** One request over a new HTTP/2 connection (ALPN h2), with the certificate and protocol it negotiated. */
function h2Request(
  port: number,
  servername: string,
  headers: http2.OutgoingHttpHeaders,
  body?: string,
  requestTrailers?: http2.OutgoingHttpHeaders,
): Promise<{ alpn: string | false | undefined; fingerprint?: string; headers: http2.IncomingHttpHeaders; body: string; trailers: http2.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port}`, { servername, rejectUnauthorized: false });
    session.on("error", reject);
    const stream = session.request({ ":authority": servername, ...headers }, { endStream: body === undefined, waitForTrailers: requestTrailers !== undefined });
    if (requestTrailers) stream.on("wantTrailers", () => stream.sendTrailers(requestTrailers));
    let responseHeaders: http2.IncomingHttpHeaders = {};
    let trailers: http2.IncomingHttpHeaders = {};
    let data = "";
    stream.on("response", (h) => (responseHeaders = h));
    stream.on("trailers", (t) => (trailers = t));
    stream.setEncoding("utf8");
    stream.on("data", (d: string) => (data += d));
    stream.on("error", reject);
    stream.on("end", () => {
      const socket = session.socket as tls.TLSSocket;
      const result = { alpn: session.alpnProtocol, fingerprint: socket.getPeerX509Certificate()?.fingerprint256, headers: responseHeaders, body: data, trailers };
      session.close();
      resolve(result);
    });
    if (body !== undefined) stream.end(body);
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

// Natively (Node's TLS stream driven directly, lib/listeners/native-tls.ts) on every engine, and once with
// tls.TLSSocket, which the edge falls back to where Node lacks what native-tls.ts needs.
const EDGE_VARIANTS = [...TEST_ENGINES.map((kind) => ({ kind, portableTls: false })), { kind: TEST_ENGINES[0], portableTls: true }];

describe.each(EDGE_VARIANTS)("the edge on $kind (tls.TLSSocket: $portableTls)", ({ kind, portableTls }) => {
  let t: TestDatabase;
  let edge: Edge;
  let upstream: http.Server;
  let upstreamPort: number;
  let upstreamConnections = 0;
  let httpsPort: number;
  let listenerId: string;
  const certs: Record<string, CertificateDetail> = {};

  beforeAll(async () => {
    t = await createTestDatabase(kind);
    upstream = http.createServer((req, res) => {
      if (req.url === "/digest") {
        const hash = crypto.createHash("sha256");
        let length = 0;
        req.on("data", (d: Buffer) => {
          hash.update(d);
          length += d.length;
        });
        req.on("end", () => res.end(JSON.stringify({ length, sha256: hash.digest("hex") })));
        return;
      }
      if (req.url === "/big") {
        // BIG_PIECES × BIG_PIECE, chunked, written as fast as the edge takes them.
        res.writeHead(200, { "content-type": "application/octet-stream" });
        let sent = 0;
        const write = () => {
          while (sent < BIG_PIECES) {
            sent++;
            if (!res.write(BIG_PIECE)) return void res.once("drain", write);
          }
          res.end();
        };
        write();
        return;
      }
      let body = "";
      req.on("data", (d) => (body += d));
      req.on("end", () => {
        if (req.url === "/hop") {
          res.writeHead(200, { Connection: "keep-alive, X-Upstream-Hop", "X-Upstream-Hop": "1", "X-End-To-End": "2" });
          res.end("hop");
          return;
        }
        if (req.url === "/early-hints") {
          res.writeEarlyHints({ link: "</style.css>; rel=preload; as=style" });
          res.end("after the hints");
          return;
        }
        if (req.url === "/trailers") {
          res.writeHead(200, { "Content-Type": "text/plain", Trailer: "x-checksum" });
          res.write("streamed body");
          res.addTrailers({ "x-checksum": "sha256-abc" });
          res.end();
          return;
        }
        res.setHeader("Content-Type", "application/json");
        res.end(JSON.stringify({ path: req.url, method: req.method, headers: req.headers, body, trailers: req.trailers }));
      });
    });
    upstream.on("connection", () => upstreamConnections++);
    upstream.on("upgrade", (req, socket) => {
      if (req.headers.upgrade !== "websocket") {
        socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n");
        socket.pipe(socket);
        return;
      }
      // A WebSocket server's side of the handshake (RFC 6455 §4.2.2), then one text frame with the request it
      // saw, then an echo of whatever comes.
      if (req.url === "/ws-deny") return socket.end("HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\ndenied");
      const accept = req.url === "/ws-bad-accept" ? "bogus" : crypto.createHash("sha1").update(`${req.headers["sec-websocket-key"]}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
      const protocol = String(req.headers["sec-websocket-protocol"] ?? "").split(",")[0].trim();
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n${protocol ? `Sec-WebSocket-Protocol: ${protocol}\r\n` : ""}\r\n`);
      const seen = Buffer.from(JSON.stringify({ path: req.url, method: req.method, headers: req.headers }));
      socket.write(Buffer.concat([Buffer.from([0x81, 126, seen.length >> 8, seen.length & 0xff]), seen]));
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
    edge = new Edge({ db: t.db, keyring, log, pollIntervalMs: 50, checkIntervalMs: 3_600_000, portableTls });
    await edge.start();
    expect(edge.nativeTls).toBe(!portableTls);
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

  it("lets a returning client resume its TLS session with its ticket, for the same name's certificate only", async () => {
    const connect = (servername: string, session?: Buffer) =>
      new Promise<{ reused: boolean; fingerprint?: string; ticket?: Buffer }>((resolve, reject) => {
        const socket = tls.connect({ host: "127.0.0.1", port: httpsPort, servername, session, rejectUnauthorized: false });
        socket.once("secureConnect", () => {
          const result = { reused: socket.isSessionReused(), fingerprint: socket.getPeerX509Certificate()?.fingerprint256 };
          if (session) {
            socket.end();
            return resolve(result);
          }
          // TLS 1.3 tickets come after the handshake; the first one is enough.
          socket.once("session", (ticket: Buffer) => {
            socket.end();
            resolve({ ...result, ticket });
          });
        });
        socket.once("error", reject);
      });
    const first = await connect("a.example.test");
    expect(first).toMatchObject({ reused: false, fingerprint: certs.exact.fingerprintSha256 });
    // Node shows no peer certificate on a resumed session: the certificate is the one the ticket was issued with.
    expect((await connect("a.example.test", first.ticket)).reused).toBe(true);
    // A ticket from one certificate's handshake does not skip the handshake of another's.
    expect(await connect("b.example.test", first.ticket)).toEqual({ reused: false, fingerprint: certs.wildcard.fingerprintSha256 });
  });

  it("serves a client that handshakes first and sends its requests later, on the same connection", async () => {
    // Natively the decrypted stream becomes a socket only with the first request (onNativeFirstRead).
    const socket = tls.connect({ host: "127.0.0.1", port: httpsPort, servername: "a.example.test", rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] });
    await once(socket, "secureConnect");
    await sleep(200);
    let received = "";
    socket.on("data", (d: Buffer) => (received += d.toString()));
    const request = (path: string) => socket.write(`GET ${path} HTTP/1.1\r\nHost: a.example.test\r\n\r\n`);
    request("/first");
    await waitFor(async () => received, (r) => r.includes('"path":"/first"'));
    request("/second");
    await waitFor(async () => received, (r) => r.includes('"path":"/second"'));
    expect(received.match(/HTTP\/1\.1 200 /g)).toHaveLength(2);
    expect(socket.destroyed).toBe(false);
    socket.destroy();
  });

  it("refuses a TLS 1.2 client that asks to renegotiate: OpenSSL alerts it and its connection ends, as with nginx", async () => {
    const socket = tls.connect({ host: "127.0.0.1", port: httpsPort, servername: "a.example.test", rejectUnauthorized: false, maxVersion: "TLSv1.2" });
    await once(socket, "secureConnect");
    expect(socket.getProtocol()).toBe("TLSv1.2");
    socket.on("error", () => {});
    const outcome = new Promise<string>((resolve) => {
      socket.once("close", () => resolve("closed"));
      setTimeout(() => resolve("still open after 2 s"), 2000);
    });
    let renegotiated = false;
    const asked = socket.renegotiate({}, (err) => {
      if (!err) renegotiated = true;
    });
    expect(asked).toBe(true);
    expect(await outcome).toBe("closed");
    expect(renegotiated).toBe(false);
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

  it("proxies to an https upstream with a self-signed certificate only where told not to verify it, and says how on the 502 page", async () => {
    const { certificatePem, privateKeyPem } = await createSelfSignedCertificate({ names: [{ type: "dns", value: "nas.example.test" }], keyType: "ecdsa-p256", validityDays: 1 });
    const secureUpstream = https.createServer({ cert: certificatePem, key: privateKeyPem }, (req, res) => res.end(`secure upstream saw ${req.url}`));
    secureUpstream.on("upgrade", (_req, socket) => {
      socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n");
      socket.pipe(socket);
    });
    const securePort = await findFreePort();
    await new Promise<void>((r) => secureUpstream.listen(securePort, "127.0.0.1", r));
    const portOf = async (id: string) => Number((await waitFor(async () => edge.status().find((s) => s.id === id), Boolean))!.address.split(":").at(-1));
    try {
      // Two listeners to one https origin: one accepts any certificate, the other (the default) checks it.
      const trusting = await createListener(t.db, SYSTEM_ACTOR, {
        name: "self-signed upstream, not verified",
        kind: "https",
        bindAddress: "127.0.0.1",
        port: await findFreePort(),
        upstreamUrl: `https://127.0.0.1:${securePort}`,
        upstreamTlsVerify: false,
        defaultCertificateId: certs.exact.id,
      });
      expect(trusting.upstreamTlsVerify).toBe(false);
      const checking = await createListener(t.db, SYSTEM_ACTOR, {
        name: "self-signed upstream, verified",
        kind: "https",
        bindAddress: "127.0.0.1",
        port: await findFreePort(),
        upstreamUrl: `https://127.0.0.1:${securePort}`,
        defaultCertificateId: certs.exact.id,
      });
      expect(checking.upstreamTlsVerify).toBe(true);
      const [trustingPort, checkingPort] = [await portOf(trusting.id), await portOf(checking.id)];

      const ok = await httpsGet(trustingPort, "a.example.test", "/nas");
      expect(ok.status).toBe(200);
      expect(ok.body).toBe("secure upstream saw /nas");
      // The trusting listener's connection is open and idle now; the checking one must not borrow it.
      const refused = await httpsGet(checkingPort, "a.example.test", "/nas");
      expect(refused.status).toBe(502);
      expect(refused.body).toContain("its TLS certificate is self-signed (DEPTH_ZERO_SELF_SIGNED_CERT)");
      expect(refused.body).toContain("set the listener&#39;s &#34;Upstream certificate&#34; to &#34;Accept any certificate&#34;");

      // Upgrades take their own connection to the upstream: the same rule.
      const upgrade = async (port: number) => {
        const socket = tls.connect({ host: "127.0.0.1", port, servername: "a.example.test", rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] });
        await once(socket, "secureConnect");
        socket.write("GET /ws HTTP/1.1\r\nHost: a.example.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
        let received = "";
        socket.on("data", (d) => {
          received += d;
          if (received.startsWith("HTTP/1.1 101") && received.includes("\r\n\r\n") && !received.includes("ping")) socket.write("ping");
        });
        socket.on("error", () => {});
        await waitFor(async () => received, (r) => r.includes("ping") || socket.destroyed || r.startsWith("HTTP/1.1 502"));
        socket.destroy();
        return received;
      };
      expect(await upgrade(trustingPort)).toMatch(/^HTTP\/1.1 101[^]*ping$/);
      expect(await upgrade(checkingPort)).not.toContain("101");

      // Turning the check off applies without a restart.
      const { name, kind, bindAddress, port, upstreamUrl, defaultCertificateId } = checking;
      await updateListener(t.db, SYSTEM_ACTOR, checking.id, { name, kind, bindAddress, port, upstreamUrl, defaultCertificateId, upstreamTlsVerify: "false" });
      const now = await waitFor(() => httpsGet(checkingPort, "a.example.test", "/later"), (r) => r.status === 200);
      expect(now.body).toBe("secure upstream saw /later");
    } finally {
      secureUpstream.closeAllConnections();
      secureUpstream.close();
    }
  });

  it("passes WebSocket-style upgrades through for HTTP/1.1 clients, with or without ALPN", async () => {
    for (const ALPNProtocols of [undefined, ["http/1.1"]]) {
      const socket = tls.connect({ host: "127.0.0.1", port: httpsPort, servername: "a.example.test", rejectUnauthorized: false, ALPNProtocols });
      await new Promise((r) => socket.once("secureConnect", r));
      expect(socket.alpnProtocol).toBe(ALPNProtocols ? "http/1.1" : false);
      socket.write("GET /ws HTTP/1.1\r\nHost: a.example.test\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n");
      let received = "";
      socket.on("data", (d) => {
        received += d;
        if (received.includes("\r\n\r\n") && !received.includes("ping")) socket.write("ping");
      });
      await waitFor(async () => received, (r) => r.includes("ping"));
      expect(received).toMatch(/^HTTP\/1.1 101/);
      socket.destroy();
    }
  });

  it("carries WebSockets over HTTP/2 (RFC 8441) to the upstream as HTTP/1.1 upgrades", async () => {
    const session = http2.connect(`https://127.0.0.1:${httpsPort}`, { servername: "a.example.test", rejectUnauthorized: false });
    session.on("error", () => {});
    const settings = await new Promise<http2.Settings>((r) => session.once("remoteSettings", r));
    expect(settings.enableConnectProtocol).toBe(true);
    const connect = (path: string, extra: http2.OutgoingHttpHeaders = {}) =>
      session.request({ ":method": "CONNECT", ":protocol": "websocket", ":scheme": "https", ":path": path, ":authority": "a.example.test", "sec-websocket-version": "13", ...extra }, { endStream: false });
    const responseOf = (stream: http2.ClientHttp2Stream) => new Promise<http2.IncomingHttpHeaders>((resolve, reject) => stream.once("response", resolve).once("error", reject));

    const stream = connect("/chat?room=1", { "sec-websocket-protocol": "chat.v2, chat.v1", origin: "https://a.example.test", "x-forwarded-for": "203.0.113.7" });
    const response = await responseOf(stream);
    expect(response[":status"]).toBe(200);
    expect(response["sec-websocket-protocol"]).toBe("chat.v2");
    expect(response["sec-websocket-accept"]).toBeUndefined(); // an HTTP/2 answer carries no accept key
    let received = Buffer.alloc(0);
    stream.on("data", (d: Buffer) => (received = Buffer.concat([received, d])));
    const first = await waitFor(async () => received, (r) => r.length >= 4 && r.length >= 4 + r.readUInt16BE(2));
    expect(first[0]).toBe(0x81);
    const seen = JSON.parse(first.subarray(4, 4 + first.readUInt16BE(2)).toString()) as { path: string; method: string; headers: Record<string, string> };
    expect(seen).toMatchObject({ path: "/chat?room=1", method: "GET" });
    expect(seen.headers).toMatchObject({
      host: "a.example.test",
      upgrade: "websocket",
      connection: "Upgrade",
      "sec-websocket-version": "13",
      "sec-websocket-protocol": "chat.v2, chat.v1",
      origin: "https://a.example.test",
      "x-forwarded-proto": "https",
      "x-forwarded-host": "a.example.test",
      "x-forwarded-for": "203.0.113.7, 127.0.0.1",
    });
    expect(seen.headers["sec-websocket-key"]).toMatch(/^[A-Za-z0-9+/]{22}==$/);
    // Frames go both ways, byte for byte: a masked client text frame "ping" comes back from the echo.
    const mask = crypto.randomBytes(4);
    const frame = Buffer.concat([Buffer.from([0x81, 0x80 | 4]), mask, Buffer.from("ping").map((b, i) => b ^ mask[i % 4])]);
    received = Buffer.alloc(0);
    stream.write(frame);
    await waitFor(async () => received, (r) => r.equals(frame));

    // The upstream's refusal reaches the client as it is; a wrong accept key is the upstream's fault (502).
    const denied = connect("/ws-deny");
    expect((await responseOf(denied))[":status"]).toBe(403);
    const badAccept = connect("/ws-bad-accept");
    expect((await responseOf(badAccept))[":status"]).toBe(502);
    // Only WebSockets: a plain CONNECT is refused, and other protocols are not implemented.
    const plain = session.request({ ":method": "CONNECT", ":authority": "example.org:443" }, { endStream: false });
    expect((await responseOf(plain))[":status"]).toBe(405);
    const other = connect("/wt", { ":protocol": "webtransport" });
    expect((await responseOf(other))[":status"]).toBe(501);
    session.destroy();
  });

  it("forwards HTTP/1.1 bodies, their trailers and end-to-end headers; hop-by-hop ones, and those Connection names, stay on this hop", async () => {
    const socket = tls.connect({ host: "127.0.0.1", port: httpsPort, servername: "a.example.test", rejectUnauthorized: false });
    await new Promise((r) => socket.once("secureConnect", r));
    socket.write(
      "POST /form HTTP/1.1\r\nHost: a.example.test\r\nConnection: keep-alive, X-Hop-Secret\r\nX-Hop-Secret: 1\r\nKeep-Alive: timeout=5\r\n" +
        "TE: trailers\r\nX-Forwarded-For: 198.51.100.1\r\nX-Forwarded-For: 198.51.100.2\r\nX-Custom: kept\r\nTransfer-Encoding: chunked\r\n\r\n" +
        "5\r\nhello\r\n6\r\n world\r\n0\r\nX-Checksum: sha256-h1\r\nKeep-Alive: timeout=1\r\n\r\n",
    );
    let received = "";
    socket.on("data", (d) => (received += d));
    await waitFor(async () => received, (r) => r.includes("\r\n\r\n") && r.trimEnd().endsWith("}"));
    socket.destroy();
    const seen = JSON.parse(received.slice(received.indexOf("{"))) as { method: string; body: string; headers: Record<string, string>; trailers: Record<string, string> };
    expect(seen).toMatchObject({ method: "POST", body: "hello world" });
    expect(seen.trailers).toEqual({ "x-checksum": "sha256-h1" });
    expect(seen.headers).toMatchObject({ host: "a.example.test", "x-custom": "kept", "x-forwarded-for": "198.51.100.1, 198.51.100.2, 127.0.0.1" });
    for (const name of ["x-hop-secret", "keep-alive", "te"]) expect(seen.headers[name], name).toBeUndefined();
  });

  it("streams large bodies both ways at the pace of the slower side, for HTTP/1.1 and HTTP/2 clients", async () => {
    const expected = { length: BIG_PIECES * BIG_PIECE.length, sha256: BIG_SHA256 };
    const h1 = (method: string, path: string, upload: boolean) =>
      new Promise<http.IncomingMessage>((resolve, reject) => {
        const req = https.request({ host: "127.0.0.1", port: httpsPort, servername: "a.example.test", method, path, rejectUnauthorized: false, agent: false, headers: { host: "a.example.test" } }, resolve);
        req.on("error", reject);
        if (upload) void writeBig(req);
        else req.end();
      });
    // An upload with no length (chunked all the way), and a download read slowly by the client.
    const uploaded = await h1("POST", "/digest", true);
    let answer = "";
    for await (const d of uploaded) answer += d;
    expect(JSON.parse(answer)).toEqual(expected);
    expect(await digestOf(await h1("GET", "/big", false), 300)).toEqual(expected);

    const session = http2.connect(`https://127.0.0.1:${httpsPort}`, { servername: "a.example.test", rejectUnauthorized: false });
    try {
      const up = session.request({ ":method": "POST", ":path": "/digest", ":authority": "a.example.test" });
      void writeBig(up);
      let h2Answer = "";
      for await (const d of up) h2Answer += d;
      expect(JSON.parse(h2Answer)).toEqual(expected);
      expect(await digestOf(session.request({ ":path": "/big", ":authority": "a.example.test" }), 300)).toEqual(expected);
    } finally {
      session.close();
    }
  });

  it("negotiates HTTP/2 with clients that offer it, and HTTP/1.1 with the rest", async () => {
    expect((await handshake(httpsPort, { servername: "a.example.test", ALPNProtocols: ["h2", "http/1.1"] })).alpn).toBe("h2");
    expect((await handshake(httpsPort, { servername: "a.example.test", ALPNProtocols: ["h2"] })).alpn).toBe("h2");
    expect((await handshake(httpsPort, { servername: "a.example.test", ALPNProtocols: ["http/1.1"] })).alpn).toBe("http/1.1");
    expect((await handshake(httpsPort, { servername: "a.example.test" })).alpn).toBe(false);
    // Each then speaks what it negotiated: HTTP/1.1 without ALPN (above) and with it.
    const agent = new https.Agent({ ALPNProtocols: ["http/1.1"], rejectUnauthorized: false });
    const res = await httpsGet(httpsPort, "a.example.test", "/h1", agent);
    expect(res.status).toBe(200);
    expect((res.socket as tls.TLSSocket).alpnProtocol).toBe("http/1.1");
    agent.destroy();
  });

  it("proxies HTTP/2 requests with the SNI name's certificate, the body, and X-Forwarded headers", async () => {
    const res = await h2Request(
      httpsPort,
      "a.example.test",
      { ":method": "POST", ":path": "/h2?x=1", "content-type": "text/plain", "x-forwarded-for": "203.0.113.9", "x-forwarded-host": "spoofed.example" },
      "hello over h2",
      { "x-checksum": "sha256-h2" },
    );
    expect(res.alpn).toBe("h2");
    expect(res.fingerprint).toBe(certs.exact.fingerprintSha256);
    expect(res.headers[":status"]).toBe(200);
    expect(res.headers["content-type"]).toBe("application/json");
    const seen = JSON.parse(res.body) as { path: string; method: string; body: string; headers: Record<string, string>; trailers: Record<string, string> };
    expect(seen).toMatchObject({ path: "/h2?x=1", method: "POST", body: "hello over h2", trailers: { "x-checksum": "sha256-h2" } });
    expect(seen.headers).toMatchObject({
      host: "a.example.test",
      "content-type": "text/plain",
      "x-forwarded-proto": "https",
      "x-forwarded-host": "a.example.test",
      "x-forwarded-for": "203.0.113.9, 127.0.0.1",
    });
    expect(Object.keys(seen.headers).filter((h) => h.startsWith(":"))).toEqual([]);

    // A GET ends its stream with the headers: the upstream gets no body and no chunked encoding.
    const get = await h2Request(httpsPort, "b.example.test", { ":path": "/get" });
    expect(get.fingerprint).toBe(certs.wildcard.fingerprintSha256);
    const seenGet = JSON.parse(get.body) as { method: string; body: string; headers: Record<string, string> };
    expect(seenGet).toMatchObject({ method: "GET", body: "", headers: { host: "b.example.test", "x-forwarded-host": "b.example.test" } });
    expect(seenGet.headers["transfer-encoding"]).toBeUndefined();
  });

  it("passes the upstream's trailers to HTTP/2 and HTTP/1.1 clients", async () => {
    const h2 = await h2Request(httpsPort, "a.example.test", { ":path": "/trailers" });
    expect(h2.headers[":status"]).toBe(200);
    expect(h2.body).toBe("streamed body");
    expect(h2.trailers["x-checksum"]).toBe("sha256-abc");
    const h1 = await httpsGet(httpsPort, "a.example.test", "/trailers");
    expect(h1.body).toBe("streamed body");
    expect(h1.headers.trailer).toBe("x-checksum");
    expect(h1.trailers["x-checksum"]).toBe("sha256-abc");
  });

  it("drops the upstream's connection-specific response headers, for HTTP/1.1 and HTTP/2 clients", async () => {
    const h1 = await httpsGet(httpsPort, "a.example.test", "/hop");
    expect(h1.headers["x-end-to-end"]).toBe("2");
    expect(h1.headers["x-upstream-hop"]).toBeUndefined();
    // The edge's own keep-alive towards the client, not the upstream's (Node's 5 s) towards the edge.
    expect(h1.headers["keep-alive"]).toBeUndefined();
    const h2 = await h2Request(httpsPort, "a.example.test", { ":path": "/hop" });
    expect(h2.headers[":status"]).toBe(200);
    expect(h2.headers["x-end-to-end"]).toBe("2");
    expect(h2.headers["x-upstream-hop"]).toBeUndefined();
  });

  it("passes 103 Early Hints on to HTTP/1.1 and HTTP/2 clients, then the final response", async () => {
    const hints = await new Promise<{ status: number; link: unknown; final: number; body: string }>((resolve, reject) => {
      const req = https.get({ host: "127.0.0.1", port: httpsPort, servername: "a.example.test", path: "/early-hints", rejectUnauthorized: false, agent: false, headers: { host: "a.example.test" } });
      let informational = { status: 0, link: undefined as unknown };
      req.on("information", (info) => (informational = { status: info.statusCode, link: info.headers.link }));
      req.on("response", (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ ...informational, final: res.statusCode!, body }));
      });
      req.on("error", reject);
    });
    expect(hints).toEqual({ status: 103, link: "</style.css>; rel=preload; as=style", final: 200, body: "after the hints" });

    const session = http2.connect(`https://127.0.0.1:${httpsPort}`, { servername: "a.example.test", rejectUnauthorized: false });
    const stream = session.request({ ":path": "/early-hints", ":authority": "a.example.test" });
    const early: http2.IncomingHttpHeaders[] = [];
    stream.on("headers", (h) => early.push(h));
    const final = await new Promise<http2.IncomingHttpHeaders>((r) => stream.once("response", r));
    let body = "";
    stream.setEncoding("utf8");
    stream.on("data", (d: string) => (body += d));
    await new Promise((r) => stream.on("end", r));
    session.close();
    expect(early.map((h) => [h[":status"], h.link])).toEqual([[103, "</style.css>; rel=preload; as=style"]]);
    expect(final[":status"]).toBe(200);
    expect(body).toBe("after the hints");
  });

  it("lets no control character through to the upstream's request head from an HTTP/2 client", async () => {
    // What the upstream client relies on instead of checking each value again: nghttp2 drops a field whose value
    // HTTP/1.1 could not carry, and resets a stream whose path has one.
    const res = await h2Request(httpsPort, "a.example.test", { ":path": "/odd", "x-odd": "a\u0001b", "x-fine": "ok" });
    expect(res.headers[":status"]).toBe(200);
    const seen = JSON.parse(res.body) as { path: string; headers: Record<string, string> };
    expect(seen.path).toBe("/odd");
    expect(seen.headers["x-fine"]).toBe("ok");
    expect(seen.headers["x-odd"]).toBeUndefined();
    await expect(h2Request(httpsPort, "a.example.test", { ":path": "/a\u0001b" })).rejects.toThrow(/NGHTTP2_PROTOCOL_ERROR/);
  });

  it("answers 502 over HTTP/2 when the upstream is down", async () => {
    const down = await findFreePort();
    const listener = await createListener(t.db, SYSTEM_ACTOR, { name: "down h2", kind: "https", bindAddress: "127.0.0.1", port: await findFreePort(), upstreamUrl: `http://127.0.0.1:${down}`, defaultCertificateId: certs.exact.id });
    const running = await waitFor(async () => edge.status().find((s) => s.id === listener.id), Boolean);
    const res = await h2Request(Number(running!.address.split(":").at(-1)), "a.example.test", { ":path": "/" });
    expect(res.alpn).toBe("h2");
    expect(res.headers[":status"]).toBe(502);
    expect(res.headers["content-type"]).toBe("text/html; charset=utf-8");
    expect(res.body).toContain("could not reach the service");
    expect(res.body).toContain("connection was refused");
  });

  it("keeps connections to the upstream alive across client connections and protocols", async () => {
    await httpsGet(httpsPort, "a.example.test", "/warm");
    const before = upstreamConnections;
    for (let i = 0; i < 5; i++) {
      expect((await httpsGet(httpsPort, "a.example.test", `/h1-${i}`)).status).toBe(200);
      expect((await h2Request(httpsPort, "a.example.test", { ":path": `/h2-${i}` })).headers[":status"]).toBe(200);
    }
    // Ten requests on ten client connections, one after another: one upstream connection serves them all.
    expect(upstreamConnections - before).toBe(0);
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
      // Serving as mapped is an event too, when it is news (first seen, or over a mismatch): an open listener
      // page is refreshed by it, and the timeline says the mismatch is over. A check that finds no change adds none.
      await checkServedCertificates(t.db, [row], { everything: new Set([listener.id]) });
      const passed = (await listEvents(t.db, {})).filter((e) => e.type === "tls.served_check_passed" && e.listenerId === listener.id);
      expect(passed.map((e) => e.severity)).toEqual(["info", "info"]);
      expect(passed[0].message).toContain("a.example.test");
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

  it("writes only the mappings that change, and bumps the revision only when one does", async () => {
    const listener = await createListener(t.db, SYSTEM_ACTOR, { name: "diffed", kind: "https", bindAddress: "127.0.0.1", port: await findFreePort(), upstreamUrl: `http://127.0.0.1:${upstreamPort}` });
    const rows = () => t.db.selectFrom("certificate_mappings").select(["id", "hostname", "certificate_id"]).where("listener_id", "=", listener.id).orderBy("hostname").execute();
    const revision = () => t.db.selectFrom("settings").select("value").where("key", "=", "edge_revision").executeTakeFirstOrThrow();
    await setMappings(t.db, SYSTEM_ACTOR, listener.id, {
      mappings: [
        { hostname: "keep.example.test", certificateId: certs.wildcard.id },
        { hostname: "move.example.test", certificateId: certs.wildcard.id },
        { hostname: "drop.example.test", certificateId: certs.wildcard.id },
      ],
    });
    const before = new Map((await rows()).map((r) => [r.hostname, r]));
    const revisionBefore = await revision();
    await setMappings(t.db, SYSTEM_ACTOR, listener.id, {
      mappings: [
        { hostname: "keep.example.test", certificateId: certs.wildcard.id },
        { hostname: "move.example.test", certificateId: certs.exact.id },
        { hostname: "new.example.test", certificateId: certs.exact.id },
      ],
    });
    const after = await rows();
    expect(after.map((r) => [r.hostname, r.certificate_id])).toEqual([
      ["keep.example.test", certs.wildcard.id],
      ["move.example.test", certs.exact.id],
      ["new.example.test", certs.exact.id],
    ]);
    // The unchanged row and the re-pointed one are the same rows as before; only the new name is a new row.
    expect(after.find((r) => r.hostname === "keep.example.test")!.id).toBe(before.get("keep.example.test")!.id);
    expect(after.find((r) => r.hostname === "move.example.test")!.id).toBe(before.get("move.example.test")!.id);
    expect([...before.values()].map((r) => r.id)).not.toContain(after.find((r) => r.hostname === "new.example.test")!.id);
    const revisionChanged = await revision();
    expect(revisionChanged.value).not.toBe(revisionBefore.value);
    // The same list again changes nothing, so the edges are not asked to reload.
    await setMappings(t.db, SYSTEM_ACTOR, listener.id, { mappings: after.map((r) => ({ hostname: r.hostname, certificateId: r.certificate_id })) });
    expect((await revision()).value).toBe(revisionChanged.value);
    expect((await rows()).map((r) => r.id)).toEqual(after.map((r) => r.id));
  });

  it.runIf(kind === "postgres")("hears a change by NOTIFY on PostgreSQL and serves it within a second, with no poll to find it", async () => {
    // The edge of the earlier tests is stopped (the served-check test did); this one polls once an hour.
    await edge.stop();
    const notified = new Edge({ db: t.db, keyring, log, pollIntervalMs: 3_600_000, checkIntervalMs: 3_600_000 });
    try {
      await notified.start();
      await waitFor(async () => notified.notified(), Boolean);
      const listener = await createListener(t.db, SYSTEM_ACTOR, { name: "notified", kind: "https", bindAddress: "127.0.0.1", port: await findFreePort(), upstreamUrl: `http://127.0.0.1:${upstreamPort}` });
      const running = await waitFor(async () => notified.status().find((s) => s.id === listener.id), Boolean, 1000);
      const port = Number(running!.address.split(":").at(-1));
      for (const cert of [certs.exact, certs.other, certs.exact]) {
        const changedAt = Date.now();
        await setMappings(t.db, SYSTEM_ACTOR, listener.id, { mappings: [{ hostname: "a.example.test", certificateId: cert.id }] });
        await waitFor(() => handshake(port, { servername: "a.example.test" }), (h) => (h as { fingerprint?: string }).fingerprint === cert.fingerprintSha256, 5000);
        expect(Date.now() - changedAt).toBeLessThanOrEqual(1000);
      }
    } finally {
      await notified.stop();
    }
  });
});

describe.each([{ portableTls: false }, { portableTls: true }])("the edge's time limits (tls.TLSSocket: $portableTls)", ({ portableTls }) => {
  let t: TestDatabase;
  let edge: Edge;
  let upstream: http.Server;
  let port: number;

  beforeAll(async () => {
    t = await createTestDatabase("sqlite");
    upstream = http.createServer((_req, res) => res.end("ok"));
    const upstreamPort = await findFreePort();
    await new Promise<void>((r) => upstream.listen(upstreamPort, "127.0.0.1", r));
    const cert = await createSelfSignedCertificateRecord(t.db, keyring, SYSTEM_ACTOR, { name: "limits", domains: ["limits.example.test"] });
    port = await findFreePort();
    await createListener(t.db, SYSTEM_ACTOR, { name: "limits", kind: "https", bindAddress: "127.0.0.1", port, upstreamUrl: `http://127.0.0.1:${upstreamPort}`, defaultCertificateId: cert.id });
    edge = new Edge({ db: t.db, keyring, log, pollIntervalMs: 50, checkIntervalMs: 3_600_000, portableTls, handshakeTimeoutMs: 300, idleTimeoutMs: 1_000 });
    await edge.start();
  });

  afterAll(async () => {
    await edge?.stop();
    upstream?.close();
    await t?.destroy();
  });

  /** Milliseconds from now until the edge closes the connection. */
  async function closedAfter(socket: net.Socket): Promise<number> {
    const start = Date.now();
    socket.on("error", () => {});
    socket.resume();
    if (!socket.destroyed) await once(socket, "close");
    return Date.now() - start;
  }

  it("drops a client that sends nothing, or half a ClientHello, when the handshake time is up", async () => {
    const silent = net.connect(port, "127.0.0.1");
    await once(silent, "connect");
    const half = net.connect(port, "127.0.0.1");
    await once(half, "connect");
    // A handshake record that announces 512 bytes and brings 4.
    half.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc]));
    const [a, b] = await Promise.all([closedAfter(silent), closedAfter(half)]);
    for (const ms of [a, b]) {
      expect(ms).toBeGreaterThanOrEqual(250);
      expect(ms).toBeLessThan(900);
    }
  });

  it.skipIf(portableTls)("closes a secured connection that sends no request within the idle time, and serves one that does", async () => {
    const idle = tls.connect({ host: "127.0.0.1", port, servername: "limits.example.test", rejectUnauthorized: false });
    await once(idle, "secureConnect");
    const busy = tls.connect({ host: "127.0.0.1", port, servername: "limits.example.test", rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] });
    await once(busy, "secureConnect");
    let received = "";
    busy.on("data", (d: Buffer) => (received += d.toString()));
    await sleep(600); // past the handshake time: a secured connection is not stalled
    busy.write("GET / HTTP/1.1\r\nHost: limits.example.test\r\n\r\n");
    const idleFor = await closedAfter(idle);
    expect(idleFor + 600).toBeGreaterThanOrEqual(950);
    expect(idleFor + 600).toBeLessThan(2500);
    expect(received).toMatch(/^HTTP\/1\.1 200 [^]*\r\n\r\nok$/);
    // Then the keep-alive time, from the response on.
    expect(await closedAfter(busy)).toBeLessThan(2000);
  });

  it("survives mangled ClientHellos and garbage after a handshake, and still serves", async () => {
    // A real ClientHello, caught by a plain TCP server.
    const catcher = net.createServer();
    await new Promise<void>((r) => catcher.listen(0, "127.0.0.1", r));
    const caught = new Promise<Buffer>((resolve) => catcher.once("connection", (socket: net.Socket) => socket.once("data", (d: Buffer) => (socket.destroy(), resolve(d)))));
    const probe = tls.connect({ host: "127.0.0.1", port: (catcher.address() as net.AddressInfo).port, servername: "limits.example.test", ALPNProtocols: ["h2", "http/1.1"] });
    probe.on("error", () => {});
    const hello = await caught;
    probe.destroy();
    catcher.close();
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const send = (bytes: Buffer) =>
      new Promise<void>((resolve) => {
        const socket = net.connect(port, "127.0.0.1", () => socket.end(bytes));
        socket.on("error", () => resolve());
        socket.on("close", () => resolve());
        socket.resume();
        setTimeout(() => socket.destroy(), 1000);
      });
    for (let batch = 0; batch < 10; batch++) {
      await Promise.all(
        Array.from({ length: 30 }, () => {
          const bytes = Buffer.from(hello);
          for (let i = 0, n = 1 + Math.floor(random() * 4); i < n; i++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
          return send(random() < 0.2 ? bytes.subarray(0, Math.floor(random() * bytes.length)) : bytes);
        }),
      );
    }
    // Records that do not decrypt, after a completed handshake.
    for (let i = 0; i < 5; i++) {
      const raw = net.connect(port, "127.0.0.1");
      raw.on("error", () => {});
      const socket = tls.connect({ socket: raw, servername: "limits.example.test", rejectUnauthorized: false });
      socket.on("error", () => {});
      await once(socket, "secureConnect");
      const closed = once(raw, "close");
      raw.write(Buffer.concat([Buffer.from([0x17, 0x03, 0x03, 0x00, 0x20]), crypto.randomBytes(32)]));
      await closed;
    }
    const res = await httpsGet(port, "limits.example.test");
    expect(res.status).toBe(200);
    await waitFor(async () => edge.status()[0].connections, (n) => n === 0);
  });

  it("lets go of every connection once it has closed, in each of its stages", async () => {
    const open = () => edge.status()[0].connections;
    await waitFor(async () => open(), (n) => n === 0);
    const clients: net.Socket[] = [];
    const connect = async (opts: tls.ConnectionOptions) => {
      const socket = tls.connect({ host: "127.0.0.1", port, servername: "limits.example.test", rejectUnauthorized: false, ...opts });
      socket.on("error", () => {});
      clients.push(socket);
      await once(socket, "secureConnect");
      return socket;
    };
    // Handshaken only; then a request over HTTP/1.1 and one over HTTP/2; then one that is still in its handshake.
    for (let i = 0; i < 20; i++) await connect({});
    const h1 = await connect({ ALPNProtocols: ["http/1.1"] });
    h1.write("GET / HTTP/1.1\r\nHost: limits.example.test\r\n\r\n");
    await once(h1, "data");
    const h2 = http2.connect(`https://127.0.0.1:${port}`, { servername: "limits.example.test", rejectUnauthorized: false });
    h2.on("error", () => {});
    const stream = h2.request({ ":path": "/" });
    stream.resume();
    await once(stream, "end");
    const raw = net.connect(port, "127.0.0.1");
    raw.on("error", () => {});
    await once(raw, "connect");
    clients.push(raw);
    await waitFor(async () => open(), (n) => n === 23);
    for (const c of clients) c.destroy();
    h2.destroy();
    await waitFor(async () => open(), (n) => n === 0);
  });
});

describe.each(TEST_ENGINES)("the served-certificate check on %s", (kind) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it("checks every mapping of a new listener, then what changed, then the longest-unchecked slice of the rest", async () => {
    const cert = (name: string) => createSelfSignedCertificateRecord(t.db, keyring, SYSTEM_ACTOR, { name: `${name}-${kind}`, domains: [`${name}.example.test`] });
    const [a, b, c, b2] = [await cert("a"), await cert("b"), await cert("c"), await cert("b2")];
    const port = await findFreePort();
    const listener = await createListener(t.db, SYSTEM_ACTOR, { name: "checked", kind: "https", bindAddress: "127.0.0.1", port, upstreamUrl: "http://127.0.0.1:9" });
    const mapped = { "a.example.test": a, "b.example.test": b, "c.example.test": c };
    await setMappings(t.db, SYSTEM_ACTOR, listener.id, { mappings: Object.entries(mapped).map(([hostname, x]) => ({ hostname, certificateId: x.id })) });
    const edge = new Edge({ db: t.db, keyring, log, pollIntervalMs: 3_600_000, checkIntervalMs: 3_600_000 });
    const checks = async () => new Map((await listChecks(t.db, listener.id)).map((x) => [x.hostname, x]));
    try {
      // Just opened: every mapping is checked.
      await edge.start();
      const first = await waitFor(checks, (m) => m.size === 3 && [...m.values()].every((x) => x.status === "serving"));
      const row = await t.db.selectFrom("listeners").selectAll().where("id", "=", listener.id).executeTakeFirstOrThrow();

      // Nothing changed: a run without rotation checks nothing.
      await new Promise((r) => setTimeout(r, 5));
      await checkServedCertificates(t.db, [row]);
      expect([...(await checks()).values()].map((x) => x.checked_at)).toEqual([...first.values()].map((x) => x.checked_at));

      // b's certificate changes in the database (this edge does not reload): only b is checked, and it mismatches.
      await t.db.updateTable("certificate_mappings").set({ certificate_id: b2.id }).where("listener_id", "=", listener.id).where("hostname", "=", "b.example.test").execute();
      await new Promise((r) => setTimeout(r, 5));
      await checkServedCertificates(t.db, [row]);
      const second = await checks();
      expect(second.get("b.example.test")).toMatchObject({ status: "mismatch", expected_fingerprint: b2.fingerprintSha256, served_fingerprint: b.fingerprintSha256 });
      expect(second.get("a.example.test")!.checked_at).toBe(first.get("a.example.test")!.checked_at);
      expect(second.get("c.example.test")!.checked_at).toBe(first.get("c.example.test")!.checked_at);

      // A rotation of one: b again (it did not serve right), and of a and c the one checked longest ago.
      await t.db.updateTable("listener_checks").set({ checked_at: "2000-01-01T00:00:00.000Z" }).where("listener_id", "=", listener.id).where("hostname", "=", "c.example.test").execute();
      await new Promise((r) => setTimeout(r, 5));
      await checkServedCertificates(t.db, [row], { rotation: () => 1 });
      const third = await checks();
      expect(third.get("b.example.test")!.checked_at > second.get("b.example.test")!.checked_at).toBe(true);
      expect(third.get("c.example.test")!.checked_at > first.get("a.example.test")!.checked_at).toBe(true);
      expect(third.get("a.example.test")!.checked_at).toBe(first.get("a.example.test")!.checked_at);

      // Everything, when asked.
      await new Promise((r) => setTimeout(r, 5));
      await checkServedCertificates(t.db, [row], { everything: new Set([listener.id]) });
      const fourth = await checks();
      for (const [hostname, x] of fourth) expect(x.checked_at > third.get(hostname)!.checked_at, hostname).toBe(true);
    } finally {
      await edge.stop();
    }
  });

  it("leaves a change the edge has not loaded yet to the check after its reload, instead of reporting it unserved", async () => {
    const cert = await createSelfSignedCertificateRecord(t.db, keyring, SYSTEM_ACTOR, { name: `late-${kind}`, domains: ["late.example.test"] });
    const port = await findFreePort();
    const listener = await createListener(t.db, SYSTEM_ACTOR, { name: "late", kind: "https", bindAddress: "127.0.0.1", port, upstreamUrl: "http://127.0.0.1:9", fallbackPolicy: "refuse" });
    // No polling: this edge reloads when told to (on PostgreSQL a NOTIFY may tell it first, which is fine).
    const edge = new Edge({ db: t.db, keyring, log, pollIntervalMs: 3_600_000, checkIntervalMs: 3_600_000 });
    const runCheck = () => (edge as unknown as { runServedCheck: (r: { rotate?: boolean }) => Promise<void> }).runServedCheck({ rotate: true });
    try {
      await edge.start();
      await setMappings(t.db, SYSTEM_ACTOR, listener.id, { mappings: [{ hostname: "late.example.test", certificateId: cert.id }] });
      // The periodic check comes before the edge has loaded the mapping: it would find the handshake refused.
      await runCheck();
      expect((await listChecks(t.db, listener.id)).filter((c) => c.status !== "serving")).toEqual([]);
      expect((await listEvents(t.db, {})).filter((e) => e.listenerId === listener.id && e.severity !== "info")).toEqual([]);
      await edge.reload();
      const checked = await waitFor(() => listChecks(t.db, listener.id), (c) => c.length === 1);
      expect(checked[0]).toMatchObject({ hostname: "late.example.test", status: "serving", served_fingerprint: cert.fingerprintSha256 });
    } finally {
      await edge.stop();
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
      [{ name: "x", kind: "https", port: 1, upstreamUrl: "https://127.0.0.1:1", upstreamTlsVerify: "maybe" }, "upstreamTlsVerify", /true \(check an https upstream's certificate\) or false/],
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
