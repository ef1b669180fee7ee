import crypto from "node:crypto";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_ACTOR } from "../audit";
import { createSelfSignedCertificateRecord } from "../certificates";
import { Keyring, sealingKeyFromBytes } from "../crypto/seal";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../db/testing";
import { renderMetrics } from "../metrics/scrape";
import { parseScrape, sampleOf } from "../metrics/testing";
import { findFreePort } from "../net";
import { Edge } from "./edge";
import { createListener, setMappings } from "./index";

// The edge's per-listener counters, driven by real TLS handshakes against a real edge, then flushed to
// listener_counters and read back through the /metrics scrape.

const keyring = new Keyring(sealingKeyFromBytes(crypto.randomBytes(32)));
const log = pino({ level: "silent" });

function handshake(port: number, opts: tls.ConnectionOptions): Promise<"ok" | "refused"> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...opts });
    socket.once("secureConnect", () => {
      socket.end();
      resolve("ok");
    });
    socket.once("error", () => resolve("refused"));
  });
}

function httpsStatus(port: number, servername: string): Promise<number> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: "127.0.0.1", port, servername, path: "/", rejectUnauthorized: false, agent: false, headers: { host: servername } }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode!));
      })
      .on("error", reject);
  });
}

/** A TCP connection that sends `bytes` (or nothing) and waits for the edge to close it, or closes it itself. */
function rawConnection(port: number, bytes?: string): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port }, () => {
      if (bytes) socket.write(bytes);
      else socket.end();
    });
    socket.on("error", () => {});
    socket.on("close", () => resolve());
  });
}

async function waitFor<T>(fn: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = 3000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = await fn();
    if (ok(value)) return value;
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms; last: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe.each(TEST_ENGINES)("the edge's listener counters on %s", (kind) => {
  let t: TestDatabase;
  let edge: Edge;
  let mainPort: number;
  let strictPort: number;
  let mainId: string;
  let strictId: string;

  beforeAll(async () => {
    t = await createTestDatabase(kind);
    const cert = await createSelfSignedCertificateRecord(t.db, keyring, SYSTEM_ACTOR, { name: `counted-${kind}`, domains: ["a.example.test"] });
    const deadUpstream = await findFreePort(); // nothing listens there: every proxied request is an upstream error
    mainPort = await findFreePort();
    const main = await createListener(t.db, SYSTEM_ACTOR, { name: "main https", kind: "https", bindAddress: "127.0.0.1", port: mainPort, upstreamUrl: `http://127.0.0.1:${deadUpstream}`, minTlsVersion: "TLSv1.3", fallbackPolicy: "self_signed" });
    mainId = main.id;
    await setMappings(t.db, SYSTEM_ACTOR, mainId, { mappings: [{ hostname: "a.example.test", certificateId: cert.id }] });
    strictPort = await findFreePort();
    const strict = await createListener(t.db, SYSTEM_ACTOR, { name: "strict https", kind: "https", bindAddress: "127.0.0.1", port: strictPort, upstreamUrl: `http://127.0.0.1:${deadUpstream}`, fallbackPolicy: "refuse" });
    strictId = strict.id;
    edge = new Edge({ db: t.db, keyring, log, pollIntervalMs: 50, checkIntervalMs: 3_600_000, workerId: `edge-test-${kind}`, counterFlushIntervalMs: 3_600_000 });
    await edge.start();
  });

  afterAll(async () => {
    await edge?.stop();
    await t?.destroy();
  });

  it("leaves the edge's own served-certificate checks out", async () => {
    await waitFor(() => t.db.selectFrom("listener_checks").select("status").where("listener_id", "=", mainId).execute(), (rows) => rows.length === 1);
    await new Promise((r) => setTimeout(r, 200)); // the edge's side of the check's handshake may end after the client's
    expect(edge.counters.snapshot()[mainId]).toEqual({ handshakes: 0, handshakeErrors: 0, fallbackServed: 0, requests: 0, upstreamErrors: 0 });
  });

  it("counts handshakes, failed handshakes, fallbacks, requests and upstream errors, and flushes them for /metrics", async () => {
    expect(await handshake(mainPort, { servername: "a.example.test" })).toBe("ok");
    expect(await handshake(mainPort, { servername: "unmapped.example.test" })).toBe("ok"); // the self-signed fallback
    expect(await handshake(mainPort, { servername: "a.example.test", maxVersion: "TLSv1.2" })).toBe("refused"); // below TLS 1.3
    expect(await httpsStatus(mainPort, "a.example.test")).toBe(502);
    await rawConnection(mainPort, "GET / HTTP/1.1\r\nHost: a.example.test\r\n\r\n"); // plain HTTP on the TLS port
    await rawConnection(mainPort); // a TCP health check: connects, sends nothing, leaves; not a handshake
    expect(await handshake(strictPort, { servername: "unmapped.example.test" })).toBe("refused"); // refuse policy

    const expectedMain = { handshakes: 3, handshakeErrors: 2, fallbackServed: 1, requests: 1, upstreamErrors: 1 };
    const expectedStrict = { handshakes: 0, handshakeErrors: 1, fallbackServed: 0, requests: 0, upstreamErrors: 0 };
    const live = await waitFor(() => edge.counters.snapshot(), (s) => JSON.stringify([s[mainId], s[strictId]]) === JSON.stringify([expectedMain, expectedStrict]));
    expect(live[mainId]).toEqual(expectedMain);

    await edge.flushCounters();
    const rows = await t.db.selectFrom("listener_counters").selectAll().where("worker_id", "=", `edge-test-${kind}`).execute();
    expect(rows.find((r) => r.listener_id === mainId)).toMatchObject({ handshakes: 3, handshake_errors: 2, fallback_served: 1, requests: 1, upstream_errors: 1 });
    expect(rows.find((r) => r.listener_id === strictId)).toMatchObject({ handshakes: 0, handshake_errors: 1 });

    // Another worker's row adds up with this one in the scrape.
    await t.db.insertInto("listener_counters").values({ worker_id: "another-worker", listener_id: mainId, handshakes: 100, handshake_errors: 10, fallback_served: 5, requests: 50, upstream_errors: 4, updated_at: new Date().toISOString() }).execute();
    const m = parseScrape(await renderMetrics(t.db));
    const main = { listener_id: mainId, listener_name: "main https" };
    expect(sampleOf(m, "portcullis_listener_handshakes_total", main)).toBe(103);
    expect(sampleOf(m, "portcullis_listener_handshake_errors_total", main)).toBe(12);
    expect(sampleOf(m, "portcullis_listener_fallback_served_total", main)).toBe(6);
    expect(sampleOf(m, "portcullis_listener_requests_total", main)).toBe(51);
    expect(sampleOf(m, "portcullis_listener_upstream_errors_total", main)).toBe(5);
    expect(sampleOf(m, "portcullis_listener_handshake_errors_total", { listener_id: strictId, listener_name: "strict https" })).toBe(1);
  });

  it("writes the last counts when the edge stops", async () => {
    expect(await handshake(mainPort, { servername: "a.example.test" })).toBe("ok");
    await waitFor(() => edge.counters.snapshot()[mainId].handshakes, (n) => n === 4);
    await edge.stop();
    const row = await t.db.selectFrom("listener_counters").select("handshakes").where("worker_id", "=", `edge-test-${kind}`).where("listener_id", "=", mainId).executeTakeFirstOrThrow();
    expect(row.handshakes).toBe(4);
  });
});
