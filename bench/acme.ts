import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import type { DatabaseKind } from "../lib/db/connection";
import { findFreePort } from "../lib/net";
import { startPebble, type Pebble } from "../tests/support/pebble";
import { BENCH_SECRET, createBenchDatabase, postgresReachable, type BenchDatabase } from "./seed";
import { cleanupAll, onCleanup, wasInterrupted } from "./cleanup";
import { profileSelfTimes } from "./profile";
import { positiveInt, POSTGRES_ADMIN_URL, ROOT } from "./env";

// ACME issuance end to end, against one real pebble, side by side with certbot and lego:
//   (1) API call → certificate served on an HTTPS listener, vs certbot / lego (HTTP-01)  ≤ 1.0 × the faster
//   (2) BENCH_BULK certificates requested at once: time until all are active, peak RSS  (reported)
//   (3) event recorded → received by an open SSE client, during (2)                      p95 ≤ 1 s
// Portcullis runs as production runs it (`portcullis serve`: console + worker). See bench/README.md.

const TARGETS = { servedVsReference: 1.0, sseP95Ms: 1000 } as const;

const RUNS = positiveInt("BENCH_RUNS", 10);
const BULK = positiveInt("BENCH_BULK", 100);
const START_TIMEOUT_MS = positiveInt("BENCH_START_TIMEOUT_SECONDS", 600) * 1000;
const ISSUE_TIMEOUT_MS = positiveInt("BENCH_ISSUE_TIMEOUT_SECONDS", 120) * 1000;
const BULK_TIMEOUT_MS = positiveInt("BENCH_BULK_TIMEOUT_SECONDS", 900) * 1000;
const PROFILE = process.env.BENCH_ACME_PROFILE === "1";

const REFERENCE_TOOLS = ["certbot", "lego"] as const;
type ReferenceTool = (typeof REFERENCE_TOOLS)[number];
type Contender = "portcullis" | ReferenceTool;

// Client-side poll intervals: they add on average half an interval to the figure they end.
const CERT_POLL_MS = 25;
const TLS_POLL_MS = 10;
const LIST_POLL_MS = 250;
const RSS_SAMPLE_MS = 100;
const EMAIL = "bench@example.com";
const ADMIN_EMAIL = "bench-admin@example.test";

// Events the worker records while it orders a certificate, in order; tls.pending is the console's.
const WORKER_STATUS_EVENTS = new Set(["tls.requesting", "tls.renewing", "tls.issued", "tls.renewed", "tls.renewal_failed"]);

const say = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const deadlineIn = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());
/** Wall-clock milliseconds with sub-millisecond resolution, comparable with the events' `at`. */
const wallNow = () => performance.timeOrigin + performance.now();
const round = (v: number, digits = 0) => Math.round(v * 10 ** digits) / 10 ** digits;
function expect(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}
const randomLabel = () => crypto.randomBytes(4).toString("hex");

// ---------------------------------------------------------------------------------------------
// Statistics

type Stats = { n: number; median: number; p95: number; max: number; min: number; mean: number };

function stats(samples: number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  if (!sorted.length) return { n: 0, median: NaN, p95: NaN, max: NaN, min: NaN, mean: NaN };
  // Nearest rank, as bench/api.ts.
  const rank = (p: number) => sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)];
  return {
    n: sorted.length,
    median: round(rank(0.5), 1),
    p95: round(rank(0.95), 1),
    max: round(sorted.at(-1)!, 1),
    min: round(sorted[0], 1),
    mean: round(sorted.reduce((a, b) => a + b, 0) / sorted.length, 1),
  };
}

// ---------------------------------------------------------------------------------------------
// /proc: memory and CPU of processes

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

