import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { Worker } from "node:worker_threads";
import { sql, type Insertable } from "kysely";
import { createSelfSignedCertificateRecord, keyContext, type CertificateDetail } from "../lib/certificates";
import { Keyring, sealingKeyFromSecret } from "../lib/crypto/seal";
import { openDatabase, type Db } from "../lib/db/connection";
import type { Database } from "../lib/db/schema";
import { createListener, setMappings } from "../lib/listeners/index";
import { workerEnvironment } from "../worker/environment";
import { nativeTls } from "../lib/listeners/native-tls";
import { newId, nowIso } from "../lib/ids";
import { findFreePort } from "../lib/net";
import { inspectCertificatePem } from "../lib/pki/inspect";
import { fastSelfSignedCertificate } from "./fast-cert";
import { BENCH_ACTOR, BENCH_SECRET, createBenchDatabase, postgresReachable } from "./seed";
import { cleanupAll, onCleanup, wasInterrupted } from "./cleanup";
import { profileSelfTimes } from "./profile";
import { POSTGRES_ADMIN_URL, positiveInt, ROOT } from "./env";

// The edge against Debian's nginx, side by side on one machine: same certificate, same upstream, one
// worker process each, the same load generator and settings for both. The issue's targets:
//   (1) new TLS 1.3 handshakes/s, ECDSA P-256, no resumption        ≥ 0.85 × nginx
//   (2) keep-alive requests/s through the proxy                     ≥ 0.5 × nginx
//   (3) handshakes/s with 10,000 mapped hostnames vs 1              ≥ 0.95 ×
//   (4) resident memory with 10,000 certificates loaded             (no target: reported)
//   (5) certificate change → first handshake that serves it         ≤ 1 s
// Also reported, with no target: HTTP/2 requests through the proxy, and (5) on PostgreSQL, where a
// change reaches the edge by NOTIFY. See bench/README.md for how to read the figures.

const TARGETS = { handshakes: 0.85, proxy: 0.5, manyHostnames: 0.95, changeMs: 1000 } as const;

const SECONDS = positiveInt("BENCH_SECONDS", 10);
const HOSTNAMES = Math.max(2, Math.min(10_000, positiveInt("BENCH_HOSTNAMES", 10_000))); // setMappings allows 10,000 per listener
const CHANGES = positiveInt("BENCH_CHANGES", 10);
const CHANGES_MANY = positiveInt("BENCH_CHANGES_MANY", 3);
const ROUNDS = positiveInt("BENCH_ROUNDS", 3); // (1) and (2) alternate the servers, and (3) 1 and HOSTNAMES, this many times
// Each alternating run of (1) and (2), in whole seconds (s_time and wrk take no less). At least 5: every wrk run
// opens its 50 connections anew, and in a shorter run those handshakes weigh on the proxy figure.
const ROUND_SECONDS = Math.max(5, Math.round(SECONDS / ROUNDS));
const S_TIME_CLIENTS = positiveInt("BENCH_S_TIME_CLIENTS", 4);
const H2LOAD_CLIENTS = positiveInt("BENCH_H2LOAD_CLIENTS", 16);
const H2_STREAMS = positiveInt("BENCH_H2_STREAMS", 10); // concurrent streams per HTTP/2 connection in (2)
const WRK_CONNECTIONS = positiveInt("BENCH_WRK_CONNECTIONS", 50);
const WARMUP_SECONDS = 2;
const PROFILE = process.env.BENCH_EDGE_PROFILE === "1";
const S_TIME_MANY = process.env.BENCH_S_TIME_MANY === "1"; // (1) again with every certificate loaded: +25 s
const PIN = process.env.BENCH_PIN !== "0";

const MAIN_HOST = "bench.example.test";
const manyHost = (i: number) => `host-${String(i).padStart(5, "0")}.${MAIN_HOST}`;
const UPSTREAM_BODY = "portcullis bench upstream: ok\n";

// ---------------------------------------------------------------------------------------------
// Cleanup on success, failure and Ctrl-C: bench/cleanup.ts.

const say = (line: string) => process.stdout.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** For timeouts raced against something else: does not keep the process alive once the rest is done. */
const deadlineIn = (ms: number) => new Promise((r) => setTimeout(r, ms).unref());
function expect(condition: unknown, message: string): asserts condition {
  if (!condition) throw new Error(message);
}

// ---------------------------------------------------------------------------------------------
// Processes: every child in its own process group, stopped by its id on cleanup.

const CPUS = os.availableParallelism();
// The server under test gets CPU 0 to itself; load generators and the upstream share the others.
const SERVER_CPUS = PIN && CPUS >= 2 ? "0" : undefined;
const CLIENT_CPUS = PIN && CPUS >= 2 ? (CPUS === 2 ? "1" : `1-${CPUS - 1}`) : undefined;
const pinned = (cpus: string | undefined, argv: string[]) => (cpus ? ["taskset", "-c", cpus, ...argv] : argv);

type Started = { child: ChildProcess; pid: number; exited: Promise<void>; stop: () => Promise<void>; log: string };

function startProcess(label: string, argv: string[], opts: { logFile: string; env?: NodeJS.ProcessEnv; ipc?: boolean; stopSignal?: NodeJS.Signals }): Started {
  const log = fs.openSync(opts.logFile, "a");
  const child = spawn(argv[0], argv.slice(1), {
    cwd: ROOT,
    env: opts.env ?? process.env,
    stdio: opts.ipc ? ["ignore", log, log, "ipc"] : ["ignore", log, log],
    detached: true,
  });
  fs.closeSync(log);
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.on("error", () => {});
  const stop = onCleanup(`stop ${label}`, async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const signalGroup = (signal: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, signal);
      } catch {
        /* already gone */
      }
    };
    signalGroup(opts.stopSignal ?? "SIGTERM");
    const done = await Promise.race([exited.then(() => true), deadlineIn(8000).then(() => false)]);
    if (!done) {
      signalGroup("SIGKILL");
      await exited;
    }
  });
  expect(child.pid, `${label} did not start (${argv[0]})`);
  ourPids.add(child.pid);
  void exited.then(() => ourPids.delete(child.pid!));
  return { child, pid: child.pid, exited, stop, log: opts.logFile };
}

const running = new Set<ChildProcess>();
onCleanup("stop load generators", () => {
  for (const c of running) {
    try {
      process.kill(-c.pid!, "SIGKILL");
    } catch {
      /* gone */
    }
  }
});

/** Runs a tool to completion (killed after timeoutMs), capturing its output. */
function runTool(argv: string[], timeoutMs: number): Promise<{ code: number | null; stdout: string; stderr: string; wallMs: number }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn(argv[0], argv.slice(1), { stdio: ["ignore", "pipe", "pipe"], detached: true });
    running.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n(bench: killed after ${timeoutMs} ms)`;
      try {
        process.kill(-child.pid!, "SIGKILL");
      } catch {
        /* gone */
      }
    }, timeoutMs);
    child.on("error", (err) => (stderr += String(err)));
    child.on("close", (code) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({ code, stdout, stderr, wallMs: performance.now() - t0 });
    });
  });
}

function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

// ---------------------------------------------------------------------------------------------
// /proc: CPU time and memory of one process (all its threads).

const CLK_TCK = Number(spawnSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).stdout.trim()) || 100;

function procStat(pid: number): string[] {
  const text = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
  return text.slice(text.lastIndexOf(")") + 2).split(" "); // [0] is field 3 (state)
}
const cpuSeconds = (pid: number) => {
  const f = procStat(pid);
  return (Number(f[11]) + Number(f[12])) / CLK_TCK; // utime + stime
};
function procStatus(pid: number, field: string): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) * 1024 : NaN;
}
function pss(pid: number): number {
  try {
    const m = /^Pss:\s+(\d+) kB/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, "utf8"));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN;
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

// The machine may be shared: CPU time used by processes other than ours during a run is noise in
// the figures, so every run records it. Ours: this process and its reaped children (the load
// generators), and every server and the upstream (with nginx's workers).
const ourPids = new Set<number>();
function machineBusyTicks() {
  const f = fs.readFileSync("/proc/stat", "utf8").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
  return { busy: f[0] + f[1] + f[2], steal: f[7] ?? 0 }; // user, nice, system (not irq/softirq); steal
}
function ourTicks(): number {
  const ticks = (pid: number) => {
    try {
      const f = procStat(pid);
      return Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]); // utime stime cutime cstime
    } catch {
      return 0;
    }
  };
  let t = ticks(process.pid);
  for (const pid of ourPids) {
    t += ticks(pid);
    for (const child of childrenOf(pid)) t += ticks(child);
  }
  return t;
}
function otherLoad() {
  const m0 = machineBusyTicks();
  const o0 = ourTicks();
  const t0 = performance.now();
  return () => {
    const m1 = machineBusyTicks();
    const seconds = (performance.now() - t0) / 1000;
    const other = Math.max(0, m1.busy - m0.busy - (ourTicks() - o0)) / CLK_TCK;
    return { otherCpus: round(other / seconds, 3), stealCpus: round((m1.steal - m0.steal) / CLK_TCK / seconds, 3) };
  };
}

// ---------------------------------------------------------------------------------------------
// TLS probes

type Served = { fingerprint: string };
function servedCertificate(port: number, servername: string | undefined, timeoutMs = 5000): Promise<Served> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"] });
    const timer = setTimeout(() => socket.destroy(new Error(`no handshake within ${timeoutMs} ms`)), timeoutMs);
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      const cert = socket.getPeerX509Certificate();
      const protocol = socket.getProtocol();
      socket.destroy();
      if (!cert) return reject(new Error("no certificate served"));
      if (protocol !== "TLSv1.3") return reject(new Error(`negotiated ${protocol}, expected TLSv1.3`));
      resolve({ fingerprint: cert.fingerprint256 });
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function httpsGet(port: number, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: "127.0.0.1", port, servername: host, path: "/", headers: { host }, rejectUnauthorized: false, agent: false }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.setTimeout(5000, () => req.destroy(new Error("no answer within 5 s")));
    req.on("error", reject);
  });
}

async function waitUntil<T>(what: string, fn: () => Promise<T>, timeoutMs: number, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs / 1000} s (last: ${(last as Error)?.message ?? String(last)})`);
    await sleep(intervalMs);
  }
}

