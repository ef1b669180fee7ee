import fs from "node:fs";
import inspector from "node:inspector";
import pino from "pino";
import { openDatabase } from "../lib/db/connection";
import { Keyring, sealingKeyFromSecret } from "../lib/crypto/seal";
import { Edge } from "../lib/listeners/edge";

// The edge role alone, in its own process, for bench/edge.ts: opens the database, starts the Edge and
// nothing else (no health server, no engine sweeps), so that this process's CPU time and memory are
// the edge's own. Started as `node --import tsx bench/edge-runner.ts <sqlite file | postgres:// URL>`: the
// tsx loader is in the process, as it is in `portcullis worker`.
//
// Environment: BENCH_EDGE_SECRET (the sealing passphrase the database was sealed with),
// BENCH_EDGE_POLL_MS (revision poll interval; default: the Edge's own default, 250 ms).
// Talks to its parent over the IPC channel: it sends {type:"ready", startMs} once the listeners are up,
// answers {type:"memory"} with process.memoryUsage() and {type:"status"} with whether changes arrive by
// NOTIFY, records a CPU profile between {type:"profile-start"} and {type:"profile-stop", file} (V8's
// sampling profiler, as `node --cpu-prof`), and stops cleanly on SIGTERM or {type:"stop"}.

const file = process.argv[2];
const secret = process.env.BENCH_EDGE_SECRET;
if (!file || !secret) {
  process.stderr.write("usage: BENCH_EDGE_SECRET=… node --import tsx bench/edge-runner.ts <sqlite file | postgres:// URL>\n");
  process.exit(2);
}
const pollIntervalMs = process.env.BENCH_EDGE_POLL_MS ? Number(process.env.BENCH_EDGE_POLL_MS) : undefined;

const log = pino({ level: process.env.BENCH_EDGE_LOG_LEVEL ?? "warn" }, pino.destination(2));
const { db } = openDatabase(/^postgres(ql)?:\/\//.test(file) ? { kind: "postgres", url: file } : { kind: "sqlite", file });
const keyring = new Keyring(sealingKeyFromSecret(secret));
// The periodic served-certificate check (every 60 s in production) would make thousands of handshakes
// against this process in the middle of a measurement; the one that follows every reload still runs.
// PORTCULLIS_EDGE_TLS=portable, as for the worker: net.Server and tls.TLSSocket instead of Node's TLS stream driven directly.
const edge = new Edge({ db, keyring, log, pollIntervalMs, checkIntervalMs: 3_600_000, portableTls: process.env.PORTCULLIS_EDGE_TLS === "portable" });

let stopping = false;
async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  try {
    await edge.stop();
    await db.destroy();
  } finally {
    process.exit(code);
  }
}
process.once("SIGTERM", () => void stop());
process.once("SIGINT", () => void stop());
process.on("disconnect", () => void stop());
let profiler: inspector.Session | undefined;
process.on("message", (msg: { type?: string; file?: string }) => {
  if (msg?.type === "memory") process.send?.({ type: "memory", usage: process.memoryUsage() });
  else if (msg?.type === "status") process.send?.({ type: "status", notified: edge.notified(), listeners: edge.status() });
  else if (msg?.type === "stop") void stop();
  else if (msg?.type === "profile-start") {
    profiler = new inspector.Session();
    profiler.connect();
    profiler.post("Profiler.enable", () => profiler!.post("Profiler.start", () => process.send?.({ type: "profile-started" })));
  } else if (msg?.type === "profile-stop" && profiler) {
    const session = profiler;
    profiler = undefined;
    session.post("Profiler.stop", (err, result) => {
      if (!err && msg.file) fs.writeFileSync(msg.file, JSON.stringify(result.profile));
      session.disconnect();
      process.send?.({ type: "profile-stopped", error: err ? String(err) : undefined });
    });
  }
});

const t0 = performance.now();
edge
  .start()
  .then(() => process.send?.({ type: "ready", startMs: performance.now() - t0, listeners: edge.status() }))
  .catch((err: unknown) => {
    log.error({ err }, "edge-runner: the edge did not start");
    void stop(1);
  });
