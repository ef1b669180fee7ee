import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import path from "node:path";

// A console of a spec's own, started and stopped as an operator would (`portcullis serve` or `console`),
// apart from the one global-setup starts.

const root = path.resolve(import.meta.dirname, "..");

/** The status /api/v1/health answers at url (HTTP or HTTPS, any certificate), 0 when nothing answers in time. */
export function healthStatus(url: string, timeoutMs = 2000): Promise<number> {
  return new Promise((resolve) => {
    const client = url.startsWith("https:") ? https : http;
    const request = client.get(`${url}/api/v1/health`, { rejectUnauthorized: false, timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    request.on("error", () => resolve(0));
    request.on("timeout", () => request.destroy());
  });
}

export type Spawned = { child: ChildProcess; logFile: string };

/**
 * `portcullis <command>` in its own process group, its output in <logDir>/<name>.log; resolves once url
 * answers /api/v1/health. The environment is this process's with env over it, less the settings of the
 * global console that env does not set again.
 */
export async function spawnConsole(name: string, url: string, env: Record<string, string | undefined>, logDir: string, command: "serve" | "console" = "serve"): Promise<Spawned> {
  const full: Record<string, string | undefined> = { ...process.env, PORTCULLIS_LOG_LEVEL: "warn", PORTCULLIS_SKIP_BUILD_CHECK: "1", ...env };
  // The global setup has checked the build (PORTCULLIS_SKIP_BUILD_CHECK): this console serves the same one.
  for (const key of ["DATABASE_URL", "PORTCULLIS_PUBLIC_URL", "PORTCULLIS_TRUSTED_PROXIES", "PORTCULLIS_ACME_DOMAIN", "PORTCULLIS_ACME_EMAIL", "PORTCULLIS_TLS_MODE", "PORTCULLIS_TLS_CERT", "PORTCULLIS_TLS_KEY"]) {
    if (!(key in env)) delete full[key];
  }
  const logFile = path.join(logDir, `${name}.log`);
  const log = fs.openSync(logFile, "a");
  const spawned = spawn(process.execPath, [path.join(root, "bin/portcullis.mjs"), command], { cwd: root, env: full as NodeJS.ProcessEnv, stdio: ["ignore", log, log], detached: true });
  fs.closeSync(log);
  let exited: number | null = null;
  spawned.once("exit", (code) => (exited = code ?? -1));
  const deadline = Date.now() + 150_000;
  while ((await healthStatus(url)) !== 200) {
    if (exited !== null) throw new Error(`the ${name} console exited with ${exited}:\n${fs.readFileSync(logFile, "utf8")}`);
    if (Date.now() > deadline) throw new Error(`the ${name} console did not answer on ${url} within 150 s:\n${fs.readFileSync(logFile, "utf8")}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  return { child: spawned, logFile };
}

/** SIGTERM to the whole process group (`serve` and its console and worker children), SIGKILL after 10 s. */
export async function stopConsole(spawned: Spawned | undefined) {
  const proc = spawned?.child;
  if (!proc?.pid || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((r) => proc.once("exit", r));
  try {
    process.kill(-proc.pid, "SIGTERM");
  } catch {
    return;
  }
  await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
  try {
    process.kill(-proc.pid, "SIGKILL");
  } catch {
    // stopped in time
  }
}