/** Both servers must serve the expected certificate and proxy the upstream's body before anything is measured. */
async function verifyServer(label: string, port: number, servername: string, fingerprint: string) {
  const served = await servedCertificate(port, servername);
  expect(served.fingerprint === fingerprint, `${label} served ${served.fingerprint} for ${servername}, expected ${fingerprint}`);
  const res = await httpsGet(port, servername);
  expect(res.status === 200 && res.body === UPSTREAM_BODY, `${label}: GET https://${servername}/ answered ${res.status} "${res.body.slice(0, 80)}", not the upstream's body`);
}

// A poller on its own thread, so that setMappings blocking this thread (better-sqlite3 is synchronous)
// does not delay the moment the new certificate is seen.
const POLLER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const tls = require("node:tls");
const { port, servername, fingerprint, intervalMs, timeoutMs } = workerData;
const deadline = Date.now() + timeoutMs;
let attempts = 0;
function once() {
  return new Promise((resolve) => {
    const s = tls.connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false });
    const done = (fp) => { s.destroy(); resolve(fp); };
    s.setTimeout(2000, () => done(null));
    s.once("secureConnect", () => done(s.getPeerX509Certificate()?.fingerprint256 ?? null));
    s.once("error", () => done(null));
  });
}
(async () => {
  for (;;) {
    attempts++;
    const fp = await once();
    if (fp === fingerprint) return parentPort.postMessage({ at: performance.timeOrigin + performance.now(), attempts });
    if (Date.now() > deadline) return parentPort.postMessage({ at: null, attempts });
    await new Promise((r) => setTimeout(r, intervalMs));
  }
})();
`;

/** Calls change() and returns the milliseconds from that call to the first handshake that serves `fingerprint`. */
async function timeChange(port: number, servername: string, fingerprint: string, change: () => Promise<unknown>): Promise<{ ms: number; changeCallMs: number }> {
  const worker = new Worker(POLLER_SOURCE, { eval: true, workerData: { port, servername, fingerprint, intervalMs: 10, timeoutMs: 30_000 } });
  const seen = new Promise<{ at: number | null }>((resolve, reject) => {
    worker.once("message", resolve);
    worker.once("error", reject);
  });
  await sleep(30); // let the poller start and see the old certificate at least once
  const t0 = performance.timeOrigin + performance.now();
  await change();
  const changeCallMs = performance.timeOrigin + performance.now() - t0;
  const { at } = await seen;
  await worker.terminate();
  expect(at !== null, `the new certificate (${fingerprint.slice(0, 23)}…) was not served within 30 s of the change`);
  return { ms: at - t0, changeCallMs };
}

// ---------------------------------------------------------------------------------------------
// Load generators, the same tool and settings for both servers. CPU time of the server process is
// read from /proc before and after: on a small machine the load generator, not the server, may be
// the limit, and "per server CPU-second" is then the comparable figure.

type Load = {
  tool: string;
  count: number;
  seconds: number;
  perSecond: number;
  serverCpuSeconds: number;
  serverCpuShare: number;
  perServerCpuSecond: number;
  errors: number;
  /** CPUs' worth of time that other processes on the machine (and the hypervisor: steal) took during the run. */
  otherCpus?: number;
  stealCpus?: number;
};

function load(tool: string, count: number, seconds: number, cpu: number, errors: number): Load {
  return {
    tool,
    count,
    seconds: round(seconds, 2),
    perSecond: round(count / seconds, 1),
    serverCpuSeconds: round(cpu, 2),
    serverCpuShare: round(cpu / seconds, 3),
    perServerCpuSecond: round(count / cpu, 1),
    errors,
  };
}
const round = (v: number, digits = 2) => Math.round(v * 10 ** digits) / 10 ** digits;
const ratio = (a: number, b: number) => round(a / b, 3);
/** Several runs of one tool against one server, as one figure. */
function combine(runs: Load[]): Load {
  const sum = (f: (r: Load) => number) => runs.reduce((a, r) => a + f(r), 0);
  const seconds = sum((r) => r.seconds);
  return {
    ...load(runs[0].tool, sum((r) => r.count), seconds, sum((r) => r.serverCpuSeconds), sum((r) => r.errors)),
    otherCpus: round(sum((r) => (r.otherCpus ?? 0) * r.seconds) / seconds, 3),
    stealCpus: round(sum((r) => (r.stealCpus ?? 0) * r.seconds) / seconds, 3),
  };
}

/**
 * The same tool against each server in turn, ROUNDS times, ROUND_SECONDS a run: a machine whose speed drifts over
 * the minutes of a benchmark (other guests on the host) then slows every server alike, and the rounds show how
 * far the figure moves. Each server's runs are added up into one figure.
 */
async function alternate<K extends string>(servers: Record<K, (seconds: number, round: number) => Promise<Load>>): Promise<Record<K, { combined: Load; runs: Load[] }>> {
  const names = Object.keys(servers) as K[];
  const runs = Object.fromEntries(names.map((k) => [k, [] as Load[]])) as Record<K, Load[]>;
  for (let round = 1; round <= ROUNDS; round++) for (const k of names) runs[k].push(await servers[k](ROUND_SECONDS, round));
  return Object.fromEntries(names.map((k) => [k, { combined: combine(runs[k]), runs: runs[k] }])) as Record<K, { combined: Load; runs: Load[] }>;
}

/** Portcullis ÷ nginx per server CPU-second in each round of an alternating measurement. */
const roundRatios = (edge: Load[], nginx: Load[]) => edge.map((e, i) => ratio(e.perServerCpuSecond, nginx[i].perServerCpuSecond));

/** New TLS 1.3 handshakes, no resumption, no HTTP: S_TIME_CLIENTS parallel `openssl s_time -new`. */
async function sTime(port: number, serverPid: () => number, seconds: number): Promise<Load> {
  const argv = pinned(CLIENT_CPUS, ["openssl", "s_time", "-connect", `127.0.0.1:${port}`, "-new", "-tls1_3", "-time", String(seconds)]);
  const pid = serverPid();
  const other = otherLoad();
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  const runs = await Promise.all(Array.from({ length: S_TIME_CLIENTS }, () => runTool(argv, (seconds + 20) * 1000)));
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  let count = 0;
  for (const r of runs) {
    const m = /(\d+) connections in \d+ real seconds/.exec(r.stdout);
    expect(m && r.code === 0, `openssl s_time failed (exit ${r.code}): ${(r.stdout + r.stderr).trim().slice(-400)}`);
    count += Number(m[1]);
  }
  expect(count > 0, "openssl s_time made no connection");
  return { ...load(`openssl s_time -new ×${S_TIME_CLIENTS}`, count, wall, cpu, 0), ...other() };
}

/** New connections with SNI: handshake + one proxied GET each (Connection: close), h2load over HTTP/1.1. */
async function h2load(port: number, host: string, serverPid: () => number, requests: number): Promise<Load> {
  const argv = pinned(CLIENT_CPUS, [
    "h2load", "--h1", "-c", String(H2LOAD_CLIENTS), "-n", String(requests), "-H", "Connection: close",
    `--connect-to=127.0.0.1:${port}`, `https://${host}:${port}/`,
  ]);
  const pid = serverPid();
  const other = otherLoad();
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  // h2load's -D (duration) does not stop clients that reconnect after "Connection: close" (nghttp2 1.52);
  // a request count, sized from the handshake rate, bounds it instead.
  const r = await runTool(argv, Math.max(60, SECONDS * 6) * 1000);
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  const fin = /finished in ([\d.]+)(m?s),/.exec(r.stdout); // "finished in 987.65ms," below a second
  const req = /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(r.stdout);
  const codes = /status codes: (\d+) 2xx/.exec(r.stdout);
  expect(fin && req && codes && r.code === 0, `h2load failed (exit ${r.code}): ${(r.stdout + r.stderr).trim().slice(-600)}`);
  const ok = Number(codes[1]);
  expect(ok > 0, `h2load: no 2xx answer: ${r.stdout.slice(-600)}`);
  const errors = Number(req[2]) + Number(req[3]) + (Number(req[1]) - ok);
  const seconds = fin[2] === "ms" ? Number(fin[1]) / 1000 : Number(fin[1]);
  return { ...load(`h2load --h1 -c ${H2LOAD_CLIENTS} (Connection: close)`, ok, seconds > 0 ? seconds : wall, cpu, errors), ...other() };
}