function procStat(pid: number): string[] {
  const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return text.slice(text.lastIndexOf(")") + 2).split(" "); // [0] is field 3 (state)
}
function procStatus(pid: number, field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}
function cmdline(pid: number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
}
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (Number(procStat(Number(entry))[1]) === pid) out.push(Number(entry));
    } catch {
      /* exited meanwhile */
    }
  }
  return out;
}
/** CPU ticks of a process and every descendant, live or reaped (utime stime cutime cstime). */
function treeTicks(pid: number): number {
  let t = 0;
  try {
    const f = procStat(pid);
    t = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]);
  } catch {
    return 0;
  }
  for (const child of childrenOf(pid)) t += treeTicks(child);
  return t;
}
const cpuSecondsOf = (pid: number) => {
  try {
    const f = procStat(pid);
    return (Number(f[11]) + Number(f[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
};
function machineTicks() {
  const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  return { busy: f[0] + f[1] + f[2], steal: f[7] ?? 0 };
}
/**
 * The machine may be shared: CPU used by processes that are not ours (this process and all its
 * descendants: pebble, the serve tree, certbot and lego) during a phase is noise in its figures.
 */
function otherLoad() {
  const m0 = machineTicks();
  const o0 = treeTicks(process.pid);
  const t0 = performance.now();
  return () => {
    const m1 = machineTicks();
    const seconds = (performance.now() - t0) / 1000;
    const other = Math.max(0, m1.busy - m0.busy - (treeTicks(process.pid) - o0)) / CLK_TCK;
    return { otherCpus: round(other / seconds, 2), stealCpus: round((m1.steal - m0.steal) / CLK_TCK / seconds, 2) };
  };
}
type Load = ReturnType<ReturnType<typeof otherLoad>>;

/** Another engineer's `next build` in this checkout: starting ours beside it would make ours fail. */
function foreignNextBuilds(): number[] {
  const found: number[] = [];
  for (const entry of fs.readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const command = cmdline(Number(entry)).join(" ");
    // `next build` renames its process to "next-build (vX)".
    if (!/^next-build\b|(^|[\s/'])next'?(\/dist\/bin\/next)? build\b/.test(command)) continue;
    try {
      if (fs.readlinkSync(`/proc/${entry}/cwd`) === ROOT) found.push(Number(entry));
    } catch {
      /* exited, or not ours to inspect */
    }
  }
  return found;
}

async function waitForForeignBuilds() {
  let announced = false;
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (foreignNextBuilds().length) {
    if (!announced) say("  another `next build` is running in this checkout; waiting for it to finish first…");
    announced = true;
    if (Date.now() > deadline) throw new Error(`a \`next build\` (pid ${foreignNextBuilds().join(", ")}) ran for more than ${START_TIMEOUT_MS / 1000} s`);
    await sleep(1000);
  }
}

function tail(file: string, lines = 30): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

// ---------------------------------------------------------------------------------------------
// What must not outlive the benchmark, also written to a file for bench/acme-reaper.mjs: tsx's CLI
// SIGKILLs this process when it is slow to acknowledge Ctrl-C (a busy machine), and then the reaper
// stops and removes what is still listed. Each item leaves the list once it is released.

type Leftovers = {
  groups: { pgid: number; match: string }[];
  processes: { pid: number; argv0: string }[];
  databases: { adminUrl: string; name: string }[];
  dirs: string[];
};
const leftovers: Leftovers = { groups: [], processes: [], databases: [], dirs: [] };
const reaperState = path.join(os.tmpdir(), `portcullis-bench-acme-${process.pid}.reaper.json`);

function writeLeftovers() {
  fs.writeFileSync(`${reaperState}.tmp`, JSON.stringify(leftovers));
  fs.renameSync(`${reaperState}.tmp`, reaperState);
}

/** Lists something for the reaper; the function returned takes it off the list again. */
function track<K extends keyof Leftovers>(kind: K, item: Leftovers[K][number]): () => void {
  (leftovers[kind] as Leftovers[K][number][]).push(item);
  writeLeftovers();
  return () => {
    const list = leftovers[kind] as Leftovers[K][number][];
    const i = list.indexOf(item);
    if (i >= 0) list.splice(i, 1);
    writeLeftovers();
  };
}

function startReaper() {
  writeLeftovers();
  spawn(process.execPath, [path.join(ROOT, "bench", "acme-reaper.mjs"), String(process.pid), reaperState], { cwd: ROOT, detached: true, stdio: "ignore" }).unref();
}

/** The benchmark ended and cleaned up: the reaper sees the file gone and exits. */
const stopReaper = () => fs.rmSync(reaperState, { force: true });

// ---------------------------------------------------------------------------------------------
// Portcullis, started as production starts it: `portcullis serve` (console + worker)

type Portcullis = {
  base: string;
  token: string;
  serve: ChildProcess;
  consolePid: number;
  workerPid: number;
  workerHealth: string;
  logFile: string;
  startedInMs: number;
  rebuilt: boolean;
  stop: () => Promise<void>;
};

function serveEnvironment(database: BenchDatabase, pebble: Pebble, ports: { port: number; healthPort: number }, adminPassword: string, profileDir?: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) {
    if (k.startsWith("PORTCULLIS_") || k.startsWith("AUTH_") || k === "DATABASE_URL" || k.startsWith("BENCH_")) delete env[k];
  }
  // The console and the worker profile themselves between two SIGUSR2 (bench/cpu-profile-preload.cjs).
  if (profileDir) {
    env.NODE_OPTIONS = `${env.NODE_OPTIONS ?? ""} --require ${path.join(ROOT, "bench", "cpu-profile-preload.cjs")}`.trim();
    env.BENCH_CPU_PROFILE_DIR = profileDir;
  }
  return Object.assign(env, {
    PORTCULLIS_DATA_DIR: database.dataDir,
    PORTCULLIS_HOST: "127.0.0.1",
    PORTCULLIS_PORT: String(ports.port),
    PORTCULLIS_WORKER_HEALTH_PORT: String(ports.healthPort),
    DATABASE_URL: database.url,
    PORTCULLIS_SECRET: BENCH_SECRET,
    PORTCULLIS_ADMIN_EMAIL: ADMIN_EMAIL,
    PORTCULLIS_ADMIN_PASSWORD: adminPassword,
    PORTCULLIS_ACME_DIRECTORY_URL: pebble.directoryUrl,
    PORTCULLIS_ACME_CA_BUNDLE: pebble.caBundlePath,
    NEXT_TELEMETRY_DISABLED: "1",
  });
}

async function answers200(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

async function startPortcullis(database: BenchDatabase, pebble: Pebble, profileDir?: string): Promise<Portcullis> {
  await waitForForeignBuilds();
  const port = await findFreePort();
  const healthPort = await findFreePort();
  const adminPassword = crypto.randomBytes(18).toString("base64url");
  const env = serveEnvironment(database, pebble, { port, healthPort }, adminPassword, profileDir);
  const logFile = path.join(database.dataDir, "serve.log");
  const log = fs.openSync(logFile, "a");
  const t0 = performance.now();
  // Its own process group: the console, the worker and a `next build` serve may start stop with it.
  const serve = spawn(process.execPath, [path.join(ROOT, "bin", "portcullis.mjs"), "serve"], { cwd: ROOT, env, stdio: ["ignore", log, log], detached: true });
  fs.closeSync(log);
  serve.on("error", () => {});
  const untrack = track("groups", { pgid: serve.pid!, match: "portcullis.mjs serve" });
  const exited = new Promise<void>((resolve) => serve.once("exit", () => resolve()));
  const stop = onCleanup("stop portcullis serve", async () => {
    await stopServe();
    untrack();
  });
  // serve stops its children on SIGTERM and exits after them; the SIGKILL after that reaches only what
  // outlived a serve that died some other way.
  const stopServe = async () => {
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-serve.pid!, signal);
      } catch {
        /* already gone */
      }
    };
    signalGroup("SIGTERM");
    if (serve.exitCode === null && serve.signalCode === null) await Promise.race([exited, deadlineIn(15_000)]);
    signalGroup("SIGKILL");
    await exited;
  };

  const base = `http://127.0.0.1:${port}`;
  const workerHealth = `http://127.0.0.1:${healthPort}/health`;
  const deadline = Date.now() + START_TIMEOUT_MS;
  let rebuilt = false;
  for (;;) {
    if (serve.exitCode !== null || serve.signalCode !== null) {
      throw new Error(`portcullis serve exited (${serve.exitCode ?? serve.signalCode}) before it answered; its log:\n${tail(logFile)}`);
    }
    if (Date.now() > deadline) throw new Error(`portcullis serve did not answer within ${START_TIMEOUT_MS / 1000} s; its log:\n${tail(logFile)}`);
    if (!rebuilt && /Building the console/.test(tail(logFile, 5))) {
      rebuilt = true;
      say("  the console is rebuilding itself first (sources newer than .next/BUILD_ID)…");
    }
    if ((await answers200(`${base}/api/v1/health`)) && (await answers200(workerHealth))) break;
    await sleep(200);
  }
  const startedInMs = performance.now() - t0;

  // serve spawns `portcullis console` and `portcullis worker` as its direct children (cli/index.ts).
  const roleOf = (pid: number) => cmdline(pid).at(-1);
  const children = childrenOf(serve.pid!);
  const consolePid = children.find((p) => roleOf(p) === "console");
  const workerPid = children.find((p) => roleOf(p) === "worker");
  expect(consolePid && workerPid, `could not find the console and worker among serve's children (${children.map((p) => `${p}: ${cmdline(p).join(" ")}`).join("; ")})`);

  // An API token through the public CLI, with the same environment so that it finds the same database.
  const created = spawnSync(process.execPath, [path.join(ROOT, "bin", "portcullis.mjs"), "token", "create", "--user", ADMIN_EMAIL, "--name", "bench", "--json"], {
    cwd: ROOT,
    env: { ...env, NODE_OPTIONS: process.env.NODE_OPTIONS ?? "" },
    encoding: "utf8",
    timeout: 60_000,
  });
  expect(created.status === 0, `portcullis token create failed (${created.status}): ${created.stderr.trim()}`);
  const token = (JSON.parse(created.stdout.trim().split("\n").at(-1)!) as { token?: string }).token;
  expect(token, `portcullis token create printed no token: ${created.stdout}`);
  return { base, token, serve, consolePid, workerPid, workerHealth, logFile, startedInMs, rebuilt, stop };
}

// ---------------------------------------------------------------------------------------------
// The REST API

type ApiError = { error?: { code?: string; message?: string } };

class Api {
  constructor(
    readonly base: string,
    private readonly token: string,
  ) {}

  async call<T>(method: string, pathname: string, body?: unknown, okStatus: number[] = [200, 201]): Promise<T> {
    const res = await fetch(`${this.base}${pathname}`, {
      method,
      headers: { Authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(60_000),
    });
    const text = await res.text();
    if (!okStatus.includes(res.status)) {
      let message = text.slice(0, 300);
      try {
        const e = (JSON.parse(text) as ApiError).error;
        if (e) message = `${e.code}: ${e.message}`;
      } catch {
        /* not JSON */
      }
      throw new Error(`${method} ${pathname} answered ${res.status}: ${message}`);
    }
    return JSON.parse(text) as T;
  }
}

type CertificateView = { id: string; name: string; status: string; fingerprintSha256: string | null; lastError: string | null; domains: string[] };
type ListenerView = { id: string; name: string; kind: "http" | "https"; bindAddress: string; port: number; upstreamUrl: string | null; httpAction: string | null; redirectPort: number | null; enabled: boolean; minTlsVersion: string; fallbackPolicy: string; defaultCertificateId: string | null };
type EventView = { id: number; at: string; type: string; severity: string; certificateId: string | null; message: string; detail: unknown };

async function workerListeners(url: string): Promise<string[]> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  const body = (await res.json()) as { listeners?: { id: string }[] };
  return (body.listeners ?? []).map((l) => l.id);
}

function tcpAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.setTimeout(1000, () => (socket.destroy(), resolve(false)));
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });
}

