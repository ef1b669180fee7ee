import { spawn } from "node:child_process";
import crypto from "node:crypto";
import http from "node:http";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pebbleAvailable, startPebble, type Pebble } from "../../tests/support/pebble";
import { SYSTEM_ACTOR } from "../audit";
import { getCertificate } from "../certificates";
import { Keyring, sealingKeyFromBytes } from "../crypto/seal";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../db/testing";
import { listEvents } from "../events";
import { Edge } from "../listeners/edge";
import { createListener } from "../listeners/index";
import { listenOnLoopback } from "../net";
import { createAccount } from "./accounts";
import { createAcmeCertificate } from "./certificates";
import { configureAcmeTransport } from "./client";
import { AcmeEngine, type EngineStep } from "./engine";

// `kill -9` of a worker at every step of an order, then a new worker: the certificate ends active
// (or failed with a reason), never stuck in "requesting", with exactly one version.

const sealKey = crypto.randomBytes(32);
const keyring = new Keyring(sealingKeyFromBytes(sealKey));
const log = pino({ level: "silent" });
const STEPS: EngineStep[] = ["claimed", "order_created", "challenge_presented", "challenge_valid", "finalizing", "finalized", "stored"];
const LEASE_MS = 1500;
const root = path.resolve(import.meta.dirname, "../..");

function runCrashingWorker(t: TestDatabase, pebble: Pebble, step: EngineStep): Promise<NodeJS.Signals | number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "tests/support/engine-process.ts"], {
      cwd: root,
      env: {
        ...process.env,
        PORTCULLIS_TEST_DB_KIND: t.kind,
        PORTCULLIS_TEST_DB_URL: t.url,
        PORTCULLIS_TEST_SEAL_KEY: sealKey.toString("hex"),
        PORTCULLIS_TEST_CRASH_AT: step,
        PORTCULLIS_TEST_LEASE_MS: String(LEASE_MS),
        PORTCULLIS_ACME_CA_BUNDLE: pebble.caBundlePath,
      },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    child.once("error", reject);
    child.once("exit", (code, signal) => (signal ? resolve(signal) : code === 0 ? resolve(0) : reject(new Error(`worker exited ${code}: ${stderr.slice(-2000)}`))));
  });
}

describe.skipIf(!pebbleAvailable()).each(TEST_ENGINES)("a worker killed mid-order on %s", (kind) => {
  let t: TestDatabase;
  let pebble: Pebble;
  let edge: Edge;
  let accountId: string;
  let upstream: http.Server;

  beforeAll(async () => {
    pebble = await startPebble();
    configureAcmeTransport(pebble.caBundlePath);
    t = await createTestDatabase(kind);
    upstream = http.createServer((_q, r) => r.end("ok"));
    const upstreamPort = await listenOnLoopback(upstream);
    await createListener(t.db, SYSTEM_ACTOR, { name: "http", kind: "http", bindAddress: "127.0.0.1", port: pebble.httpPort, httpAction: "redirect" });
    await createListener(t.db, SYSTEM_ACTOR, { name: "https", kind: "https", bindAddress: "127.0.0.1", port: pebble.tlsPort, upstreamUrl: `http://127.0.0.1:${upstreamPort}` });
    edge = new Edge({ db: t.db, keyring, log, pollIntervalMs: 50, checkIntervalMs: 3_600_000 });
    await edge.start();
    accountId = (await createAccount(t.db, keyring, SYSTEM_ACTOR, { directoryUrl: pebble.directoryUrl, agreeTos: true })).id;
  });

  afterAll(async () => {
    await edge?.stop();
    upstream?.close();
    await t?.destroy();
    await pebble?.stop();
  });

  it.each(STEPS)("after %s, the next worker finishes the certificate", async (step) => {
    const challenge = step === "challenge_presented" ? "tls-alpn-01" : "http-01";
    const { certificate } = await createAcmeCertificate(t.db, keyring, { acme: { directoryUrl: pebble.directoryUrl } } as never, SYSTEM_ACTOR, {
      domains: [`crash-${step.replace(/_/g, "-")}-${kind}.example.test`],
      challenge,
      accountId,
    });
    expect(await runCrashingWorker(t, pebble, step)).toBe("SIGKILL");

    const left = await t.db.selectFrom("certificates").selectAll().where("id", "=", certificate.id).executeTakeFirstOrThrow();
    expect(left.lease_owner).toMatch(/^crash-/);
    if (step !== "stored") expect(["requesting"]).toContain(left.status);

    // Another worker, while the dead one's lease still holds, keeps its hands off.
    await new AcmeEngine({ db: t.db, keyring, log, workerId: "early" }).drain();
    expect((await getCertificate(t.db, certificate.id))!.versions).toHaveLength(step === "stored" ? 1 : 0);

    await new Promise((r) => setTimeout(r, LEASE_MS + 100));
    await new AcmeEngine({ db: t.db, keyring, log, workerId: "next" }).drain();
    const cert = (await getCertificate(t.db, certificate.id))!;
    expect(cert.lastError).toBeNull();
    expect(cert.status).toBe("active");
    expect(cert.versions).toHaveLength(1);
    expect(cert.acme?.step).toBeNull();
    const row = await t.db.selectFrom("certificates").select(["lease_owner", "order_url", "pending_sealed_key"]).where("id", "=", certificate.id).executeTakeFirstOrThrow();
    expect(row.order_url).toBeNull();
    expect(row.pending_sealed_key).toBeNull();
    // From the order's creation on, the next worker resumes that order instead of starting another.
    const types = (await listEvents(t.db, { certificateId: certificate.id })).map((e) => e.type);
    if (step !== "claimed" && step !== "stored") {
      expect(types.filter((x) => x === "acme.order_created")).toHaveLength(1);
      expect(types).toContain("acme.order_resumed");
    }
    expect(await t.db.selectFrom("acme_challenges").select("id").where("certificate_id", "=", certificate.id).execute()).toEqual([]);
  });
});