/** Keep-alive requests through the proxy: wrk, one thread. */
async function wrk(port: number, serverPid: () => number, seconds: number): Promise<Load> {
  const argv = pinned(CLIENT_CPUS, ["wrk", "-t1", `-c${WRK_CONNECTIONS}`, `-d${seconds}s`, `https://localhost:${port}/`]);
  const pid = serverPid();
  const other = otherLoad();
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  const r = await runTool(argv, (seconds + 30) * 1000);
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  const m = /(\d+) requests in ([\d.]+)(m?s)/.exec(r.stdout);
  expect(m && r.code === 0, `wrk failed (exit ${r.code}): ${(r.stdout + r.stderr).trim().slice(-400)}`);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(r.stdout)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(r.stdout);
  const sockErrors = sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0;
  const wrkSeconds = m[3] === "ms" ? Number(m[2]) / 1000 : Number(m[2]);
  return { ...load(`wrk -t1 -c${WRK_CONNECTIONS}`, Number(m[1]) - non2xx, wrkSeconds || wall, cpu, non2xx + sockErrors), ...other() };
}

/** Keep-alive requests through the proxy over HTTP/2: h2load, H2LOAD_CLIENTS connections, H2_STREAMS streams each. */
async function h2Streams(port: number, serverPid: () => number, seconds: number): Promise<Load> {
  const argv = pinned(CLIENT_CPUS, ["h2load", "-c", String(H2LOAD_CLIENTS), "-m", String(H2_STREAMS), "-D", String(seconds), `https://localhost:${port}/`]);
  const pid = serverPid();
  const other = otherLoad();
  const cpu0 = cpuSeconds(pid);
  const t0 = performance.now();
  const r = await runTool(argv, (seconds + 30) * 1000);
  const wall = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(pid) - cpu0;
  const fin = /finished in ([\d.]+)(m?s),/.exec(r.stdout);
  const req = /requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored/.exec(r.stdout);
  const codes = /status codes: (\d+) 2xx/.exec(r.stdout);
  expect(fin && req && codes && r.code === 0, `h2load failed (exit ${r.code}): ${(r.stdout + r.stderr).trim().slice(-600)}`);
  expect(/Application protocol: h2/.test(r.stdout), `h2load did not negotiate HTTP/2: ${r.stdout.slice(0, 600)}`);
  // With -D, responses whose headers came before the deadline count as 2xx even if their stream did not finish.
  const succeeded = Number(req[2]);
  const errors = Number(req[3]) + Number(req[4]) + Math.max(0, succeeded - Number(codes[1]));
  const measured = fin[2] === "ms" ? Number(fin[1]) / 1000 : Number(fin[1]);
  return { ...load(`h2load -c ${H2LOAD_CLIENTS} -m ${H2_STREAMS} (HTTP/2)`, succeeded, measured > 0 ? measured : wall, cpu, errors), ...other() };
}

// ---------------------------------------------------------------------------------------------
// The upstream, nginx and the edge

const UPSTREAM_SOURCE = `
import http from "node:http";
const body = Buffer.from(${JSON.stringify(UPSTREAM_BODY)});
const server = http.createServer((req, res) => {
  req.resume();
  res.writeHead(200, { "Content-Type": "text/plain", "Content-Length": body.length });
  res.end(body);
});
server.keepAliveTimeout = 65000;
server.listen(Number(process.argv[2]), "127.0.0.1");
`;

async function startUpstream(dir: string): Promise<{ port: number; proc: Started }> {
  const port = await findFreePort();
  const script = path.join(dir, "upstream.mjs");
  fs.writeFileSync(script, UPSTREAM_SOURCE);
  const proc = startProcess("the upstream", pinned(CLIENT_CPUS, [process.execPath, script, String(port)]), { logFile: path.join(dir, "upstream.log") });
  await waitUntil("the upstream", async () => {
    const res = await fetch(`http://127.0.0.1:${port}/`);
    expect((await res.text()) === UPSTREAM_BODY, "unexpected upstream body");
  }, 10_000);
  return { port, proc };
}

// The reference for (1): Node's https server with one certificate, answering nothing but the handshake's
// HTTP/1.1 set-up, so that the edge's handshake rate can be read against what Node itself manages.
const NODE_HTTPS_SOURCE = `
import fs from "node:fs";
import https from "node:https";
const [port, cert, key] = process.argv.slice(2);
const server = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key), minVersion: "TLSv1.3" }, (req, res) => res.end("ok"));
server.listen(Number(port), "127.0.0.1");
`;

async function startNodeHttps(dir: string, cert: Cert): Promise<{ port: number; proc: Started }> {
  const port = await findFreePort();
  const script = path.join(dir, "node-https.mjs");
  fs.writeFileSync(script, NODE_HTTPS_SOURCE);
  const proc = startProcess("Node's https server", pinned(SERVER_CPUS, [process.execPath, script, String(port), cert.certFile, cert.keyFile]), { logFile: path.join(dir, "node-https.log") });
  await waitUntil("Node's https server", async () => expect((await servedCertificate(port, undefined, 2000)).fingerprint === cert.fingerprint, "not yet"), 10_000);
  return { port, proc };
}

type NginxSite = { names: string[]; certFile: string; keyFile: string };

function nginxConfig(dir: string, label: string, port: number, upstreamPort: number, sites: NginxSite[]): string {
  const tmp = path.join(dir, "nginx-tmp");
  const location = `    location / {
      proxy_pass http://bench_upstream;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto https;
      proxy_set_header X-Forwarded-Host $host;
    }`;
  const servers = sites.map(
    (s, i) => `  server {
    listen 127.0.0.1:${port} ssl http2${i === 0 ? " default_server" : ""};
    server_name ${s.names.join(" ")};
    ssl_certificate ${s.certFile};
    ssl_certificate_key ${s.keyFile};
${location}
  }`,
  );
  return `# Generated by bench/edge.ts
worker_processes 1;
daemon off;
master_process on;
pid ${path.join(dir, `nginx-${label}.pid`)};
error_log ${path.join(dir, "nginx-error.log")} warn;
events { worker_connections 10240; }
http {
  access_log off;
  client_body_temp_path ${tmp}/body;
  proxy_temp_path ${tmp}/proxy;
  fastcgi_temp_path ${tmp}/fastcgi;
  uwsgi_temp_path ${tmp}/uwsgi;
  scgi_temp_path ${tmp}/scgi;
  server_names_hash_max_size 65536;
  server_names_hash_bucket_size 128;
  ssl_protocols TLSv1.3;
  ssl_session_tickets off;
  ssl_session_cache off;
  # Node's http server has no per-connection request limit; nginx's default (1000) would add handshakes.
  keepalive_requests 1000000;
  keepalive_timeout 65s;
  upstream bench_upstream {
    server 127.0.0.1:${upstreamPort};
    keepalive 64;
  }
${servers.join("\n")}
}
`;
}

type Nginx = { port: number; proc: Started; conf: string; worker: () => number; startMs: number };

async function startNginx(dir: string, label: string, port: number, config: string, probe: { host: string; fingerprint: string }): Promise<Nginx> {
  fs.mkdirSync(path.join(dir, "nginx-tmp"), { recursive: true });
  const conf = path.join(dir, `nginx-${label}.conf`);
  fs.writeFileSync(conf, config);
  const test = spawnSync("nginx", ["-t", "-q", "-c", conf, "-p", dir], { encoding: "utf8" });
  expect(test.status === 0, `nginx -t rejected ${conf}: ${test.stderr.trim()}`);
  const t0 = performance.now();
  const proc = startProcess(`nginx (${label})`, pinned(SERVER_CPUS, ["nginx", "-c", conf, "-p", dir]), { logFile: path.join(dir, `nginx-${label}.out`) });
  await waitUntil(`nginx (${label}) serving`, async () => {
    if (proc.child.exitCode !== null) throw new Error(`nginx exited: ${tail(path.join(dir, "nginx-error.log"))}`);
    const s = await servedCertificate(port, probe.host, 2000);
    expect(s.fingerprint === probe.fingerprint, "not yet the expected certificate");
  }, 120_000, 100);
  const startMs = performance.now() - t0;
  const worker = () => {
    const workers = childrenOf(proc.pid);
    expect(workers.length >= 1, "nginx has no worker process");
    // After a reload the old worker may linger while it closes connections: the newest is the live one.
    return Math.max(...workers);
  };
  return { port, proc, conf, worker, startMs };
}

type EdgeProc = {
  proc: Started;
  startMs: number;
  readyMs: number;
  memory: () => Promise<NodeJS.MemoryUsage>;
  /** Whether changes reach it by NOTIFY (PostgreSQL, LISTEN connection up). */
  notified: () => Promise<boolean>;
  /** With BENCH_EDGE_PROFILE=1, a CPU profile of the edge while fn runs, written to bench/results/edge-profile-<timestamp>/<name>.cpuprofile. */
  profiled: <T>(name: string, fn: () => Promise<T>) => Promise<T>;
};

let profileDir: string | undefined;
const profiles: string[] = [];

