import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { sql } from "kysely";
import { listCertificates } from "../lib/certificates";
import type { DatabaseKind } from "../lib/db/connection";
import { findFreePort } from "../lib/net";
import {
  BENCH_SECRET,
  certificateName,
  createBenchAdmin,
  createBenchDatabase,
  explain,
  openRecordingDatabase,
  postgresReachable,
  seedCertificates,
  type BenchDatabase,
  type BenchUser,
  type CapturedQuery,
} from "./seed";
import { cleanupAll, onCleanup, wasInterrupted } from "./cleanup";
import { positiveInt, POSTGRES_ADMIN_URL, ROOT } from "./env";

// The issue's target: 10,000 certificates; the API list's p95 ≤ 50 ms, the certificates page ≤ 300 ms,
// on SQLite and PostgreSQL. Each is measured against GET /api/v1/health on the same console, in the
// same rounds, so that a slow machine shows as a slow reference rather than a slow product.

const TARGET_MS = { list: 50, page: 300 } as const;
const WARMUP = 20;
const DEEP_EVERY = 10;

const CERTS = positiveInt("BENCH_CERTS", 10_000);
const REQUESTS = positiveInt("BENCH_REQUESTS", 200);
const START_TIMEOUT_MS = positiveInt("BENCH_START_TIMEOUT_SECONDS", 600) * 1000;

// ---------------------------------------------------------------------------------------------
// Cleanup on success, failure and Ctrl-C: bench/cleanup.ts.

// ---------------------------------------------------------------------------------------------
// Statistics

type Stats = { n: number; median: number; p95: number; max: number; mean: number };

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
  const round = (v: number) => Math.round(v * 100) / 100;
  return {
    n: sorted.length,
    median: round(rank(0.5)),
    p95: round(rank(0.95)),
    max: round(sorted.at(-1) ?? NaN),
    mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length),
  };
}

// ---------------------------------------------------------------------------------------------
// The console, started as production starts it


function ensureBuildExists() {
  if (fs.existsSync(path.join(ROOT, ".next", "BUILD_ID"))) return;
  process.stdout.write("No .next/BUILD_ID: building the console once (next build)…\n");
  const result = spawnSync(process.execPath, [path.join(ROOT, "node_modules", "next", "dist", "bin", "next"), "build"], {
    cwd: ROOT,
    stdio: "inherit",
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" },
  });
  if (result.status !== 0) throw new Error("next build failed; see the output above");
}

type Console = { base: string; child: ChildProcess; logFile: string; startedInMs: number; stop: () => Promise<void> };

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