async function waitUntil(what: string, ok: () => Promise<boolean>, timeoutMs: number, intervalMs = 50) {
  const deadline = Date.now() + timeoutMs;
  while (!(await ok())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s`);
    await sleep(intervalMs);
  }
}

/** Turns the HTTP-01 listener on or off through the API, and waits until the port is held or free. */
async function setHttpListener(api: Api, p: Portcullis, listener: ListenerView, enabled: boolean) {
  const current = await api.call<ListenerView>("GET", `/api/v1/listeners/${listener.id}`);
  if (current.enabled !== enabled) {
    const { id: _id, ...settings } = current;
    await api.call("PUT", `/api/v1/listeners/${listener.id}`, { ...pickListenerInput(settings), enabled });
  }
  await waitUntil(
    `the HTTP listener ${enabled ? "listening" : "closed"} on 127.0.0.1:${listener.port}`,
    async () => (await workerListeners(p.workerHealth)).includes(listener.id) === enabled && (await tcpAnswers(listener.port)) === enabled,
    15_000,
  );
}

function pickListenerInput(l: Omit<ListenerView, "id">) {
  return {
    name: l.name,
    kind: l.kind,
    bindAddress: l.bindAddress,
    port: l.port,
    upstreamUrl: l.upstreamUrl ?? undefined,
    minTlsVersion: l.minTlsVersion,
    defaultCertificateId: l.defaultCertificateId ?? undefined,
    fallbackPolicy: l.fallbackPolicy,
    httpAction: l.httpAction ?? undefined,
    redirectPort: l.redirectPort ?? undefined,
  };
}

/** The SHA-256 fingerprint the listener serves for `servername`, or null when no handshake completes. */
function servedFingerprint(port: number, servername: string): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] });
    const done = (fp: string | null) => {
      socket.destroy();
      resolve(fp);
    };
    socket.setTimeout(2000, () => done(null));
    socket.once("secureConnect", () => done(socket.getPeerX509Certificate()?.fingerprint256 ?? null));
    socket.once("error", () => done(null));
  });
}

// ---------------------------------------------------------------------------------------------
// Part 1: one certificate, API call → served, against certbot and lego

type Phases = Record<string, number>;
type Run = { contender: Contender; name: string; ok: boolean; ms: number; error?: string; phases?: Phases; certificateId?: string; events?: { at: string; type: string }[] };

// Consecutive points of one Portcullis issuance; each phase is the time from the one before.
const PHASE_POINTS: [string, string][] = [
  ["tls.pending", "POST answered (queued)"],
  ["tls.requesting", "wait to be claimed"],
  ["acme.order_created", "new order"],
  ["acme.challenge_presented", "authz + publish answer"],
  ["acme.challenge_valid", "validation"],
  ["acme.finalized", "finalize (CSR)"],
  ["tls.issued", "download + store"],
];
const CLIENT_POINTS = ["seen active (GET poll)", "mapping PUT", "served (edge reload + handshake)"];

/** Splits one issuance by its events' times and the client's own marks (all wall-clock ms). */
function splitPhases(t0: number, events: EventView[], marks: { active: number; mapped: number; served: number }): Phases {
  const phases: Phases = {};
  let prev = t0;
  for (const [type, label] of PHASE_POINTS) {
    const e = events.find((x) => x.type === type);
    if (!e) continue;
    const at = Date.parse(e.at);
    phases[label] = round(at - prev, 1);
    prev = at;
  }
  phases[CLIENT_POINTS[0]] = round(marks.active - prev, 1);
  phases[CLIENT_POINTS[1]] = round(marks.mapped - marks.active, 1);
  phases[CLIENT_POINTS[2]] = round(marks.served - marks.mapped, 1);
  return phases;
}

async function certificateEvents(api: Api, id: string): Promise<EventView[]> {
  return (await api.call<{ items: EventView[] }>("GET", `/api/v1/events?certificate=${encodeURIComponent(id)}&limit=200`)).items;
}

async function portcullisOnce(ctx: EngineContext, name: string): Promise<Run> {
  const { api, accountId, pebble, mappings } = ctx;
  const t0 = wallNow();
  const created = await api.call<CertificateView>("POST", "/api/v1/certificates", { source: "acme", domains: [name], challenge: "http-01", accountId });
  let cert = created;
  const deadline = Date.now() + ISSUE_TIMEOUT_MS;
  while (cert.status !== "active") {
    if (cert.status === "failed") {
      return { contender: "portcullis", name, ok: false, ms: wallNow() - t0, certificateId: cert.id, error: cert.lastError ?? "failed, no lastError" };
    }
    if (Date.now() > deadline) return { contender: "portcullis", name, ok: false, ms: wallNow() - t0, certificateId: cert.id, error: `still ${cert.status} after ${ISSUE_TIMEOUT_MS / 1000} s` };
    await sleep(CERT_POLL_MS);
    cert = await api.call<CertificateView>("GET", `/api/v1/certificates/${cert.id}`);
  }
  const active = wallNow();
  expect(cert.fingerprintSha256, `certificate ${cert.id} is active without a fingerprint`);
  mappings.push({ hostname: name, certificateId: cert.id });
  await api.call("PUT", `/api/v1/listeners/${ctx.httpsListener.id}/mappings`, { mappings });
  const mapped = wallNow();
  for (;;) {
    if ((await servedFingerprint(pebble.tlsPort, name)) === cert.fingerprintSha256) break;
    if (Date.now() > deadline) return { contender: "portcullis", name, ok: false, ms: wallNow() - t0, certificateId: cert.id, error: `active, mapped, but not served for ${name} within ${ISSUE_TIMEOUT_MS / 1000} s` };
    await sleep(TLS_POLL_MS);
  }
  const served = wallNow();
  const events = await certificateEvents(api, cert.id);
  return {
    contender: "portcullis",
    name,
    ok: true,
    ms: served - t0,
    certificateId: cert.id,
    phases: splitPhases(t0, events, { active, mapped, served }),
    events: events.map((e) => ({ at: e.at, type: e.type })),
  };
}

// certbot and lego run as an operator runs them: a new process per certificate, to files on disk.
const runningTools = new Set<ChildProcess>();
onCleanup("stop certbot and lego", () => {
  for (const c of runningTools) {
    try {
      process.kill(-c.pid!, "SIGKILL");
    } catch {
      /* gone */
    }
  }
});

function runTool(argv: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; output: string; ms: number }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], env, detached: true });
    runningTools.add(child);
    let output = "";
    child.stdout!.on("data", (d) => (output += d));
    child.stderr!.on("data", (d) => (output += d));
    const timer = setTimeout(() => {
      output += `\n(bench: killed after ${timeoutMs} ms)`;
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        /* gone */
      }
    }, timeoutMs);
    child.on("error", (err) => (output += String(err)));
    child.on("close", (code) => {
      const ms = performance.now() - t0;
      clearTimeout(timer);
      runningTools.delete(child);
      resolve({ code, output, ms });
    });
  });
}

function referenceCommand(tool: ReferenceTool, name: string, pebble: Pebble, dir: string): { argv: string[]; env: NodeJS.ProcessEnv; certFile: string } {
  if (tool === "certbot") {
    const argv = [
      "certbot", "certonly", "--standalone", "--preferred-challenges", "http",
      "--http-01-port", String(pebble.httpPort), "--http-01-address", "127.0.0.1",
      "--server", pebble.directoryUrl, "-d", name,
      "--non-interactive", "--agree-tos", "-m", EMAIL, "--no-eff-email",
      "--key-type", "ecdsa", "--elliptic-curve", "secp256r1",
      "--config-dir", path.join(dir, "config"), "--work-dir", path.join(dir, "work"), "--logs-dir", path.join(dir, "logs"),
    ];
    return { argv, env: { ...process.env, REQUESTS_CA_BUNDLE: pebble.caBundlePath }, certFile: path.join(dir, "config", "live", name, "fullchain.pem") };
  }
  const argv = [
    "lego", "--server", pebble.directoryUrl, "--email", EMAIL, "--accept-tos", "--key-type", "ec256",
    "--domains", name, "--http", "--http.port", `127.0.0.1:${pebble.httpPort}`, "--path", dir, "run",
  ];
  return { argv, env: { ...process.env, LEGO_CA_CERTIFICATES: pebble.caBundlePath }, certFile: path.join(dir, "certificates", `${name}.crt`) };
}

async function referenceOnce(tool: ReferenceTool, name: string, pebble: Pebble, dir: string): Promise<Run> {
  const { argv, env, certFile } = referenceCommand(tool, name, pebble, dir);
  const r = await runTool(argv, env, ISSUE_TIMEOUT_MS);
  if (r.code !== 0) return { contender: tool, name, ok: false, ms: r.ms, error: `exit ${r.code}: ${r.output.trim().split("\n").slice(-6).join(" | ")}` };
  // It must have written a certificate for this very name.
  try {
    const leaf = new crypto.X509Certificate(fs.readFileSync(certFile));
    expect(leaf.subjectAltName?.includes(`DNS:${name}`), `${certFile} is not for ${name} (${leaf.subjectAltName})`);
  } catch (err) {
    return { contender: tool, name, ok: false, ms: r.ms, error: `exit 0 but no certificate: ${(err as Error).message}` };
  }
  return { contender: tool, name, ok: true, ms: r.ms };
}

/** The Debian package's version: lego's own --version says only "dev". */
function packageVersion(pkg: string): string {
  const r = spawnSync("dpkg-query", ["-W", "-f", "${Version}", pkg], { encoding: "utf8" });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : "?";
}

// ---------------------------------------------------------------------------------------------
// Part 3's client: Server-Sent Events, timed on arrival

type Received = { id: number; type: string; at: string; certificateId: string | null; receivedAt: number };

type SseClient = { cursor: number; received: Received[]; close: () => void; errors: string[] };

function openEventStream(base: string, token: string): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const received: Received[] = [];
    const errors: string[] = [];
    let cursor: number | undefined;
    let closed = false;
    let buffer = "";
    const req = http.get(`${base}/api/v1/events/stream`, { headers: { Authorization: `Bearer ${token}`, Accept: "text/event-stream" }, agent: false }, (res) => {
      if (res.statusCode !== 200 || !/text\/event-stream/.test(String(res.headers["content-type"]))) {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => reject(new Error(`GET /api/v1/events/stream answered ${res.statusCode} ${res.headers["content-type"]}: ${body.slice(0, 200)}`)));
        return;
      }
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        const arrived = wallNow();
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const fields: Record<string, string> = {};
          for (const line of block.split("\n")) {
            if (!line || line.startsWith(":")) continue;
            const colon = line.indexOf(":");
            const key = colon < 0 ? line : line.slice(0, colon);
            const value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            fields[key] = key === "data" && fields.data !== undefined ? `${fields.data}\n${value}` : value;
          }
          if (fields.event === "ready") {
            cursor = Number(fields.id ?? (JSON.parse(fields.data ?? "{}") as { cursor?: number }).cursor ?? 0);
            resolve({ cursor, received, errors, close: () => ((closed = true), req.destroy()) });
            continue;
          }
          if (fields.data === undefined) continue;
          try {
            // The type is in the data; the SSE `event:` field is the same for every event.
            const e = JSON.parse(fields.data) as EventView;
            received.push({ id: Number(fields.id ?? e.id), type: e.type, at: e.at, certificateId: e.certificateId, receivedAt: arrived });
          } catch (err) {
            errors.push(`unparsable data: ${fields.data.slice(0, 100)} (${(err as Error).message})`);
          }
        }
      });
      res.on("error", (err) => closed || errors.push(String(err)));
      res.on("close", () => {
        if (cursor === undefined) reject(new Error("the event stream closed before its ready message"));
        else if (!closed) errors.push(`the server ended the stream after ${received.length} events`);
      });
    });
    req.on("error", (err) => (cursor === undefined ? reject(err) : closed || errors.push(String(err))));
    req.setTimeout(30_000, () => cursor === undefined && req.destroy(new Error("no ready message within 30 s")));
  });
}

// ---------------------------------------------------------------------------------------------
// One engine

type EngineContext = {
  kind: DatabaseKind;
  api: Api;
  p: Portcullis;
  pebble: Pebble;
  accountId: string;
  httpListener: ListenerView;
  httpsListener: ListenerView;
  mappings: { hostname: string; certificateId: string }[];
};

type Memory = { idle: number; peakSampled: number; hwm: number; samples: number; children: { pids: number[]; peakSampled: number } };

type BulkResult = {
  count: number;
  postsMs: number;
  /** Seen by the client's list poll (every 250 ms). */
  allDoneMs: number;
  /** The last tls.issued or tls.renewal_failed event's `at`, from the first POST: the same end without the poll's delay. */
  lastEventMs: number;
  active: number;
  failed: { id: string; name: string; lastError: string | null }[];
  timedOut: number;
  perCertificate: Stats; // tls.pending → tls.issued, from the events
  phases: Record<string, Stats>;
  memory: { worker: Memory; console: Memory };
  cpuSeconds: { worker: number; console: number };
  load: Load;
};

type SseResult = {
  /** Why (3) was not measured, when the stream could not be opened. */
  unavailable?: string;
  received: number;
  workerEvents: Stats;
  statusEvents: Stats;
  consoleEvents: Stats;
  byType: Record<string, Stats>;
  missing: number;
  duplicates: number;
  outOfOrder: number;
  errors: string[];
};

type EngineResult = {
  engine: DatabaseKind;
  serveStartMs: number;
  rebuilt: boolean;
  single: {
    runs: number;
    portcullis: Stats;
    references: Record<ReferenceTool, Stats>;
    faster: ReferenceTool;
    ratio: number;
    ratioP95: number;
    phases: Record<string, Stats>;
    failures: Run[];
    load: Load;
    samples: Run[];
  };
  bulk: BulkResult;
  sse: SseResult;
  pass: { served: boolean; sse: boolean; bulkAllActive: boolean };
};

async function runEngine(kind: DatabaseKind, pebble: Pebble, upstreamPort: number, tools: ReferenceTool[], workDir: string, profileDir?: string): Promise<EngineResult> {
  say(`\n[${kind}] fresh database; starting portcullis serve…`);
  const database = await createBenchDatabase(kind, POSTGRES_ADMIN_URL);
  const untrack = [
    track("dirs", database.dataDir),
    ...(kind === "postgres" ? [track("databases", { adminUrl: POSTGRES_ADMIN_URL, name: new URL(database.url).pathname.slice(1) })] : []),
  ];
  const dropDatabase = onCleanup(`drop the ${kind} database`, async () => {
    await database.drop();
    for (const u of untrack) u();
  });
  await database.close(); // serve migrates and owns it from here
  let p: Portcullis | undefined;
  try {
    const engineProfileDir = profileDir ? path.join(profileDir, kind) : undefined;
    if (engineProfileDir) fs.mkdirSync(engineProfileDir, { recursive: true });
    p = await startPortcullis(database, pebble, engineProfileDir);
    say(`  console ${p.base} and worker answered after ${(p.startedInMs / 1000).toFixed(1)} s (console pid ${p.consolePid}, worker pid ${p.workerPid})`);
    const api = new Api(p.base, p.token);
    const account = await api.call<{ id: string }>("POST", "/api/v1/acme/accounts", { directoryUrl: pebble.directoryUrl, email: EMAIL, agreeTos: true });
    const httpsListener = await api.call<ListenerView>("POST", "/api/v1/listeners", {
      name: "bench https",
      kind: "https",
      bindAddress: "127.0.0.1",
      port: pebble.tlsPort,
      upstreamUrl: `http://127.0.0.1:${upstreamPort}`,
    });
    const httpListener = await api.call<ListenerView>("POST", "/api/v1/listeners", {
      name: "bench http",
      kind: "http",
      bindAddress: "127.0.0.1",
      port: pebble.httpPort,
      httpAction: "redirect",
      redirectPort: pebble.tlsPort,
    });
    await waitUntil("the edge listening on both listeners", async () => {
      const ids = await workerListeners(p!.workerHealth);
      return ids.includes(httpsListener.id) && ids.includes(httpListener.id);
    }, 15_000);
    const ctx: EngineContext = { kind, api, p, pebble, accountId: account.id, httpListener, httpsListener, mappings: [] };

    const single = await partOne(ctx, tools, workDir);
    const { bulk, sse } = await partTwoAndThree(ctx);
    return {
      engine: kind,
      serveStartMs: Math.round(p.startedInMs),
      rebuilt: p.rebuilt,
      single,
      bulk,
      sse,
      pass: {
        served: single.ratio <= TARGETS.servedVsReference,
        sse: !sse.unavailable && sse.workerEvents.p95 <= TARGETS.sseP95Ms,
        bulkAllActive: bulk.active === bulk.count,
      },
    };
  } catch (err) {
    if (p && !wasInterrupted()) process.stderr.write(`\n[${kind}] the serve log's last lines:\n${tail(p.logFile, 40)}\n`);
    throw err;
  } finally {
    // After Ctrl-C, cleanup.ts's own pass stops and drops everything, in order: running a cleanup
    // early from here would let that pass end, and the process exit, while it is still running.
    if (!wasInterrupted()) {
      await p?.stop();
      await dropDatabase();
    }
    if (p && profileDir) {
      for (const role of ["worker", "console"] as const) {
        const file = fs.readdirSync(path.join(profileDir, kind)).find((f) => f.startsWith(`${role}-`));
        if (file) printProfile(path.join(profileDir, kind, file), `${kind} ${role} during (2)`);
      }
    }
  }
}

