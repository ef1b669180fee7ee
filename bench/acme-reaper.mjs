// Started by bench/acme.ts, detached: cleans up after it if it dies without cleaning up itself.
// tsx's CLI relays Ctrl-C (or a SIGTERM from `timeout`) to the benchmark and SIGKILLs it when it
// has not acknowledged the signal within about 60 ms, which happens on a busy machine; portcullis
// serve runs in its own process group and would outlive it, with its database.
//
//   node bench/acme-reaper.mjs <benchmark pid> <state file>
//
// The state file (JSON, rewritten by the benchmark as things start and stop) lists process groups,
// processes, PostgreSQL databases and directories. When it is gone, the benchmark finished: exit.
import fs from "node:fs";
import pg from "pg";

const [benchPid, stateFile] = [Number(process.argv[2]), process.argv[3]];
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === "EPERM";
  }
};
const cmdline = (pid) => {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
  } catch {
    return [];
  }
};
const readState = () => {
  try {
    return JSON.parse(fs.readFileSync(stateFile, "utf8"));
  } catch {
    return undefined;
  }
};

while (alive(benchPid)) {
  if (!fs.existsSync(stateFile)) process.exit(0);
  await sleep(250);
}
const state = readState();
if (!state) process.exit(0);
fs.rmSync(stateFile, { force: true });

// Process groups (serve and everything it started), then single processes (pebble), each only if it
// is still the program it was.
const signalGroup = (pgid, signal) => {
  try {
    process.kill(-pgid, signal);
  } catch {
    /* gone */
  }
};
const groups = (state.groups ?? []).filter((g) => !alive(g.pgid) || cmdline(g.pgid).join(" ").includes(g.match));
for (const g of groups) signalGroup(g.pgid, "SIGTERM");
for (const p of state.processes ?? []) if (cmdline(p.pid)[0] === p.argv0) process.kill(p.pid, "SIGKILL");
for (let i = 0; i < 60 && groups.some((g) => alive(g.pgid)); i++) await sleep(250);
for (const g of groups) signalGroup(g.pgid, "SIGKILL");

for (const d of state.databases ?? []) {
  const client = new pg.Client({ connectionString: d.adminUrl, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query(`drop database if exists ${d.name.replace(/[^a-z0-9_]/g, "")} with (force)`);
  } catch {
    /* nothing more to do from here */
  } finally {
    await client.end().catch(() => {});
  }
}
for (const dir of state.dirs ?? []) fs.rmSync(dir, { recursive: true, force: true });