async function startConsole(database: BenchDatabase): Promise<Console> {
  const port = await findFreePort();
  const healthPort = await findFreePort();
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.startsWith("PORTCULLIS_") || k.startsWith("AUTH_") || k === "DATABASE_URL" || k.startsWith("BENCH_")) delete env[k];
  }
  Object.assign(env, {
    PORTCULLIS_DATA_DIR: database.dataDir,
    PORTCULLIS_HOST: "127.0.0.1",
    PORTCULLIS_PORT: String(port),
    PORTCULLIS_WORKER_HEALTH_PORT: String(healthPort),
    DATABASE_URL: database.url,
    PORTCULLIS_SECRET: BENCH_SECRET,
    NEXT_TELEMETRY_DISABLED: "1",
  });
  const logFile = path.join(database.dataDir, "console.log");
  const log = fs.openSync(logFile, "a");
  const t0 = performance.now();
  // Its own process group, so that a `next build` it may start (cli/build.ts) stops with it.
  const child = spawn(process.execPath, [path.join(ROOT, "bin", "portcullis.mjs"), "console"], {
    cwd: ROOT,
    env,
    stdio: ["ignore", log, log],
    detached: true,
  });
  fs.closeSync(log);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = onCleanup("stop the console", async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        /* already gone */
      }
    };
    signalGroup("SIGTERM");
    const killed = await Promise.race([exited.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 10_000))]);
    if (!killed) {
      signalGroup("SIGKILL");
      await exited;
    }
  });

  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  let announcedBuild = false;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`the console exited (${child.exitCode ?? child.signalCode}) before it answered; its log:\n${tail(logFile)}`);
    }
    if (Date.now() > deadline) {
      throw new Error(`the console did not answer ${base}/api/v1/health within ${START_TIMEOUT_MS / 1000} s; its log:\n${tail(logFile)}`);
    }
    if (!announcedBuild && /Building the console/.test(tail(logFile, 5))) {
      announcedBuild = true;
      process.stdout.write("  the console is rebuilding itself first (sources newer than .next/BUILD_ID)…\n");
    }
    try {
      const res = await fetch(`${base}/api/v1/health`, { signal: AbortSignal.timeout(2000) });
      await res.arrayBuffer();
      if (res.status === 200) break;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { base, child, logFile, startedInMs: performance.now() - t0, stop };
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

class CookieJar {
  private readonly cookies = new Map<string, string>();
  take(res: Response) {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(";");
      const eq = pair.indexOf("=");
      if (eq > 0) this.cookies.set(pair.slice(0, eq).trim(), pair.slice(eq + 1).trim());
    }
  }
  has(prefix: string) {
    return [...this.cookies.keys()].some((k) => k.startsWith(prefix));
  }
  header() {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; ");
  }
}

async function signInToConsole(base: string, user: BenchUser): Promise<string> {
  const jar = new CookieJar();
  const csrfRes = await fetch(`${base}/api/auth/csrf`);
  jar.take(csrfRes);
  const { csrfToken } = (await csrfRes.json()) as { csrfToken?: string };
  if (!csrfToken) throw new Error("GET /api/auth/csrf gave no csrfToken");
  const res = await fetch(`${base}/api/auth/callback/credentials`, {
    method: "POST",
    redirect: "manual",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Cookie: jar.header() },
    body: new URLSearchParams({ csrfToken, email: user.email, password: user.password, callbackUrl: `${base}/certificates` }),
  });
  await res.arrayBuffer();
  jar.take(res);
  if (!jar.has("authjs.session-token")) {
    throw new Error(`sign-in failed: HTTP ${res.status}, Location ${res.headers.get("location") ?? "—"}, no authjs.session-token cookie`);
  }
  return jar.header();
}

type Timed = { ms: number; status: number; body: string };

async function timedFetch(url: string, headers: Record<string, string> = {}): Promise<Timed> {
  const t0 = performance.now();
  const res = await fetch(url, { headers, redirect: "manual" });
  const body = await res.text();
  return { ms: performance.now() - t0, status: res.status, body };
}