/** The edge alone in its own process, on a SQLite file or a PostgreSQL URL; its log goes to logDir. */
async function startEdge(database: string, label: string, logDir: string): Promise<EdgeProc> {
  const node = [process.execPath, "--import", "tsx", path.join(ROOT, "bench", "edge-runner.ts"), database];
  // The environment `portcullis serve` gives its worker (glibc's malloc cache: worker/environment.ts).
  const env = workerEnvironment({ ...process.env, BENCH_EDGE_SECRET: BENCH_SECRET });
  const t0 = performance.now();
  const proc = startProcess(`the edge (${label})`, pinned(SERVER_CPUS, node), { logFile: path.join(logDir, `edge-${label}.log`), env, ipc: true });
  const ready = await Promise.race([
    new Promise<{ startMs: number }>((resolve) => proc.child.on("message", (m: { type?: string; startMs: number }) => m.type === "ready" && resolve(m))),
    proc.exited.then(() => {
      throw new Error(`the edge (${label}) exited before it was ready; its log:\n${tail(proc.log)}`);
    }),
    deadlineIn(300_000).then(() => {
      throw new Error(`the edge (${label}) was not ready within 300 s; its log:\n${tail(proc.log)}`);
    }),
  ]);
  const ask = <T>(message: object, answer: string) =>
    new Promise<T>((resolve, reject) => {
      const onMessage = (m: { type?: string }) => {
        if (m.type !== answer) return;
        proc.child.off("message", onMessage);
        resolve(m as T);
      };
      proc.child.on("message", onMessage);
      if (!proc.child.send(message)) reject(new Error("the edge's IPC channel is closed"));
    });
  const memory = async () => (await ask<{ usage: NodeJS.MemoryUsage }>({ type: "memory" }, "memory")).usage;
  const notified = async () => (await ask<{ notified: boolean }>({ type: "status" }, "status")).notified;
  const profiled = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    if (!profileDir) return fn();
    fs.mkdirSync(profileDir, { recursive: true });
    const file = path.join(profileDir, `${name}.cpuprofile`);
    await ask({ type: "profile-start" }, "profile-started");
    try {
      return await fn();
    } finally {
      await ask({ type: "profile-stop", file }, "profile-stopped");
      profiles.push(file);
    }
  };
  // The edge stops on "stop" over IPC: a clean exit.
  const stopProc = proc.stop;
  proc.stop = async () => {
    if (proc.child.connected) proc.child.send({ type: "stop" });
    await Promise.race([proc.exited, deadlineIn(10_000)]);
    await stopProc();
  };
  return { proc, startMs: ready.startMs, readyMs: performance.now() - t0, memory, notified, profiled };
}

/** The served-certificate check that follows every reload: wait for it to cover every mapping. */
async function waitForServedCheck(db: Db, listenerId: string, since: string, mappings: number, timeoutMs = 300_000): Promise<number> {
  const t0 = performance.now();
  await waitUntil("the edge's served-certificate check", async () => {
    const row = await db
      .selectFrom("listener_checks")
      .select((eb) => eb.fn.countAll<number>().as("n"))
      .where("listener_id", "=", listenerId)
      .where("checked_at", ">=", since)
      .executeTakeFirstOrThrow();
    expect(Number(row.n) >= mappings, `${row.n} of ${mappings} checked`);
  }, timeoutMs, 200);
  return performance.now() - t0;
}

/** Milliseconds from `sinceMs` to the served check that found `hostname` serving `fingerprint` (its checked_at). */
async function waitForCheckOf(db: Db, listenerId: string, hostname: string, fingerprint: string, sinceMs: number, timeoutMs = 60_000): Promise<number> {
  const row = await waitUntil(`the served check of ${hostname}`, async () => {
    const check = await db
      .selectFrom("listener_checks")
      .select(["checked_at", "status", "served_fingerprint"])
      .where("listener_id", "=", listenerId)
      .where("hostname", "=", hostname)
      .executeTakeFirstOrThrow();
    expect(check.served_fingerprint === fingerprint && check.status === "serving" && Date.parse(check.checked_at) >= sinceMs, "not checked yet");
    return check;
  }, timeoutMs, 20);
  return Date.parse(row.checked_at) - sinceMs;
}

/**
 * (5) on PostgreSQL, where a change reaches the edge by NOTIFY: a new database on POSTGRES_ADMIN_URL with the two
 * certificates and one mapping, an edge on it, and CHANGES changes timed as on SQLite. Skipped without PostgreSQL.
 */
async function changeOnPostgres(dir: string, keyring: Keyring, upstreamPort: number): Promise<{ portcullis: ChangeStats; notified: boolean; setMappingsMs: number[] } | undefined> {
  if (!(await postgresReachable(POSTGRES_ADMIN_URL))) {
    say(`  (5) on PostgreSQL: skipped, nothing answers at ${POSTGRES_ADMIN_URL.replace(/\/\/[^@/]*@/, "//")} (set BENCH_POSTGRES_URL)`);
    return undefined;
  }
  say(`  (5) on PostgreSQL: certificate change → served, ${CHANGES} times…`);
  const database = await createBenchDatabase("postgres", POSTGRES_ADMIN_URL);
  const drop = onCleanup("drop the PostgreSQL database", () => database.drop());
  const pgDir = path.join(dir, "postgres");
  fs.mkdirSync(pgDir);
  const certA = await mainCertificate(database.db, pgDir, keyring, "bench-a");
  const certB = await mainCertificate(database.db, pgDir, keyring, "bench-b");
  const port = await findFreePort();
  const listener = await createListener(database.db, BENCH_ACTOR, {
    name: "bench https",
    kind: "https",
    bindAddress: "127.0.0.1",
    port,
    upstreamUrl: `http://127.0.0.1:${upstreamPort}`,
    minTlsVersion: "TLSv1.3",
    defaultCertificateId: certA.id,
  });
  await setMappings(database.db, BENCH_ACTOR, listener.id, { mappings: [{ hostname: MAIN_HOST, certificateId: certA.id }] });
  const edge = await startEdge(database.url, "postgres", dir);
  try {
    await waitUntil("the edge on PostgreSQL serving", () => verifyServer("the edge", port, MAIN_HOST, certA.fingerprint), 30_000);
    const notified = await waitUntil("the edge's LISTEN connection", async () => expect(await edge.notified(), "not listening yet"), 10_000).then(
      () => true,
      () => false,
    );
    const ms: number[] = [];
    const setMappingsMs: number[] = [];
    for (let i = 0; i < CHANGES; i++) {
      const to = i % 2 === 0 ? certB : certA;
      await sleep(100 + Math.random() * 300);
      const t = await timeChange(port, MAIN_HOST, to.fingerprint, () =>
        setMappings(database.db, BENCH_ACTOR, listener.id, { mappings: [{ hostname: MAIN_HOST, certificateId: to.id }] }),
      );
      ms.push(t.ms);
      setMappingsMs.push(round(t.changeCallMs, 1));
    }
    say(`      Portcullis median ${int(median(ms))} ms, max ${int(Math.max(...ms))} ms${notified ? " (NOTIFY)" : " (WARNING: the LISTEN connection was not up: these are poll times)"}`);
    return { portcullis: changeStats(ms), notified, setMappingsMs };
  } finally {
    await edge.proc.stop();
    await drop();
  }
}

// ---------------------------------------------------------------------------------------------
// Certificates

type Cert = { id: string; fingerprint: string; certFile: string; keyFile: string };

async function mainCertificate(db: Db, dir: string, keyring: Keyring, name: string): Promise<Cert> {
  const detail: CertificateDetail = await createSelfSignedCertificateRecord(db, keyring, BENCH_ACTOR, {
    name,
    domains: [MAIN_HOST, "localhost"],
    keyType: "ecdsa-p256",
    validityDays: 90,
  });
  const row = await db.selectFrom("certificates").select(["chain_pem", "sealed_key"]).where("id", "=", detail.id).executeTakeFirstOrThrow();
  const certFile = path.join(dir, `${name}.crt`);
  const keyFile = path.join(dir, `${name}.key`);
  fs.writeFileSync(certFile, row.chain_pem!);
  fs.writeFileSync(keyFile, keyring.open(row.sealed_key!, keyContext(detail.id)), { mode: 0o600 });
  return { id: detail.id, fingerprint: detail.fingerprintSha256!, certFile, keyFile };
}