/** Self time by function from a V8 CPU profile. */
function printProfile(file: string, label: string) {
  const { totalUs: total, functions } = profileSelfTimes(file, ROOT);
  say(`\n${label} profile ${path.relative(ROOT, file)}: ${(total / 1e6).toFixed(2)} s busy; self time:`);
  for (const [k, us] of functions.slice(0, 20)) say(`  ${((us / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
}

async function partOne(ctx: EngineContext, tools: ReferenceTool[], workDir: string): Promise<EngineResult["single"]> {
  const { kind, api, p, pebble } = ctx;
  const contenders: Contender[] = ["portcullis", ...tools];
  const toolDirs = Object.fromEntries(tools.map((t) => [t, fs.mkdtempSync(path.join(workDir, `${kind}-${t}-`))])) as Record<ReferenceTool, string>;
  say(`  (1) API call → served, ${RUNS} rounds after 1 warm-up (which also registers each ACME account); each round runs ${contenders.join(", ")} in rotating order…`);
  const samples: Run[] = [];
  const failures: Run[] = [];
  let load: Load | undefined;
  let measureLoad: (() => Load) | undefined;
  for (let round = 0; round <= RUNS; round++) {
    const warmup = round === 0;
    if (round === 1) measureLoad = otherLoad();
    const order = contenders.map((_, i) => contenders[(i + round) % contenders.length]);
    const line: string[] = [];
    for (const who of order) {
      const name = `${who === "portcullis" ? "p" : who}-${kind}-${round}-${randomLabel()}.example.test`;
      let run: Run;
      if (who === "portcullis") {
        await setHttpListener(api, p, ctx.httpListener, true);
        run = await portcullisOnce(ctx, name);
      } else {
        // One process may hold the HTTP-01 port at a time: the edge lets go of it first.
        await setHttpListener(api, p, ctx.httpListener, false);
        run = await referenceOnce(who, name, pebble, toolDirs[who]);
      }
      line.push(`${who} ${run.ok ? `${Math.round(run.ms)} ms` : "FAILED"}`);
      if (!run.ok) {
        failures.push(run);
        say(`      ${who} failed for ${name}: ${run.error}`);
      } else if (!warmup) samples.push(run);
    }
    say(`      ${warmup ? "warm-up" : `round ${round}`}: ${line.join(", ")}`);
  }
  load = measureLoad?.() ?? { otherCpus: NaN, stealCpus: NaN };
  await setHttpListener(api, p, ctx.httpListener, true);

  const msOf = (c: Contender) => samples.filter((s) => s.contender === c).map((s) => s.ms);
  const portcullis = stats(msOf("portcullis"));
  const references = Object.fromEntries(tools.map((t) => [t, stats(msOf(t))])) as Record<ReferenceTool, Stats>;
  const faster = tools.reduce((a, b) => (references[b].median < references[a].median ? b : a));
  const phaseNames = [...PHASE_POINTS.map(([, l]) => l), ...CLIENT_POINTS];
  const phases: Record<string, Stats> = {};
  for (const name of phaseNames) {
    const values = samples.filter((s) => s.phases?.[name] !== undefined).map((s) => s.phases![name]);
    if (values.length) phases[name] = stats(values);
  }
  return {
    runs: RUNS,
    portcullis,
    references,
    faster,
    ratio: round(portcullis.median / references[faster].median, 2),
    ratioP95: round(portcullis.p95 / references[faster].p95, 2),
    phases,
    failures,
    load,
    samples,
  };
}

/** The status of each of `ids`, from the newest-first list (they are the newest certificates). */
async function statusesOf(api: Api, ids: Set<string>): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  let cursor: string | null = null;
  do {
    const url: string = `/api/v1/certificates?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`;
    const page = await api.call<{ items: CertificateView[]; nextCursor: string | null }>("GET", url);
    for (const c of page.items) if (ids.has(c.id)) found.set(c.id, c.status);
    cursor = page.nextCursor;
  } while (cursor && found.size < ids.size);
  return found;
}

async function partTwoAndThree(ctx: EngineContext): Promise<{ bulk: BulkResult; sse: SseResult }> {
  const { kind, api, p } = ctx;
  await setHttpListener(api, p, ctx.httpListener, true);
  say(`  (2) ${BULK} certificates requested at once, with an SSE client open (3)…`);
  await sleep(2000); // let the edge's served check and the last round's work settle: idle figures are idle
  let unavailable: string | undefined;
  const sse = await openEventStream(p.base, p.token).catch(async (err: unknown) => {
    unavailable = (err as Error).message;
    say(`      (3) cannot be measured: ${unavailable}`);
    // Without a stream, (2) still reads the events from the list, after the newest one now.
    const newest = await api.call<{ items: EventView[] }>("GET", "/api/v1/events?order=newest&limit=1");
    return { cursor: newest.items[0]?.id ?? 0, received: [], errors: [], close: () => {} } satisfies SseClient;
  });
  const closeSse = onCleanup("close the event stream", () => sse.close());

  const idle = { worker: procStatus(p.workerPid, "VmRSS"), console: procStatus(p.consolePid, "VmRSS") };
  const peak = { ...idle };
  // Processes either one started (none expected); their memory is reported beside the parent's.
  const descendants = (pid: number): number[] => childrenOf(pid).flatMap((c) => [c, ...descendants(c)]);
  const helpers = { worker: descendants(p.workerPid), console: descendants(p.consolePid) };
  const helperPeak = { worker: 0, console: 0 };
  const rssSum = (pids: number[]) => pids.reduce((sum, pid) => sum + (procStatus(pid, "VmRSS") || 0), 0);
  let rssSamples = 0;
  const sampler = setInterval(() => {
    rssSamples++;
    peak.worker = Math.max(peak.worker, procStatus(p.workerPid, "VmRSS") || 0);
    peak.console = Math.max(peak.console, procStatus(p.consolePid, "VmRSS") || 0);
    if (helpers.worker.length) helperPeak.worker = Math.max(helperPeak.worker, rssSum(helpers.worker));
    if (helpers.console.length) helperPeak.console = Math.max(helperPeak.console, rssSum(helpers.console));
  }, RSS_SAMPLE_MS);
  const stopSampler = onCleanup("stop the RSS sampler", () => clearInterval(sampler));
  const toggleProfiles = () => {
    if (!PROFILE) return;
    for (const pid of [p.workerPid, p.consolePid]) process.kill(pid, "SIGUSR2");
  };
  toggleProfiles();
  const cpu0 = { worker: cpuSecondsOf(p.workerPid), console: cpuSecondsOf(p.consolePid) };
  const measureLoad = otherLoad();

  const names = Array.from({ length: BULK }, (_, i) => `bulk-${kind}-${String(i).padStart(3, "0")}-${randomLabel()}.example.test`);
  const t0 = wallNow();
  const created = await Promise.all(
    names.map((name) => api.call<CertificateView>("POST", "/api/v1/certificates", { source: "acme", domains: [name], challenge: "http-01", accountId: ctx.accountId })),
  );
  const postsMs = wallNow() - t0;
  const ids = new Set(created.map((c) => c.id));
  say(`      ${BULK} POSTs answered in ${Math.round(postsMs)} ms; waiting for every one to be active or failed…`);

  let statuses = new Map<string, string>();
  let lastReport = performance.now();
  const deadline = Date.now() + BULK_TIMEOUT_MS;
  let allDone = NaN;
  for (;;) {
    statuses = await statusesOf(api, ids);
    const settled = [...statuses.values()].filter((s) => s === "active" || s === "failed").length;
    if (settled === BULK) {
      allDone = wallNow() - t0;
      break;
    }
    if (performance.now() - lastReport > 10_000) {
      lastReport = performance.now();
      const count = (s: string) => [...statuses.values()].filter((x) => x === s).length;
      say(`      ${((wallNow() - t0) / 1000).toFixed(0)} s: ${count("active")} active, ${count("failed")} failed, ${count("requesting")} requesting, ${count("pending")} pending`);
    }
    if (Date.now() > deadline) break;
    await sleep(LIST_POLL_MS);
  }
  const load = measureLoad();
  toggleProfiles();
  const cpu = { worker: round(cpuSecondsOf(p.workerPid) - cpu0.worker, 1), console: round(cpuSecondsOf(p.consolePid) - cpu0.console, 1) };
  // The last events may still be on their way to the stream: wait for each certificate's final one, up to 5 s.
  const finalSeen = () =>
    unavailable ? Infinity : new Set(sse.received.filter((e) => e.certificateId && ids.has(e.certificateId) && (e.type === "tls.issued" || e.type === "tls.renewal_failed")).map((e) => e.certificateId)).size;
  const settledCount = [...statuses.values()].filter((s) => s === "active" || s === "failed").length;
  const waitUntilMs = Date.now() + 5000;
  while (finalSeen() < settledCount && Date.now() < waitUntilMs) await sleep(50);
  await stopSampler();
  await sleep(300);
  await closeSse();
  const memory = {
    worker: { idle: idle.worker, peakSampled: peak.worker, hwm: procStatus(p.workerPid, "VmHWM"), samples: rssSamples, children: { pids: helpers.worker, peakSampled: helperPeak.worker } },
    console: { idle: idle.console, peakSampled: peak.console, hwm: procStatus(p.consolePid, "VmHWM"), samples: rssSamples, children: { pids: helpers.console, peakSampled: helperPeak.console } },
  };

  const failedIds = [...statuses].filter(([, s]) => s === "failed").map(([id]) => id);
  const failed = await Promise.all(
    failedIds.map(async (id) => {
      const c = await api.call<CertificateView>("GET", `/api/v1/certificates/${id}`);
      return { id, name: c.name, lastError: c.lastError };
    }),
  );
  const active = [...statuses.values()].filter((s) => s === "active").length;

  // Every event recorded since the stream's cursor, from the list API: what the stream should have carried.
  const recorded: EventView[] = [];
  for (let after = sse.cursor; ; ) {
    const page = await api.call<{ items: EventView[]; cursor: number | null }>("GET", `/api/v1/events?after=${after}&limit=500`);
    recorded.push(...page.items);
    if (page.items.length < 500 || page.cursor === null) break;
    after = page.cursor;
  }
  const lastStreamed = Math.max(0, ...sse.received.map((e) => e.id));
  const expected = recorded.filter((e) => e.id <= lastStreamed);
  const streamedIds = new Set(sse.received.map((e) => e.id));
  const missing = expected.filter((e) => !streamedIds.has(e.id)).length;
  const duplicates = sse.received.length - streamedIds.size;
  let outOfOrder = 0;
  for (let i = 1; i < sse.received.length; i++) if (sse.received[i].id < sse.received[i - 1].id) outOfOrder++;

  // Per certificate: its events' times, from the list (the same rows the stream carried).
  const byCert = new Map<string, EventView[]>();
  for (const e of recorded) if (e.certificateId && ids.has(e.certificateId)) byCert.set(e.certificateId, [...(byCert.get(e.certificateId) ?? []), e]);
  const perCertificate: number[] = [];
  const finals = recorded.filter((e) => e.certificateId && ids.has(e.certificateId) && (e.type === "tls.issued" || e.type === "tls.renewal_failed"));
  const lastEventMs = finals.length ? Math.max(...finals.map((e) => Date.parse(e.at))) - t0 : NaN;
  const phaseValues = new Map<string, number[]>();
  for (const events of byCert.values()) {
    const at = (type: string) => {
      const e = events.find((x) => x.type === type);
      return e ? Date.parse(e.at) : undefined;
    };
    const pending = at("tls.pending");
    const issued = at("tls.issued");
    if (pending !== undefined && issued !== undefined) perCertificate.push(issued - pending);
    let prev = pending;
    for (const [type, label] of PHASE_POINTS.slice(1)) {
      const t = at(type);
      if (t === undefined || prev === undefined) continue;
      phaseValues.set(label, [...(phaseValues.get(label) ?? []), t - prev]);
      prev = t;
    }
  }
  const phases = Object.fromEntries([...phaseValues].map(([k, v]) => [k, stats(v)]));

  const latency = (filter: (e: Received) => boolean) => stats(sse.received.filter(filter).map((e) => e.receivedAt - Date.parse(e.at)));
  const types = [...new Set(sse.received.map((e) => e.type))];
  const sseResult: SseResult = {
    unavailable,
    received: sse.received.length,
    workerEvents: latency((e) => e.type !== "tls.pending"),
    statusEvents: latency((e) => WORKER_STATUS_EVENTS.has(e.type)),
    consoleEvents: latency((e) => e.type === "tls.pending"),
    byType: Object.fromEntries(types.map((t) => [t, latency((e) => e.type === t)])),
    missing,
    duplicates,
    outOfOrder,
    errors: sse.errors,
  };
  const bulk: BulkResult = {
    count: BULK,
    postsMs: round(postsMs),
    allDoneMs: round(allDone),
    lastEventMs: round(lastEventMs),
    active,
    failed,
    timedOut: BULK - active - failed.length,
    perCertificate: stats(perCertificate),
    phases,
    memory,
    cpuSeconds: cpu,
    load,
  };
  say(
    `      ${Number.isNaN(allDone) ? `NOT all settled within ${BULK_TIMEOUT_MS / 1000} s` : `all settled after ${(allDone / 1000).toFixed(1)} s`}: ${active} active, ${failed.length} failed;` +
      ` ${sse.received.length} events streamed, worker events median ${Math.round(sseResult.workerEvents.median)} ms, p95 ${Math.round(sseResult.workerEvents.p95)} ms`,
  );
  return { bulk, sse: sseResult };
}

// ---------------------------------------------------------------------------------------------
// Report

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MiB`;
const ms = (v: number) => (Number.isNaN(v) ? "—" : Math.round(v).toLocaleString("en"));

function printReport(results: EngineResult[], versions: Record<string, string>, meta: { tools: ReferenceTool[] }) {
  const lines: string[] = [];
  for (const r of results) {
    const s = r.single;
    const row = (label: string, st: Stats) => `    ${label.padEnd(40)}${ms(st.median).padStart(8)}${ms(st.p95).padStart(8)}${ms(st.max).padStart(8)}${String(st.n).padStart(5)}`;
    lines.push(
      "",
      `${r.engine} · pebble ${versions.pebble} · ${os.availableParallelism()} CPUs · serve started in ${(r.serveStartMs / 1000).toFixed(1)} s${r.rebuilt ? " (rebuilt the console first)" : ""}`,
      `  (1) one certificate: API call → served on the listener (ms)  median     p95     max    n`,
      row("Portcullis (API → TLS handshake serves it)", s.portcullis),
      ...meta.tools.map((t) => row(`${t} (process start → files on disk)`, s.references[t])),
      `    Portcullis ÷ ${s.faster} (the faster): median ${s.ratio.toFixed(2)}× (p95 ${s.ratioP95.toFixed(2)}×)   target ≤ ${TARGETS.servedVsReference.toFixed(1)}×  ${r.pass.served ? "PASS" : "FAIL"}`,
      `    where Portcullis's time goes (median ms, from its events): ${Object.entries(s.phases).map(([k, v]) => `${k} ${ms(v.median)}`).join(" · ")}`,
    );
    if (s.failures.length) lines.push(`    failures: ${s.failures.map((f) => `${f.contender} ${f.name}: ${f.error}`).join("; ")}`);
    lines.push(`    other processes on the machine used ${s.load.otherCpus} CPUs during these rounds${s.load.otherCpus > 0.25 ? "  WARNING: the machine was busy; rerun when it is quiet" : ""}`);
    const b = r.bulk;
    lines.push(
      `  (2) ${b.count} certificates at once: ${Number.isNaN(b.allDoneMs) ? "NOT all settled" : `all settled in ${(b.allDoneMs / 1000).toFixed(1)} s`} (${b.active} active, ${b.failed.length} failed${b.timedOut ? `, ${b.timedOut} still waiting` : ""}); ` +
        `last one issued ${(b.lastEventMs / 1000).toFixed(1)} s after the first POST (its event); ${(b.active / (b.lastEventMs / 1000)).toFixed(1)} certificates/s; POSTs answered in ${ms(b.postsMs)} ms`,
      `    each certificate, queued → issued: median ${ms(b.perCertificate.median)} ms, p95 ${ms(b.perCertificate.p95)} ms`,
      `    against one after another (estimated from (1)): ${b.count} × Portcullis alone (${ms(sumMedians(s.phases))} ms, queued → issued) = ${(b.allDoneMs / (b.count * sumMedians(s.phases))).toFixed(2)}×; ` +
        `${b.count} × ${s.faster} (${ms(s.references[s.faster].median)} ms) = ${(b.allDoneMs / (b.count * s.references[s.faster].median)).toFixed(2)}×`,
      `    where the time goes (median ms per certificate): ${Object.entries(b.phases).map(([k, v]) => `${k} ${ms(v.median)}`).join(" · ")}`,
      `    worker RSS: idle ${mib(b.memory.worker.idle)}, peak ${mib(b.memory.worker.peakSampled)} (VmHWM ${mib(b.memory.worker.hwm)}), CPU ${b.cpuSeconds.worker} s · ` +
        `console RSS: idle ${mib(b.memory.console.idle)}, peak ${mib(b.memory.console.peakSampled)} (VmHWM ${mib(b.memory.console.hwm)}), CPU ${b.cpuSeconds.console} s`,
      `    other processes used ${b.load.otherCpus} CPUs${b.load.otherCpus > 0.25 ? "  WARNING: the machine was busy" : ""}`,
    );
    for (const role of ["worker", "console"] as const) {
      const c = b.memory[role].children;
      if (c.pids.length) lines.push(`    the ${role} has ${c.pids.length} child process(es) (${c.pids.join(", ")}): peak ${mib(c.peakSampled)} more`);
    }
    for (const f of b.failed) lines.push(`    FAILED ${f.name}: ${f.lastError}`);
    const e = r.sse;
    if (e.unavailable) {
      lines.push(`  (3) event recorded → SSE client: not measured (${e.unavailable})`);
      continue;
    }
    lines.push(
      `  (3) event recorded → SSE client (ms)          median     p95     max    n`,
      row("worker's events", e.workerEvents),
      row("  status changes (requesting, issued…)", e.statusEvents),
      row("console's tls.pending (for comparison)", e.consoleEvents),
      `    target: p95 ≤ ${TARGETS.sseP95Ms} ms  ${r.pass.sse ? "PASS" : "FAIL"}; ${e.received} received, ${e.missing} missing, ${e.duplicates} duplicated, ${e.outOfOrder} out of order${e.errors.length ? `; stream errors: ${e.errors.join("; ")}` : ""}`,
      `    by type (median/p95): ${Object.entries(e.byType).map(([t, v]) => `${t} ${ms(v.median)}/${ms(v.p95)}`).join(" · ")}`,
    );
  }
  if (results.length > 1) {
    lines.push("", `summary                        ${results.map((r) => r.engine.padStart(12)).join("")}`);
    const add = (label: string, f: (r: EngineResult) => string) => lines.push(`${label.padEnd(31)}${results.map((r) => f(r).padStart(12)).join("")}`);
    add("(1) Portcullis median ms", (r) => ms(r.single.portcullis.median));
    add("(1) ÷ faster reference", (r) => `${r.single.ratio.toFixed(2)}× ${r.pass.served ? "ok" : "!!"}`);
    add(`(2) ${BULK} at once, s`, (r) => (r.bulk.allDoneMs / 1000).toFixed(1));
    add("(2) failed", (r) => String(r.bulk.failed.length + r.bulk.timedOut));
    add("(2) worker peak RSS", (r) => mib(r.bulk.memory.worker.peakSampled));
    add("(2) console peak RSS", (r) => mib(r.bulk.memory.console.peakSampled));
    add("(3) SSE p95 ms", (r) => `${ms(r.sse.workerEvents.p95)} ${r.pass.sse ? "ok" : "!!"}`);
  }
  say(lines.join("\n"));
}

/** One issuance alone, queued → issued: the sum of the median phases measured in (1). */
function sumMedians(phases: Record<string, Stats>): number {
  return PHASE_POINTS.slice(1).reduce((sum, [, label]) => sum + (phases[label]?.median ?? 0), 0);
}

// ---------------------------------------------------------------------------------------------

async function main() {
  const started = performance.now();
  const requested = process.env.BENCH_ENGINES?.split(",").map((s) => s.trim()).filter(Boolean);
  const pgUp = await postgresReachable(POSTGRES_ADMIN_URL);
  let engines: DatabaseKind[];
  if (requested?.length) {
    const bad = requested.filter((e) => e !== "sqlite" && e !== "postgres");
    if (bad.length) throw new Error(`BENCH_ENGINES: unknown engine ${bad.join(", ")} (accepted values: sqlite, postgres)`);
    engines = requested as DatabaseKind[];
    if (engines.includes("postgres") && !pgUp) throw new Error(`BENCH_ENGINES asks for postgres, but ${POSTGRES_ADMIN_URL} does not answer`);
  } else {
    engines = pgUp ? ["sqlite", "postgres"] : ["sqlite"];
    if (!pgUp) say(`PostgreSQL at ${POSTGRES_ADMIN_URL} does not answer: SQLite only.`);
  }
  const requestedTools = (process.env.BENCH_REFERENCES ?? REFERENCE_TOOLS.join(",")).split(",").map((s) => s.trim()).filter(Boolean);
  const unknownTools = requestedTools.filter((t) => !(REFERENCE_TOOLS as readonly string[]).includes(t));
  if (unknownTools.length || !requestedTools.length) throw new Error(`BENCH_REFERENCES: accepted values are ${REFERENCE_TOOLS.join(", ")} (comma separated, at least one)`);
  const tools = requestedTools as ReferenceTool[];
  for (const t of tools) {
    if (spawnSync("which", [t]).status !== 0) throw new Error(`${t} is not installed (apt-get install ${t}); or leave it out with BENCH_REFERENCES`);
  }
  const versions: Record<string, string> = Object.fromEntries([...tools, "pebble"].map((t) => [t, packageVersion(t === "certbot" ? "certbot" : t)]));
  versions.node = process.version;
  say(`Portcullis ACME benchmark: ${engines.join(", ")}; ${RUNS} runs each of Portcullis, ${tools.map((t) => `${t} ${versions[t]}`).join(", ")}; ${BULK} at once`);

  startReaper();
  const workDir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-bench-acme-"));
  const untrackWorkDir = track("dirs", workDir);
  onCleanup("remove the temporary directory", () => (fs.rmSync(workDir, { recursive: true, force: true }), untrackWorkDir()));
  const pebble = await startPebble();
  // pebble and challtestsrv are this process's children (tests/support/pebble.ts), in its process group.
  const pebbleUntrack = [
    track("dirs", pebble.dir),
    ...childrenOf(process.pid)
      .map((pid) => ({ pid, argv0: cmdline(pid)[0] ?? "" }))
      .filter((c) => c.argv0.startsWith("/usr/bin/pebble"))
      .map((c) => track("processes", c)),
  ];
  onCleanup("stop pebble", async () => {
    await pebble.stop();
    for (const u of pebbleUntrack) u();
  });
  say(`pebble ${pebble.directoryUrl}; HTTP-01 on :${pebble.httpPort}, TLS-ALPN-01 and the HTTPS listener on :${pebble.tlsPort}`);
  // The HTTPS listener's upstream; it is never measured.
  const upstream = http.createServer((_req, res) => res.end("portcullis bench upstream: ok\n"));
  await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
  onCleanup("stop the upstream", () => new Promise<void>((resolve) => upstream.close(() => resolve())));
  const upstreamPort = (upstream.address() as net.AddressInfo).port;

  const resultsDir = path.join(ROOT, "bench", "results");
  fs.mkdirSync(resultsDir, { recursive: true });
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const results: EngineResult[] = [];
  let failed = false;
  for (const engine of engines) {
    try {
      results.push(await runEngine(engine, pebble, upstreamPort, tools, workDir, PROFILE ? path.join(resultsDir, `acme-profile-${stamp}`) : undefined));
    } catch (err) {
      failed = true;
      if (wasInterrupted()) break;
      process.stderr.write(`\n[${engine}] benchmark failed: ${(err as Error).stack ?? String(err)}\n`);
    }
  }
  if (results.length) {
    printReport(results, versions, { tools });
    const file = path.join(resultsDir, `acme-${stamp}.json`);
    const totalSeconds = round((performance.now() - started) / 1000);
    fs.writeFileSync(file, `${JSON.stringify({ at: new Date().toISOString(), runs: RUNS, bulk: BULK, versions, cpus: os.availableParallelism(), totalSeconds, results }, null, 2)}\n`);
    say(`\nresults: ${path.relative(ROOT, file)} · total ${totalSeconds} s`);
  }
  if (failed) process.exitCode = 1;
}

main()
  .catch((err: unknown) => {
    if (wasInterrupted()) return;
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    // After Ctrl-C, cleanup.ts's pass is running and exits the process when it is done; what it
    // has not released by then stays listed for the reaper.
    if (wasInterrupted()) return;
    await cleanupAll();
    stopReaper();
  });