function expect(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

type ListPage = { items: { name: string }[]; nextCursor: string | null; total: number };

/** A cursor from the middle of the list, reached by following nextCursor through the public API. */
async function middleCursor(base: string, token: string): Promise<{ cursor: string; firstName: string } | undefined> {
  const pageSize = 200;
  const pages = Math.max(1, Math.round(CERTS / 2 / pageSize));
  let cursor: string | null = null;
  for (let i = 0; i < pages; i++) {
    const url: string = `${base}/api/v1/certificates?limit=${pageSize}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
    expect(res.status === 200, `GET ${url} answered ${res.status}`);
    cursor = ((await res.json()) as ListPage).nextCursor;
    if (!cursor) return undefined;
  }
  // Rows are numbered oldest first (seed.ts), and the list is newest first.
  return { cursor: cursor!, firstName: certificateName(CERTS - 1 - pages * pageSize) };
}

// ---------------------------------------------------------------------------------------------
// One engine

type EngineResult = {
  engine: DatabaseKind;
  engineVersion: string;
  certificates: number;
  requests: number;
  warmup: number;
  seedMs: number;
  consoleStartMs: number;
  pageBytes: number;
  health: Stats;
  list: Stats & { firstPage: Stats; deepPage?: Stats };
  page: Stats;
  ratios: { listMedianVsHealth: number; pageMedianVsHealth: number; listP95VsTarget: number; pageP95VsTarget: number };
  pass: { list: boolean; page: boolean };
  queries: { sql: string; medianMs: number; calls: number; plan: string[] }[];
};

async function runEngine(kind: DatabaseKind): Promise<EngineResult> {
  process.stdout.write(`\n[${kind}] creating a fresh database and seeding ${CERTS.toLocaleString("en")} certificates…\n`);
  const database = await createBenchDatabase(kind, POSTGRES_ADMIN_URL);
  const dropDatabase = onCleanup(`drop the ${kind} database`, () => database.drop());
  let consoleProc: Console | undefined;
  try {
    const user = await createBenchAdmin(database.db);
    const t0 = performance.now();
    await seedCertificates(database.db, { count: CERTS, createdBy: user.userId });
    // Autovacuum would vacuum and analyze a table this size within a minute of the inserts; do it now,
    // deterministically. The console never runs ANALYZE on SQLite, so neither do we.
    if (kind === "postgres") await sql`vacuum analyze`.execute(database.db);
    const seedMs = performance.now() - t0;
    const engineVersion =
      kind === "postgres"
        ? (await sql<{ v: string }>`select version() as v`.execute(database.db)).rows[0].v
        : `SQLite ${(await sql<{ v: string }>`select sqlite_version() as v`.execute(database.db)).rows[0].v}`;
    await database.close();
    process.stdout.write(`  seeded in ${(seedMs / 1000).toFixed(1)} s; starting the console…\n`);

    consoleProc = await startConsole(database);
    process.stdout.write(`  console answered after ${(consoleProc.startedInMs / 1000).toFixed(1)} s (${consoleProc.base})\n`);
    const { base } = consoleProc;
    const bearer = { Authorization: `Bearer ${user.token}` };
    const cookie = await signInToConsole(base, user);
    const middle = await middleCursor(base, user.token);
    const newestName = certificateName(CERTS - 1);

    const health = async () => {
      const r = await timedFetch(`${base}/api/v1/health`);
      expect(r.status === 200, `health answered ${r.status}`);
      return r.ms;
    };
    const list = async (deep: boolean) => {
      const url = `${base}/api/v1/certificates?limit=50${deep && middle ? `&cursor=${encodeURIComponent(middle.cursor)}` : ""}`;
      const r = await timedFetch(url, bearer);
      expect(r.status === 200, `GET ${url} answered ${r.status}: ${r.body.slice(0, 200)}`);
      const page = JSON.parse(r.body) as ListPage;
      expect(page.total === CERTS, `the list says total ${page.total}, expected ${CERTS}: is the console on the seeded database?`);
      expect(page.items.length === Math.min(50, CERTS), `the list gave ${page.items.length} items`);
      const expectedFirst = deep && middle ? middle.firstName : newestName;
      expect(page.items[0].name === expectedFirst, `the list's first item is ${page.items[0].name}, expected ${expectedFirst}`);
      return r.ms;
    };
    let pageBytes = 0;
    const page = async () => {
      const r = await timedFetch(`${base}/certificates`, { Cookie: cookie });
      expect(r.status === 200, `GET /certificates answered ${r.status} (Location: a redirect means the session was not accepted)`);
      expect(r.body.includes(newestName), `GET /certificates did not contain ${newestName}: not the real page`);
      pageBytes = Buffer.byteLength(r.body);
      return r.ms;
    };

    process.stdout.write(`  warming up (${WARMUP} rounds), then ${REQUESTS} rounds of health → list → page…\n`);
    for (let i = 0; i < WARMUP; i++) {
      await health();
      await list(i % 2 === 1);
      await page();
    }
    // Side by side: one round is one request of each kind, so drift on the machine hits all three alike.
    const samples = { health: [] as number[], list: [] as number[], firstPage: [] as number[], deepPage: [] as number[], page: [] as number[] };
    for (let i = 0; i < REQUESTS; i++) {
      samples.health.push(await health());
      const deep = Boolean(middle) && i % DEEP_EVERY === DEEP_EVERY - 1;
      const ms = await list(deep);
      samples.list.push(ms);
      (deep ? samples.deepPage : samples.firstPage).push(ms);
      samples.page.push(await page());
    }
    await consoleProc.stop();

    const queries = await profileQueries(kind, database.url, middle?.cursor);

    const h = stats(samples.health);
    const l = stats(samples.list);
    const p = stats(samples.page);
    const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
    return {
      engine: kind,
      engineVersion,
      certificates: CERTS,
      requests: REQUESTS,
      warmup: WARMUP,
      seedMs: Math.round(seedMs),
      consoleStartMs: Math.round(consoleProc.startedInMs),
      pageBytes,
      health: h,
      list: { ...l, firstPage: stats(samples.firstPage), deepPage: samples.deepPage.length ? stats(samples.deepPage) : undefined },
      page: p,
      ratios: {
        listMedianVsHealth: ratio(l.median, h.median),
        pageMedianVsHealth: ratio(p.median, h.median),
        listP95VsTarget: ratio(l.p95, TARGET_MS.list),
        pageP95VsTarget: ratio(p.p95, TARGET_MS.page),
      },
      pass: { list: l.p95 <= TARGET_MS.list, page: p.p95 <= TARGET_MS.page },
      queries,
    };
  } finally {
    await consoleProc?.stop();
    await dropDatabase();
  }
}