/** `count` distinct ECDSA P-256 certificates, one per host name, as rows (for the edge) and files (for nginx). */
async function manyCertificates(db: Db, parent: string, keyring: Keyring, count: number) {
  const dir = path.join(parent, "many");
  fs.mkdirSync(dir);
  const out: { host: string; id: string; fingerprint: string; file: string }[] = [];
  const at = nowIso();
  const BATCH = 250;
  for (let start = 1; start <= count; start += BATCH) {
    const rows: Insertable<Database["certificates"]>[] = [];
    for (let i = start; i < Math.min(count + 1, start + BATCH); i++) {
      const host = manyHost(i);
      const { certificatePem, privateKeyPem } = fastSelfSignedCertificate([host]);
      const facts = inspectCertificatePem(certificatePem);
      const id = newId("crt");
      const file = path.join(dir, `${host}.pem`);
      fs.writeFileSync(file, certificatePem + privateKeyPem, { mode: 0o600 });
      out.push({ host, id, fingerprint: facts.fingerprintSha256, file });
      rows.push({
        id,
        name: host,
        source: "self_signed",
        status: "active",
        domains: JSON.stringify([host]),
        key_type: "ecdsa-p256",
        validity_days: 90,
        chain_pem: certificatePem,
        sealed_key: keyring.seal(privateKeyPem, keyContext(id)),
        subject: facts.subject,
        issuer: facts.issuer,
        serial: facts.serialNumber,
        fingerprint_sha256: facts.fingerprintSha256,
        not_before: facts.notBefore.toISOString(),
        not_after: facts.notAfter.toISOString(),
        renew_at: null,
        renew_reason: "benchmark",
        next_attempt_at: null,
        attempts: 0,
        last_error: null,
        lease_owner: null,
        lease_expires_at: null,
        created_by: null,
        created_at: at,
        updated_at: at,
      });
    }
    await db.insertInto("certificates").values(rows).execute();
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Statistics and the report

function median(xs: number[]) {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
}
const changeStats = (xs: number[]) => ({ n: xs.length, medianMs: round(median(xs), 1), maxMs: round(Math.max(...xs), 1), samplesMs: xs.map((x) => round(x, 1)) });
type ChangeStats = ReturnType<typeof changeStats>;

function toolVersions() {
  const first = (argv: string[]) => {
    const r = spawnSync(argv[0], argv.slice(1), { encoding: "utf8" });
    return `${r.stdout}${r.stderr}`.trim().split("\n")[0] ?? "?";
  };
  return {
    node: process.version,
    nginx: first(["nginx", "-v"]).replace("nginx version: ", ""),
    openssl: first(["openssl", "version"]),
    nodeOpenssl: process.versions.openssl,
    // What the edge process does (bench/edge-runner.ts): the same bindings, the same variable.
    edgeTls: nativeTls && process.env.PORTCULLIS_EDGE_TLS !== "portable" ? "native (Node's TLS stream driven directly)" : "portable (net.Server + tls.TLSSocket)",
    wrk: first(["wrk", "-v"]).split(" [")[0],
    h2load: first(["h2load", "--version"]),
    cpus: CPUS,
    cpuModel: os.cpus()[0]?.model ?? "?",
    kernel: os.release(),
  };
}

type Result = {
  at: string;
  seconds: number;
  rounds: number;
  hostnames: number;
  pinning: { server: string | null; clients: string | null };
  versions: ReturnType<typeof toolVersions>;
  handshakes: { portcullis: Load; nginx: Load; nodeHttps: Load; roundRatios: number[]; nodeRoundRatios: number[] };
  proxy: { portcullis: Load; nginx: Load; roundRatios: number[] };
  proxyH2: { portcullis: Load; nginx: Load; roundRatios: number[] };
  sni: {
    one: { portcullis: Load; nginx: Load };
    many: { portcullis: Load; nginx: Load };
    roundRatios: { portcullis: number[]; nginx: number[] };
    runs: Record<"oneNginx" | "manyNginx" | "oneEdge" | "manyEdge", Load[]>;
  };
  handshakesMany?: { portcullis: Load; nginx: Load };
  memory: {
    one: { portcullis: { rss: number; hwm: number; heapUsed: number; external: number }; nginx: { workerRss: number; masterRss: number; pssTotal: number } };
    many: { portcullis: { rss: number; hwm: number; heapUsed: number; external: number }; nginx: { workerRss: number; masterRss: number; pssTotal: number } };
  };
  change: {
    one: { portcullis: ChangeStats; nginx: ChangeStats; setMappingsMs: number[] };
    many: { portcullis: ChangeStats; nginx?: ChangeStats; setMappingsMs: number[]; servedCheckMs: number[] };
    postgres?: { portcullis: ChangeStats; notified: boolean; setMappingsMs: number[] };
  };
  setup: { generateMs: number; setMappingsManyMs: number; edgeStartOneMs: number; edgeStartManyMs: number; servedCheckManyMs: number; nginxStartOneMs: number; nginxStartManyMs: number };
  ratios: Record<string, number>;
  pass: Record<string, boolean>;
};

const int = (v: number) => Math.round(v).toLocaleString("en");
const medMax = (c: ChangeStats) => (c.n === 1 ? `${int(c.medianMs)} ms` : `${int(c.medianMs)} / ${int(c.maxMs)} ms`);
const mib = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MiB`;
const pct = (share: number) => `${Math.round(share * 100)}%`;

/** Every measured run's Load in the result, with a label. */
function allLoads(r: Result): [string, Load][] {
  const out: [string, Load][] = [
    ["(1) Portcullis", r.handshakes.portcullis], ["(1) nginx", r.handshakes.nginx], ["(1) Node https", r.handshakes.nodeHttps],
    ["(2) Portcullis", r.proxy.portcullis], ["(2) nginx", r.proxy.nginx],
    ["(2) Portcullis, HTTP/2", r.proxyH2.portcullis], ["(2) nginx, HTTP/2", r.proxyH2.nginx],
    ["(3) Portcullis, 1", r.sni.one.portcullis], ["(3) nginx, 1", r.sni.one.nginx],
    ["(3) Portcullis, many", r.sni.many.portcullis], ["(3) nginx, many", r.sni.many.nginx],
  ];
  if (r.handshakesMany) out.push(["(1) Portcullis, many", r.handshakesMany.portcullis], ["(1) nginx, many", r.handshakesMany.nginx]);
  return out;
}

function machineLine(r: Result): string {
  const loads = allLoads(r);
  const worst = loads.reduce((a, b) => ((b[1].otherCpus ?? 0) > (a[1].otherCpus ?? 0) ? b : a));
  const steal = Math.max(...loads.map(([, l]) => l.stealCpus ?? 0));
  const other = worst[1].otherCpus ?? 0;
  const text = `other processes on this machine used up to ${other.toFixed(2)} CPU during a measured run (${worst[0]}); hypervisor steal up to ${steal.toFixed(2)} CPU.`;
  return other > 0.1 || steal > 0.1 ? `WARNING: ${text} The machine was not idle: rerun for figures to trust.` : text;
}

function printReport(r: Result) {
  const col = (s: string, w: number) => s.padStart(w);
  const line = (label: string, a: string, b: string, ratio = "", target = "", verdict = "") =>
    `${label.padEnd(50)}${col(a, 20)}${col(b, 20)}${col(ratio, 9)}${col(target, 11)}${verdict ? `  ${verdict}` : ""}`;
  const v = (ok: boolean) => (ok ? "PASS" : "FAIL");
  const rate = (l: Load, unit = "/s") => `${int(l.perSecond)}${unit} @${pct(l.serverCpuShare)}`;
  const perCpu = (l: Load) => int(l.perServerCpuSecond);
  const x = (n: number) => `${n.toFixed(2)}×`;
  const rounds = (ratios: number[]) => ratios.map((n) => n.toFixed(2)).join(" ");
  const lines = [
    "",
    `Portcullis edge vs nginx ${r.versions.nginx} · ${r.seconds} s per run · ${r.versions.cpus} CPUs (${r.versions.cpuModel}) · server pinned to CPU ${r.pinning.server ?? "—"}, load generators and upstream to ${r.pinning.clients ?? "—"}`,
    `node ${r.versions.node} (OpenSSL ${r.versions.nodeOpenssl}) · edge TLS: ${r.versions.edgeTls} · ${r.versions.openssl} · ${r.versions.wrk} · ${r.versions.h2load}`,
    "",
    line("", "Portcullis", "nginx", "ratio", "target"),
    "(1) new TLS 1.3 handshakes, ECDSA P-256, no resumption — openssl s_time -new, no SNI (default certificate)",
    line("    per server CPU-second", perCpu(r.handshakes.portcullis), perCpu(r.handshakes.nginx), x(r.ratios.handshakes), `≥ ${TARGETS.handshakes}`, v(r.pass.handshakes)),
    line("    measured rate @ server CPU use", rate(r.handshakes.portcullis), rate(r.handshakes.nginx), x(r.ratios.handshakesRaw)),
    line("      ratio in each round", rounds(r.handshakes.roundRatios), ""),
    line("    reference: Node's own https.createServer, per CPU-s", perCpu(r.handshakes.nodeHttps), "", x(r.ratios.handshakesNode)),
    line("      ratio in each round", rounds(r.handshakes.nodeRoundRatios), ""),
    "(2) keep-alive requests through the proxy — wrk -t1 -c" + WRK_CONNECTIONS + ", https://localhost",
    line("    per server CPU-second", perCpu(r.proxy.portcullis), perCpu(r.proxy.nginx), x(r.ratios.proxy), `≥ ${TARGETS.proxy}`, v(r.pass.proxy)),
    line("      ratio in each round", rounds(r.proxy.roundRatios), ""),
    line("    measured rate @ server CPU use", rate(r.proxy.portcullis), rate(r.proxy.nginx), x(r.ratios.proxyRaw)),
    `    the same over HTTP/2 — h2load -c ${H2LOAD_CLIENTS} -m ${H2_STREAMS} (no target)`,
    line("    per server CPU-second", perCpu(r.proxyH2.portcullis), perCpu(r.proxyH2.nginx), x(r.ratios.proxyH2)),
    line("      ratio in each round", rounds(r.proxyH2.roundRatios), ""),
    line("    measured rate @ server CPU use", rate(r.proxyH2.portcullis), rate(r.proxyH2.nginx), x(r.ratios.proxyH2Raw)),
    `(3) ${int(r.hostnames)} mapped hostnames vs 1 — h2load, SNI of a mapped name, handshake + 1 GET per connection, ${r.rounds} alternating rounds`,
    line("    per server CPU-second, 1 hostname", perCpu(r.sni.one.portcullis), perCpu(r.sni.one.nginx), x(r.ratios.sniOne)),
    line(`    per server CPU-second, ${int(r.hostnames)} hostnames`, perCpu(r.sni.many.portcullis), perCpu(r.sni.many.nginx), x(r.ratios.sniMany)),
    line(`    ${int(r.hostnames)} ÷ 1`, x(r.ratios.manyVsOne), x(r.ratios.manyVsOneNginx), "", `≥ ${TARGETS.manyHostnames}`, v(r.pass.manyHostnames)),
    line(`      each round`, r.sni.roundRatios.portcullis.map((n) => n.toFixed(2)).join(" "), r.sni.roundRatios.nginx.map((n) => n.toFixed(2)).join(" ")),
    line("    measured rate @ CPU, 1 hostname", rate(r.sni.one.portcullis), rate(r.sni.one.nginx)),
    line(`    measured rate @ CPU, ${int(r.hostnames)} hostnames`, rate(r.sni.many.portcullis), rate(r.sni.many.nginx)),
    ...(r.handshakesMany
      ? [
          line(`    s_time (as (1)) per CPU-s, ${int(r.hostnames)} loaded`, perCpu(r.handshakesMany.portcullis), perCpu(r.handshakesMany.nginx), x(r.ratios.handshakesMany)),
          line(`    s_time ${int(r.hostnames)} ÷ 1`, x(r.ratios.sTimeManyVsOne), x(r.ratios.sTimeManyVsOneNginx)),
        ]
      : []),
    "(4) resident memory (Portcullis: the edge process; nginx: its worker, and master + worker PSS)",
    line("    1 certificate", mib(r.memory.one.portcullis.rss), `${mib(r.memory.one.nginx.workerRss)} (${mib(r.memory.one.nginx.pssTotal)})`, x(r.memory.one.portcullis.rss / r.memory.one.nginx.workerRss)),
    line(`    ${int(r.hostnames)} certificates`, mib(r.memory.many.portcullis.rss), `${mib(r.memory.many.nginx.workerRss)} (${mib(r.memory.many.nginx.pssTotal)})`, x(r.memory.many.portcullis.rss / r.memory.many.nginx.workerRss)),
    line("    per added certificate", `${((r.memory.many.portcullis.rss - r.memory.one.portcullis.rss) / (r.hostnames - 1) / 1024).toFixed(1)} KiB`, `${((r.memory.many.nginx.workerRss - r.memory.one.nginx.workerRss) / (r.hostnames - 1) / 1024).toFixed(1)} KiB`),
    line(`    Portcullis heap / external, ${int(r.hostnames)}`, `${mib(r.memory.many.portcullis.heapUsed)} / ${mib(r.memory.many.portcullis.external)}`, ""),
    "(5) certificate change → first handshake serving it (Portcullis: setMappings; nginx: new config + SIGHUP)",
    line(`    1 hostname: median / max of ${r.change.one.portcullis.n}`, medMax(r.change.one.portcullis), medMax(r.change.one.nginx), "", `≤ ${TARGETS.changeMs} ms`, v(r.pass.changeOne)),
    line(`    ${int(r.hostnames)} hostnames: median / max of ${r.change.many.portcullis.n}`, medMax(r.change.many.portcullis), r.change.many.nginx ? medMax(r.change.many.nginx) : "—", "", `≤ ${TARGETS.changeMs} ms`, v(r.pass.changeMany)),
    line(`      each change`, `${r.change.many.portcullis.samplesMs.map(int).join(", ")} ms`, ""),
    line(`    of which setMappings() itself (median)`, `${int(median(r.change.many.setMappingsMs))} ms`, ""),
    line(`    change → the served check confirms it (median)`, `${int(median(r.change.many.servedCheckMs))} ms`, ""),
    ...(r.change.postgres
      ? [
          line(
            `    1 hostname on PostgreSQL${r.change.postgres.notified ? " (NOTIFY)" : " (NOT notified)"}: median / max of ${r.change.postgres.portcullis.n}`,
            medMax(r.change.postgres.portcullis),
            "",
            "",
            `≤ ${TARGETS.changeMs} ms`,
            v(r.change.postgres.portcullis.maxMs <= TARGETS.changeMs),
          ),
        ]
      : ["    PostgreSQL: not measured (no server)"]),
    "",
    `setup: ${int(r.hostnames)} certificates generated in ${(r.setup.generateMs / 1000).toFixed(1)} s; setMappings(${int(r.hostnames)}) ${int(r.setup.setMappingsManyMs)} ms;` +
      ` edge ready in ${(r.setup.edgeStartOneMs / 1000).toFixed(1)} s (1) / ${(r.setup.edgeStartManyMs / 1000).toFixed(1)} s (${int(r.hostnames)}), then its served check of every mapping ${(r.setup.servedCheckManyMs / 1000).toFixed(1)} s;` +
      ` nginx ready in ${(r.setup.nginxStartOneMs / 1000).toFixed(1)} s / ${(r.setup.nginxStartManyMs / 1000).toFixed(1)} s`,
    machineLine(r),
    "\"@ n%\" is the server process's CPU use during the run (100% = one core). When nginx is well under 100%, the load generator was",
    "the limit, and \"per server CPU-second\" (what one fully used core would do) is the comparable figure: verdicts use it.",
  ];
  say(lines.join("\n"));
}

// ---------------------------------------------------------------------------------------------

function checkTools() {
  const missing = ["nginx", "openssl", "wrk", "h2load", ...(PIN && CPUS >= 2 ? ["taskset"] : [])].filter(
    (t) => spawnSync("sh", ["-c", `command -v ${t}`]).status !== 0,
  );
  if (missing.length) {
    throw new Error(`missing ${missing.join(", ")}: apt-get install -y nginx-light wrk nghttp2-client (openssl and taskset come with Debian)`);
  }
}

async function main() {
  checkTools();
  if (CPUS < 2) say("Only one CPU: the server and the load generators share it, so figures are rough.");
  const started = performance.now();
  const stamp = new Date().toISOString().replace(/[:.]/g, "-");
  const resultsDir = path.join(ROOT, "bench", "results");
  fs.mkdirSync(resultsDir, { recursive: true });
  profileDir = PROFILE ? path.join(resultsDir, `edge-profile-${stamp}`) : undefined;
  say(`Portcullis edge benchmark: ${SECONDS} s per run, ${HOSTNAMES.toLocaleString("en")} hostnames, ${CPUS} CPUs${PROFILE ? " (profiling the edge: figures are not comparable)" : ""}`);

  const idle = otherLoad();
  await sleep(1000);
  const before = idle();
  if (before.otherCpus > 0.1) say(`WARNING: other processes use ${before.otherCpus.toFixed(2)} CPU right now; the figures will be noisy.`);
  const database = await createBenchDatabase("sqlite", "");
  onCleanup("remove the temporary directory", () => database.drop());
  const dir = database.dataDir;
  const dbFile = database.url.replace(/^sqlite:/, "");
  const keyring = new Keyring(sealingKeyFromSecret(BENCH_SECRET));

  // --- Phase 1: one certificate, one mapped hostname -------------------------------------------------
  say("\n[1 hostname] upstream, certificates, listener…");
  const upstream = await startUpstream(dir);
  const certA = await mainCertificate(database.db, dir, keyring, "bench-a");
  const certB = await mainCertificate(database.db, dir, keyring, "bench-b");
  const edgePort = await findFreePort();
  const nginxPort = await findFreePort();
  const listener = await createListener(database.db, BENCH_ACTOR, {
    name: "bench https",
    kind: "https",
    bindAddress: "127.0.0.1",
    port: edgePort,
    upstreamUrl: `http://127.0.0.1:${upstream.port}`,
    minTlsVersion: "TLSv1.3",
    defaultCertificateId: certA.id, // s_time sends no SNI, wrk sends "localhost": both get the default
  });
  await setMappings(database.db, BENCH_ACTOR, listener.id, { mappings: [{ hostname: MAIN_HOST, certificateId: certA.id }] });

  const siteA: NginxSite = { names: [MAIN_HOST, "localhost"], certFile: certA.certFile, keyFile: certA.keyFile };
  const siteB: NginxSite = { names: [MAIN_HOST, "localhost"], certFile: certB.certFile, keyFile: certB.keyFile };
  const nginx1 = await startNginx(dir, "one", nginxPort, nginxConfig(dir, "one", nginxPort, upstream.port, [siteA]), { host: MAIN_HOST, fingerprint: certA.fingerprint });
  const edgeSince = nowIso();
  const edge1 = await startEdge(dbFile, "one", dir);
  await waitUntil("the edge serving", () => verifyServer("the edge", edgePort, MAIN_HOST, certA.fingerprint), 30_000);
  await verifyServer("nginx", nginxPort, MAIN_HOST, certA.fingerprint);
  await waitForServedCheck(database.db, listener.id, edgeSince, 1);
  await sleep(1000);
  const usageOne = await edge1.memory();
  const memOne = {
    portcullis: { rss: procStatus(edge1.proc.pid, "VmRSS"), hwm: 0, heapUsed: usageOne.heapUsed, external: usageOne.external },
    nginx: { workerRss: procStatus(nginx1.worker(), "VmRSS"), masterRss: procStatus(nginx1.proc.pid, "VmRSS"), pssTotal: pss(nginx1.worker()) + pss(nginx1.proc.pid) },
  };
  say(`  edge ready in ${(edge1.readyMs / 1000).toFixed(1)} s (RSS ${mib(memOne.portcullis.rss)}); nginx in ${(nginx1.startMs / 1000).toFixed(1)} s (worker RSS ${mib(memOne.nginx.workerRss)})`);

  const edgePid = () => edge1.proc.pid;
  // Warm-ups are for the edge's JIT (nginx has none): the same tool, WARMUP_SECONDS, not counted.
  // What Node itself does with the same certificate and no SNI selection, proxy or database: the floor under (1).
  const nodeHttps = await startNodeHttps(dir, certA);
  const nodePid = () => nodeHttps.proc.pid;
  say(`  (1) handshakes: warm-up, then openssl s_time -new ×${S_TIME_CLIENTS}, ${ROUNDS} alternating rounds of ${ROUND_SECONDS} s…`);
  await sTime(edgePort, edgePid, WARMUP_SECONDS);
  await sTime(nodeHttps.port, nodePid, WARMUP_SECONDS);
  const hs = await alternate({
    nginx: (seconds) => sTime(nginxPort, nginx1.worker, seconds),
    edge: (seconds, round) => edge1.profiled(`1-handshakes-round${round}`, () => sTime(edgePort, edgePid, seconds)),
    node: (seconds) => sTime(nodeHttps.port, nodePid, seconds),
  });
  await nodeHttps.proc.stop();
  const [hsNginx, hsEdge, hsNode] = [hs.nginx.combined, hs.edge.combined, hs.node.combined];
  say(`      nginx ${int(hsNginx.perSecond)}/s @${pct(hsNginx.serverCpuShare)}, Portcullis ${int(hsEdge.perSecond)}/s @${pct(hsEdge.serverCpuShare)}`);
  say(`      reference, Node's own https.createServer: ${int(hsNode.perSecond)}/s @${pct(hsNode.serverCpuShare)}`);

  say(`  (2) keep-alive requests through the proxy: wrk -t1 -c${WRK_CONNECTIONS}, warm-up, then ${ROUNDS} alternating rounds of ${ROUND_SECONDS} s…`);
  await wrk(edgePort, edgePid, WARMUP_SECONDS);
  const proxy = await alternate({
    nginx: (seconds) => wrk(nginxPort, nginx1.worker, seconds),
    edge: (seconds, round) => edge1.profiled(`2-proxy-round${round}`, () => wrk(edgePort, edgePid, seconds)),
  });
  const [proxyNginx, proxyEdge] = [proxy.nginx.combined, proxy.edge.combined];
  say(`      nginx ${int(proxyNginx.perSecond)}/s @${pct(proxyNginx.serverCpuShare)}, Portcullis ${int(proxyEdge.perSecond)}/s @${pct(proxyEdge.serverCpuShare)}`);
  expect(proxyEdge.errors === 0 && proxyNginx.errors === 0, `wrk saw errors: Portcullis ${proxyEdge.errors}, nginx ${proxyNginx.errors}`);

  say(`  (2) the same over HTTP/2: h2load -c ${H2LOAD_CLIENTS} -m ${H2_STREAMS}, warm-up, then ${ROUNDS} alternating rounds of ${ROUND_SECONDS} s…`);
  await h2Streams(edgePort, edgePid, WARMUP_SECONDS);
  const h2 = await alternate({
    nginx: (seconds) => h2Streams(nginxPort, nginx1.worker, seconds),
    edge: (seconds, round) => edge1.profiled(`2-proxy-h2-round${round}`, () => h2Streams(edgePort, edgePid, seconds)),
  });
  const [h2Nginx, h2Edge] = [h2.nginx.combined, h2.edge.combined];
  say(`      nginx ${int(h2Nginx.perSecond)}/s @${pct(h2Nginx.serverCpuShare)}, Portcullis ${int(h2Edge.perSecond)}/s @${pct(h2Edge.serverCpuShare)}`);
  expect(h2Edge.errors === 0 && h2Nginx.errors === 0, `h2load saw errors: Portcullis ${h2Edge.errors}, nginx ${h2Nginx.errors}`);

  say(`  (5) certificate change → first handshake serving it, ${CHANGES} times each…`);
  const changeOneEdge: number[] = [];
  const setMappingsOne: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const to = i % 2 === 0 ? certB : certA;
    // A random pause: the edge polls every 250 ms, and changes must not all land at one phase of that timer.
    await sleep(100 + Math.random() * 300);
    const t = await timeChange(edgePort, MAIN_HOST, to.fingerprint, () =>
      setMappings(database.db, BENCH_ACTOR, listener.id, { mappings: [{ hostname: MAIN_HOST, certificateId: to.id }] }),
    );
    changeOneEdge.push(t.ms);
    setMappingsOne.push(round(t.changeCallMs, 1));
  }
  const changeOneNginx: number[] = [];
  for (let i = 0; i < CHANGES; i++) {
    const to = i % 2 === 0 ? certB : certA;
    await sleep(100 + Math.random() * 300);
    const t = await timeChange(nginxPort, MAIN_HOST, to.fingerprint, async () => {
      fs.writeFileSync(nginx1.conf, nginxConfig(dir, "one", nginxPort, upstream.port, [i % 2 === 0 ? siteB : siteA]));
      process.kill(nginx1.proc.pid, "SIGHUP");
    });
    changeOneNginx.push(t.ms);
  }
  say(`      Portcullis median ${int(median(changeOneEdge))} ms, nginx median ${int(median(changeOneNginx))} ms`);
  memOne.portcullis.hwm = procStatus(edge1.proc.pid, "VmHWM");

  // --- Phase 2: HOSTNAMES mapped hostnames, one distinct certificate each ------------------------
  // A copy of the database with its own listener port, so that the 1-hostname edge and nginx keep
  // running beside the HOSTNAMES ones and (3) can alternate between them.
  say(`\n[${HOSTNAMES.toLocaleString("en")} hostnames] generating ${(HOSTNAMES - 1).toLocaleString("en")} more certificates…`);
  const manyFile = path.join(dir, "many.db");
  await sql.raw(`vacuum into '${manyFile.replace(/'/g, "''")}'`).execute(database.db);
  const { db: manyDb } = openDatabase({ kind: "sqlite", file: manyFile });
  const closeManyDb = onCleanup("close the second database", () => manyDb.destroy());
  const edgePortMany = await findFreePort();
  const nginxPortMany = await findFreePort();
  await manyDb.updateTable("listeners").set({ port: edgePortMany }).where("id", "=", listener.id).execute();
  let t0 = performance.now();
  const many = await manyCertificates(manyDb, dir, keyring, HOSTNAMES - 1);
  const generateMs = performance.now() - t0;
  const manyMappings = (mainCert: Cert) => [{ hostname: MAIN_HOST, certificateId: mainCert.id }, ...many.map((m) => ({ hostname: m.host, certificateId: m.id }))];
  t0 = performance.now();
  await setMappings(manyDb, BENCH_ACTOR, listener.id, { mappings: manyMappings(certA) });
  const setMappingsManyMs = performance.now() - t0;
  const probe = many[Math.floor(many.length / 2)];
  say(`  generated and stored in ${(generateMs / 1000).toFixed(1)} s; setMappings(${HOSTNAMES.toLocaleString("en")}) took ${int(setMappingsManyMs)} ms; SNI for (3): ${probe.host}`);

  const manySites: NginxSite[] = [siteA, ...many.map((m) => ({ names: [m.host], certFile: m.file, keyFile: m.file }))];
  const nginxMany = await startNginx(dir, "many", nginxPortMany, nginxConfig(dir, "many", nginxPortMany, upstream.port, manySites), { host: probe.host, fingerprint: probe.fingerprint });
  await verifyServer("nginx", nginxPortMany, MAIN_HOST, certA.fingerprint);
  const manySince = nowIso();
  const edgeMany = await startEdge(manyFile, "many", dir);
  await waitUntil("the edge serving", () => verifyServer("the edge", edgePortMany, probe.host, probe.fingerprint), 30_000);
  const servedCheckManyMs = await waitForServedCheck(manyDb, listener.id, manySince, HOSTNAMES);
  await sleep(1000);
  const usageMany = await edgeMany.memory();
  const memMany = {
    portcullis: { rss: procStatus(edgeMany.proc.pid, "VmRSS"), hwm: 0, heapUsed: usageMany.heapUsed, external: usageMany.external },
    nginx: { workerRss: procStatus(nginxMany.worker(), "VmRSS"), masterRss: procStatus(nginxMany.proc.pid, "VmRSS"), pssTotal: pss(nginxMany.worker()) + pss(nginxMany.proc.pid) },
  };
  say(
    `  edge ready in ${(edgeMany.readyMs / 1000).toFixed(1)} s, its served check of every mapping took ${(servedCheckManyMs / 1000).toFixed(1)} s more (RSS ${mib(memMany.portcullis.rss)});` +
      ` nginx ready in ${(nginxMany.startMs / 1000).toFixed(1)} s (worker RSS ${mib(memMany.nginx.workerRss)})`,
  );

  const edgeManyPid = () => edgeMany.proc.pid;
  // Sized so that each h2load run lasts about SECONDS / ROUNDS at the handshake rate s_time measured.
  const requestsFor = (l: Load) => Math.max(300, Math.round((l.perSecond * SECONDS * 0.8) / ROUNDS));
  // The JIT warm-up for this pattern (a new connection, one request, close): edge1 has not seen it yet either.
  await h2load(edgePort, MAIN_HOST, edgePid, Math.round(hsEdge.perSecond * WARMUP_SECONDS));
  await h2load(edgePortMany, probe.host, edgeManyPid, Math.round(hsEdge.perSecond * WARMUP_SECONDS));
  let hsManyNginx: Load | undefined;
  let hsManyEdge: Load | undefined;
  if (S_TIME_MANY) {
    say(`  (1) at ${HOSTNAMES.toLocaleString("en")}: openssl s_time, ${SECONDS} s each…`);
    hsManyNginx = await sTime(nginxPortMany, nginxMany.worker, SECONDS);
    hsManyEdge = await sTime(edgePortMany, edgeManyPid, SECONDS);
    say(`      nginx ${int(hsManyNginx.perSecond)}/s @${pct(hsManyNginx.serverCpuShare)}, Portcullis ${int(hsManyEdge.perSecond)}/s @${pct(hsManyEdge.serverCpuShare)}`);
  }
  say(`  (3) new connections with SNI (h2load), 1 hostname (${MAIN_HOST}) and ${HOSTNAMES.toLocaleString("en")} (${probe.host}) alternately, ${ROUNDS} rounds…`);
  const sniRuns = { oneNginx: [] as Load[], manyNginx: [] as Load[], oneEdge: [] as Load[], manyEdge: [] as Load[] };
  for (let r = 0; r < ROUNDS; r++) {
    sniRuns.oneNginx.push(await h2load(nginxPort, MAIN_HOST, nginx1.worker, requestsFor(hsNginx)));
    sniRuns.manyNginx.push(await h2load(nginxPortMany, probe.host, nginxMany.worker, requestsFor(hsNginx)));
    sniRuns.oneEdge.push(await edge1.profiled(`3-one-round${r + 1}`, () => h2load(edgePort, MAIN_HOST, edgePid, requestsFor(hsEdge))));
    sniRuns.manyEdge.push(await edgeMany.profiled(`3-many-round${r + 1}`, () => h2load(edgePortMany, probe.host, edgeManyPid, requestsFor(hsEdge))));
  }
  const sniOneNginx = combine(sniRuns.oneNginx);
  const sniManyNginx = combine(sniRuns.manyNginx);
  const sniOneEdge = combine(sniRuns.oneEdge);
  const sniManyEdge = combine(sniRuns.manyEdge);
  say(
    `      1: nginx ${int(sniOneNginx.perSecond)}/s @${pct(sniOneNginx.serverCpuShare)}, Portcullis ${int(sniOneEdge.perSecond)}/s @${pct(sniOneEdge.serverCpuShare)}; ` +
      `${HOSTNAMES.toLocaleString("en")}: nginx ${int(sniManyNginx.perSecond)}/s @${pct(sniManyNginx.serverCpuShare)}, Portcullis ${int(sniManyEdge.perSecond)}/s @${pct(sniManyEdge.serverCpuShare)}`,
  );
  await edge1.proc.stop();
  await nginx1.proc.stop();

  say(`  (5) at ${HOSTNAMES.toLocaleString("en")}: certificate change → served, ${CHANGES_MANY} times, 1.5–2 s apart; each time the served check confirms it…`);
  const changeManyEdge: number[] = [];
  const setMappingsMany: number[] = [];
  const servedCheckAfterChange: number[] = [];
  for (let i = 0; i < CHANGES_MANY; i++) {
    const to = i % 2 === 0 ? certB : certA;
    await sleep(i === 0 ? 100 + Math.random() * 300 : 1500 + Math.random() * 500);
    const changedAt = Date.now();
    const t = await timeChange(edgePortMany, MAIN_HOST, to.fingerprint, () => setMappings(manyDb, BENCH_ACTOR, listener.id, { mappings: manyMappings(to) }));
    changeManyEdge.push(t.ms);
    setMappingsMany.push(round(t.changeCallMs, 1));
    servedCheckAfterChange.push(await waitForCheckOf(manyDb, listener.id, MAIN_HOST, to.fingerprint, changedAt));
  }
  say(
    `      Portcullis: ${changeManyEdge.map((ms) => `${int(ms)} ms`).join(", ")} (setMappings itself ${int(median(setMappingsMany))} ms);` +
      ` the served check confirmed each after ${servedCheckAfterChange.map((ms) => `${int(ms)} ms`).join(", ")}`,
  );
  memMany.portcullis.hwm = procStatus(edgeMany.proc.pid, "VmHWM");
  // Stopped first: its served check still runs, and would take CPU 0 from nginx's reload.
  await edgeMany.proc.stop();
  await closeManyDb();
  // nginx re-reads every certificate on reload: one sample is enough to show it.
  const nginxManyReload = await timeChange(nginxPortMany, MAIN_HOST, certB.fingerprint, async () => {
    fs.writeFileSync(nginxMany.conf, nginxConfig(dir, "many", nginxPortMany, upstream.port, [siteB, ...manySites.slice(1)]));
    process.kill(nginxMany.proc.pid, "SIGHUP");
  });
  say(`      nginx reload with ${HOSTNAMES.toLocaleString("en")} certificates: ${int(nginxManyReload.ms)} ms`);
  await nginxMany.proc.stop();

  const postgres = await changeOnPostgres(dir, keyring, upstream.port);
  await upstream.proc.stop();

  const result: Result = {
    at: new Date().toISOString(),
    seconds: SECONDS,
    rounds: ROUNDS,
    hostnames: HOSTNAMES,
    pinning: { server: SERVER_CPUS ?? null, clients: CLIENT_CPUS ?? null },
    versions: toolVersions(),
    handshakes: { portcullis: hsEdge, nginx: hsNginx, nodeHttps: hsNode, roundRatios: roundRatios(hs.edge.runs, hs.nginx.runs), nodeRoundRatios: roundRatios(hs.node.runs, hs.nginx.runs) },
    proxy: { portcullis: proxyEdge, nginx: proxyNginx, roundRatios: roundRatios(proxy.edge.runs, proxy.nginx.runs) },
    proxyH2: { portcullis: h2Edge, nginx: h2Nginx, roundRatios: roundRatios(h2.edge.runs, h2.nginx.runs) },
    sni: {
      one: { portcullis: sniOneEdge, nginx: sniOneNginx },
      many: { portcullis: sniManyEdge, nginx: sniManyNginx },
      // HOSTNAMES ÷ 1 in each round: how much the figure moves from run to run on this machine.
      roundRatios: {
        portcullis: sniRuns.manyEdge.map((m, i) => ratio(m.perServerCpuSecond, sniRuns.oneEdge[i].perServerCpuSecond)),
        nginx: sniRuns.manyNginx.map((m, i) => ratio(m.perServerCpuSecond, sniRuns.oneNginx[i].perServerCpuSecond)),
      },
      runs: sniRuns,
    },
    handshakesMany: hsManyEdge && hsManyNginx ? { portcullis: hsManyEdge, nginx: hsManyNginx } : undefined,
    memory: { one: memOne, many: memMany },
    change: {
      one: { portcullis: changeStats(changeOneEdge), nginx: changeStats(changeOneNginx), setMappingsMs: setMappingsOne },
      many: { portcullis: changeStats(changeManyEdge), nginx: changeStats([nginxManyReload.ms]), setMappingsMs: setMappingsMany, servedCheckMs: servedCheckAfterChange },
      postgres,
    },
    setup: {
      generateMs: Math.round(generateMs),
      setMappingsManyMs: Math.round(setMappingsManyMs),
      edgeStartOneMs: Math.round(edge1.readyMs),
      edgeStartManyMs: Math.round(edgeMany.readyMs),
      servedCheckManyMs: Math.round(servedCheckManyMs),
      nginxStartOneMs: Math.round(nginx1.startMs),
      nginxStartManyMs: Math.round(nginxMany.startMs),
    },
    ratios: {
      handshakes: ratio(hsEdge.perServerCpuSecond, hsNginx.perServerCpuSecond),
      handshakesRaw: ratio(hsEdge.perSecond, hsNginx.perSecond),
      handshakesNode: ratio(hsNode.perServerCpuSecond, hsNginx.perServerCpuSecond),
      proxy: ratio(proxyEdge.perServerCpuSecond, proxyNginx.perServerCpuSecond),
      proxyRaw: ratio(proxyEdge.perSecond, proxyNginx.perSecond),
      proxyH2: ratio(h2Edge.perServerCpuSecond, h2Nginx.perServerCpuSecond),
      proxyH2Raw: ratio(h2Edge.perSecond, h2Nginx.perSecond),
      sniOne: ratio(sniOneEdge.perServerCpuSecond, sniOneNginx.perServerCpuSecond),
      sniMany: ratio(sniManyEdge.perServerCpuSecond, sniManyNginx.perServerCpuSecond),
      manyVsOne: ratio(sniManyEdge.perServerCpuSecond, sniOneEdge.perServerCpuSecond),
      manyVsOneNginx: ratio(sniManyNginx.perServerCpuSecond, sniOneNginx.perServerCpuSecond),
      ...(hsManyEdge && hsManyNginx
        ? {
            handshakesMany: ratio(hsManyEdge.perServerCpuSecond, hsManyNginx.perServerCpuSecond),
            sTimeManyVsOne: ratio(hsManyEdge.perServerCpuSecond, hsEdge.perServerCpuSecond),
            sTimeManyVsOneNginx: ratio(hsManyNginx.perServerCpuSecond, hsNginx.perServerCpuSecond),
          }
        : {}),
    },
    pass: {},
  };
  result.pass = {
    handshakes: result.ratios.handshakes >= TARGETS.handshakes,
    proxy: result.ratios.proxy >= TARGETS.proxy,
    manyHostnames: result.ratios.manyVsOne >= TARGETS.manyHostnames,
    changeOne: result.change.one.portcullis.maxMs <= TARGETS.changeMs,
    changeMany: result.change.many.portcullis.maxMs <= TARGETS.changeMs,
    ...(postgres ? { changePostgres: postgres.portcullis.maxMs <= TARGETS.changeMs } : {}),
  };
  printReport(result);
  const file = path.join(resultsDir, `edge-${stamp}.json`);
  fs.writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
  say(`\nresults: ${path.relative(ROOT, file)} · total ${((performance.now() - started) / 1000).toFixed(0)} s`);
  for (const file of profiles) printProfile(file);
}

/** Self time by function from one profile. */
function printProfile(file: string) {
  const { totalUs: total, functions } = profileSelfTimes(file, ROOT);
  say(`\nedge profile ${path.relative(ROOT, file)}: ${(total / 1e6).toFixed(2)} s busy; self time:`);
  for (const [k, us] of functions.slice(0, 15)) say(`  ${((us / total) * 100).toFixed(1).padStart(5)}%  ${k}`);
}

main()
  .catch((err: unknown) => {
    if (wasInterrupted()) return; // the servers were stopped under the running tools; their errors are noise
    process.stderr.write(`bench: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  })
  .finally(cleanupAll);
