import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect, type Insertable, type LogEvent } from "kysely";
import SQLite from "better-sqlite3";
import pg from "pg";
import type { Actor } from "../lib/audit";
import { keyContext } from "../lib/certificates";
import { Keyring, sealingKeyFromSecret } from "../lib/crypto/seal";
import { openDatabase, type DatabaseKind, type Db } from "../lib/db/connection";
import { migrateToLatest } from "../lib/db/migrate";
import type { CertificateStatus, Database } from "../lib/db/schema";
import { newId } from "../lib/ids";
import { inspectCertificatePem } from "../lib/pki/inspect";
import { createSelfSignedCertificate } from "../lib/pki/selfSigned";
import { createApiToken } from "../lib/tokens";
import { createUser } from "../lib/users";

// Fresh databases for the benchmarks, filled fast: a few real certificates, many rows.

export const BENCH_SECRET = "portcullis-bench-secret-not-for-production-0123456789";
export const BENCH_ACTOR: Actor = { id: null, label: "bench", role: "system" };

export type BenchDatabase = {
  kind: DatabaseKind;
  /** What the console gets as DATABASE_URL. */
  url: string;
  dataDir: string;
  db: Db;
  /** Closes the connection; the database itself stays until drop(). */
  close: () => Promise<void>;
  drop: () => Promise<void>;
};