/** Where the list's time goes in the database: each query lib/ runs, timed in-process and explained. */
async function profileQueries(kind: DatabaseKind, url: string, deepCursor: string | undefined) {
  const { db, captured } = openRecordingDatabase(kind, url);
  try {
    for (let i = 0; i < 50; i++) {
      await listCertificates(db, { limit: 50 });
      if (deepCursor) await listCertificates(db, { limit: 50, cursor: deepCursor });
    }
    const bySql = new Map<string, CapturedQuery[]>();
    for (const q of captured) {
      const key = `${q.sql}\u0000${q.parameters.length}`;
      bySql.set(key, [...(bySql.get(key) ?? []), q]);
    }
    const out: EngineResult["queries"] = [];
    for (const runs of bySql.values()) {
      out.push({
        sql: runs[0].sql,
        calls: runs.length,
        medianMs: stats(runs.map((r) => r.ms)).median,
        plan: await explain(db, kind, runs[0]),
      });
    }
    return out;
  } finally {
    await db.destroy();
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function printReport(r: EngineResult) {
  const f = (v: number) => v.toFixed(1).padStart(8);
  const x = (v: number) => `${v.toFixed(1)}×`.padStart(9);
  const verdict = (ratio: number) => `${ratio.toFixed(2).padStart(9)} ${ratio <= 1 ? "PASS" : "FAIL"}`;
  const lines = [
    "",
    `${r.engine} · ${r.certificates.toLocaleString("en")} certificates · ${r.requests} rounds after ${r.warmup} warm-up · ${r.engineVersion.split(" on ")[0]}`,
    `${"".padEnd(38)}${"median".padStart(8)}${"p95".padStart(8)}${"max".padStart(8)}   (ms)${"× health".padStart(10)}${"target".padStart(8)}${"× target".padStart(10)}`,
    `${"(a) GET /api/v1/health (reference)".padEnd(38)}${f(r.health.median)}${f(r.health.p95)}${f(r.health.max)}       ${x(1)}${"—".padStart(8)}`,
    `${"(b) GET /api/v1/certificates?limit=50".padEnd(38)}${f(r.list.median)}${f(r.list.p95)}${f(r.list.max)}       ${x(r.ratios.listMedianVsHealth)}${`${TARGET_MS.list}`.padStart(8)}${verdict(r.ratios.listP95VsTarget)}`,
    `${"      first page".padEnd(38)}${f(r.list.firstPage.median)}${f(r.list.firstPage.p95)}${f(r.list.firstPage.max)}`,
  ];
  if (r.list.deepPage) {
    lines.push(`${`      middle page (cursor, 1 in ${DEEP_EVERY})`.padEnd(38)}${f(r.list.deepPage.median)}${f(r.list.deepPage.p95)}${f(r.list.deepPage.max)}`);
  }
  lines.push(
    `${"(c) GET /certificates (signed in)".padEnd(38)}${f(r.page.median)}${f(r.page.p95)}${f(r.page.max)}       ${x(r.ratios.pageMedianVsHealth)}${`${TARGET_MS.page}`.padStart(8)}${verdict(r.ratios.pageP95VsTarget)}`,
    `    page body ${(r.pageBytes / 1024).toFixed(0)} KiB; seeding ${(r.seedMs / 1000).toFixed(1)} s; console start ${(r.consoleStartMs / 1000).toFixed(1)} s`,
    "",
    "  queries behind one list request (timed in-process, no HTTP):",
  );
  for (const q of r.queries) {
    lines.push(`    ${q.medianMs.toFixed(2).padStart(7)} ms  ${q.sql.replace(/\s+/g, " ").slice(0, 150)}`);
    const plan = r.engine === "sqlite" ? q.plan : q.plan.filter((l) => !/^\s*(Buffers|Planning:|Planning Time|Execution Time)/.test(l)).slice(0, 6);
    for (const l of plan) lines.push(`               │ ${l.trimEnd()}`);
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

// ---------------------------------------------------------------------------------------------

async function main() {
  let engines: DatabaseKind[];
  const requested = process.env.BENCH_ENGINES?.split(",").map((s) => s.trim()).filter(Boolean);
  const pgUp = await postgresReachable(POSTGRES_ADMIN_URL);
  if (requested?.length) {
    const bad = requested.filter((e) => e !== "sqlite" && e !== "postgres");
    if (bad.length) throw new Error(`BENCH_ENGINES: unknown engine ${bad.join(", ")} (accepted values: sqlite, postgres)`);
    engines = requested as DatabaseKind[];
    if (engines.includes("postgres") && !pgUp) throw new Error(`BENCH_ENGINES asks for postgres, but ${POSTGRES_ADMIN_URL} does not answer`);
  } else {
    engines = pgUp ? ["sqlite", "postgres"] : ["sqlite"];
    if (!pgUp) process.stdout.write(`PostgreSQL at ${POSTGRES_ADMIN_URL} does not answer: SQLite only.\n`);
  }
  ensureBuildExists();
  process.stdout.write(`Portcullis API benchmark: ${engines.join(", ")}; ${CERTS.toLocaleString("en")} certificates; ${REQUESTS} requests each\n`);

  const resultsDir = path.join(ROOT, "bench", "results");
  fs.mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  let failed = false;
  for (const engine of engines) {
    try {
      const result = await runEngine(engine);
      printReport(result);
      const file = path.join(resultsDir, `api-${engine}-${stamp}.json`);
      fs.writeFileSync(file, `${JSON.stringify({ ...result, node: process.version, at: new Date().toISOString() }, null, 2)}\n`);
      process.stdout.write(`  results: ${path.relative(ROOT, file)}\n`);
    } catch (err) {
      failed = true;
      if (wasInterrupted()) break;
      process.stderr.write(`\n[${engine}] benchmark failed: ${(err as Error).message}\n`);
      await cleanupAll();
    }
  }
  if (failed) process.exitCode = 1;
}

main()
  .catch((err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).message ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(cleanupAll);
