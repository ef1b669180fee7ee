// A worker's engine in its own process, for crash tests: it SIGKILLs itself right after the step named
// in PORTCULLIS_TEST_CRASH_AT has been made durable, exactly as `kill -9` would stop a real worker.
import pino from "pino";
import { configureAcmeTransport } from "../../lib/acme/client";
import { AcmeEngine, type EngineStep } from "../../lib/acme/engine";
import { Keyring, sealingKeyFromBytes } from "../../lib/crypto/seal";
import { openDatabase } from "../../lib/db/connection";

const { PORTCULLIS_TEST_DB_KIND, PORTCULLIS_TEST_DB_URL, PORTCULLIS_TEST_SEAL_KEY, PORTCULLIS_TEST_CRASH_AT, PORTCULLIS_ACME_CA_BUNDLE } = process.env;
const database = PORTCULLIS_TEST_DB_KIND === "postgres" ? { kind: "postgres" as const, url: PORTCULLIS_TEST_DB_URL! } : { kind: "sqlite" as const, file: PORTCULLIS_TEST_DB_URL! };
const { db } = openDatabase(database);
configureAcmeTransport(PORTCULLIS_ACME_CA_BUNDLE);
const engine = new AcmeEngine({
  db,
  keyring: new Keyring(sealingKeyFromBytes(Buffer.from(PORTCULLIS_TEST_SEAL_KEY!, "hex"))),
  log: pino({ level: "silent" }),
  leaseMs: Number(process.env.PORTCULLIS_TEST_LEASE_MS ?? 1500),
  workerId: `crash-${process.pid}`,
  // DNS-01 orders reach the (fake) Cloudflare API and check propagation as the worker would.
  dns: { settings: { cloudflareApiUrl: process.env.PORTCULLIS_CLOUDFLARE_API_URL, resolvers: (process.env.PORTCULLIS_DNS_RESOLVERS ?? "").split(",").filter(Boolean) } },
  onStep: (step: EngineStep) => {
    if (step === PORTCULLIS_TEST_CRASH_AT) process.kill(process.pid, "SIGKILL");
  },
});
await engine.drain();
await db.destroy();
process.exit(0);