export async function postgresReachable(adminUrl: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query("select 1");
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** A new, migrated database in a new data directory. */
export async function createBenchDatabase(kind: DatabaseKind, postgresAdminUrl: string): Promise<BenchDatabase> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `portcullis-bench-${kind}-`));
  const removeDir = () => fs.rmSync(dataDir, { recursive: true, force: true });
  if (kind === "sqlite") {
    const file = path.join(dataDir, "portcullis.db");
    const { db } = openDatabase({ kind: "sqlite", file });
    await migrateToLatest(db, "sqlite");
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      await db.destroy();
    };
    return { kind, url: `sqlite:${file}`, dataDir, db, close, drop: async () => (await close(), removeDir()) };
  }
  const name = `portcullis_bench_${crypto.randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: postgresAdminUrl });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(postgresAdminUrl);
  url.pathname = `/${name}`;
  const { db } = openDatabase({ kind: "postgres", url: url.toString() });
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await db.destroy();
  };
  const drop = async () => {
    await close();
    const cleanup = new pg.Client({ connectionString: postgresAdminUrl });
    await cleanup.connect();
    try {
      await cleanup.query(`drop database if exists ${name} with (force)`);
    } finally {
      await cleanup.end();
    }
    removeDir();
  };
  try {
    await migrateToLatest(db, "postgres");
  } catch (err) {
    await drop().catch(() => {});
    throw err;
  }
  return { kind, url: url.toString(), dataDir, db, close, drop };
}

export type BenchUser = { email: string; password: string; userId: string; token: string };

export async function createBenchAdmin(db: Db): Promise<BenchUser> {
  const email = "bench-admin@example.test";
  const password = crypto.randomBytes(18).toString("base64url");
  const user = await createUser(db, BENCH_ACTOR, { email, password, role: "admin" });
  const { token } = await createApiToken(db, BENCH_ACTOR, { userId: user.id, name: "bench" });
  return { email, password, userId: user.id, token };
}

// A small deterministic generator, so that two runs seed the same mix.
function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STATUS_MIX: [CertificateStatus, number][] = [
  ["active", 0.7],
  ["expired", 0.1],
  ["failed", 0.07],
  ["renewing", 0.05],
  ["pending", 0.04],
  ["requesting", 0.04],
];

function pickStatus(r: number): CertificateStatus {
  let acc = 0;
  for (const [status, weight] of STATUS_MIX) {
    acc += weight;
    if (r < acc) return status;
  }
  return "active";
}

type Template = { pem: string; keyPem: string; facts: ReturnType<typeof inspectCertificatePem> };

async function makeTemplates(count: number, now: Date): Promise<Template[]> {
  const templates: Template[] = [];
  for (let i = 0; i < count; i++) {
    // Issued at different times over the past year, so that not_after varies between rows.
    const issuedAt = new Date(now.getTime() - i * 18 * 86_400_000);
    const { certificatePem, privateKeyPem } = await createSelfSignedCertificate({
      names: [
        { type: "dns", value: `template-${i}.bench.example.test` },
        { type: "dns", value: `www.template-${i}.bench.example.test` },
      ],
      keyType: "ecdsa-p256",
      validityDays: 90 + (i % 4) * 90,
      now: issuedAt,
    });
    templates.push({ pem: certificatePem, keyPem: privateKeyPem, facts: inspectCertificatePem(certificatePem) });
  }
  return templates;
}

export const certificateName = (i: number) => `svc-${String(i).padStart(6, "0")}.bench.example.test`;

/**
 * N certificate rows (+ one version each) in multi-row inserts, one transaction per batch.
 * Row i is created (365 days × i / N) after a year ago: row N-1 is the newest.
 */
export async function seedCertificates(db: Db, opts: { count: number; createdBy: string; now?: Date; templates?: number }) {
  const now = opts.now ?? new Date();
  const keyring = new Keyring(sealingKeyFromSecret(BENCH_SECRET));
  const templates = await makeTemplates(opts.templates ?? 20, now);
  const random = mulberry32(20_261_127);
  const yearAgo = now.getTime() - 365 * 86_400_000;
  const step = (365 * 86_400_000 - 60_000) / opts.count;
  const BATCH = 250; // 25 columns × 250 rows stays well under both engines' bind-parameter limits
  for (let start = 0; start < opts.count; start += BATCH) {
    const certificates: Insertable<Database["certificates"]>[] = [];
    const versions: Database["certificate_versions"][] = [];
    for (let i = start; i < Math.min(opts.count, start + BATCH); i++) {
      const t = templates[i % templates.length];
      const id = newId("crt");
      const name = certificateName(i);
      const extra = i % 7 === 0 ? ["api", "admin", "static"].map((p) => `${p}.${name}`) : [];
      const domains = [name, `www.${name}`, ...extra];
      const createdAt = new Date(yearAgo + Math.floor(i * step)).toISOString();
      const status = pickStatus(random());
      const sealedKey = keyring.seal(t.keyPem, keyContext(id));
      const notBefore = t.facts.notBefore.toISOString();
      const notAfter = t.facts.notAfter.toISOString();
      certificates.push({
        id,
        name,
        source: "self_signed",
        status,
        domains: JSON.stringify(domains),
        key_type: "ecdsa-p256",
        validity_days: Math.round((t.facts.notAfter.getTime() - t.facts.notBefore.getTime()) / 86_400_000),
        chain_pem: t.pem,
        sealed_key: sealedKey,
        subject: t.facts.subject,
        issuer: t.facts.issuer,
        serial: t.facts.serialNumber,
        fingerprint_sha256: t.facts.fingerprintSha256,
        not_before: notBefore,
        not_after: notAfter,
        renew_at: null,
        renew_reason: "self-signed: not renewed automatically; create a new one before it expires",
        next_attempt_at: status === "failed" ? new Date(now.getTime() + 3_600_000).toISOString() : null,
        attempts: status === "failed" ? 1 + (i % 5) : 0,
        last_error: status === "failed" ? "rate limited: too many certificates already issued for this name" : null,
        lease_owner: null,
        lease_expires_at: null,
        created_by: opts.createdBy,
        created_at: createdAt,
        updated_at: createdAt,
      });
      versions.push({
        id: newId("ver"),
        certificate_id: id,
        version: 1,
        chain_pem: t.pem,
        sealed_key: sealedKey,
        fingerprint_sha256: t.facts.fingerprintSha256,
        serial: t.facts.serialNumber,
        issuer: t.facts.issuer,
        not_before: notBefore,
        not_after: notAfter,
        reason: "created (benchmark seed)",
        created_at: createdAt,
      });
    }
    await db.transaction().execute(async (trx) => {
      await trx.insertInto("certificates").values(certificates).execute();
      await trx.insertInto("certificate_versions").values(versions).execute();
    });
  }
}

export type CapturedQuery = { sql: string; parameters: readonly unknown[]; ms: number };

/**
 * A second connection to the same database that records every query with its duration, so that the
 * benchmark can time and EXPLAIN exactly what lib/ runs.
 */
export function openRecordingDatabase(kind: DatabaseKind, url: string) {
  const captured: CapturedQuery[] = [];
  const log = (event: LogEvent) => {
    if (event.level === "query") {
      captured.push({ sql: event.query.sql, parameters: event.query.parameters, ms: event.queryDurationMillis });
    }
  };
  let db: Kysely<Database>;
  if (kind === "postgres") {
    const pool = new pg.Pool({ connectionString: url, max: 2 });
    pool.on("error", () => {});
    db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log });
  } else {
    const sqlite = new SQLite(url.replace(/^(sqlite|file):(\/\/)?/, ""), { timeout: 10_000 });
    sqlite.pragma("busy_timeout = 10000");
    db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }), log });
  }
  return { db, captured };
}

/** The engine's plan for one captured query, as text lines. PostgreSQL's also runs it (ANALYZE). */
export async function explain(db: Kysely<Database>, kind: DatabaseKind, query: CapturedQuery): Promise<string[]> {
  if (kind === "sqlite") {
    const result = await db.executeQuery<{ detail: string }>(CompiledQuery.raw(`explain query plan ${query.sql}`, [...query.parameters]));
    return result.rows.map((r) => r.detail);
  }
  const result = await db.executeQuery<{ "QUERY PLAN": string }>(
    CompiledQuery.raw(`explain (analyze, buffers) ${query.sql}`, [...query.parameters]),
  );
  return result.rows.map((r) => r["QUERY PLAN"]);
}
