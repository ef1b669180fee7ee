import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { STATE_FILE, type E2EState } from "./state";
import { findFreePort } from "../lib/net";
import { startFakeCloudflare } from "../tests/support/fake-cloudflare";
import { startPebble } from "../tests/support/pebble";

const root = path.resolve(import.meta.dirname, "..");
const E2E_DNS_ZONE = "example.test";
const E2E_CLOUDFLARE_TOKEN = "e2e-cloudflare-token-Zx9aB3cD4eF5gH6iJ7kL8";


export default async function globalSetup() {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-e2e-"));
  const port = await findFreePort();
  const healthPort = await findFreePort();
  // A real ACME CA for the Let's Encrypt specs: pebble validates against the listeners the specs create
  // on its HTTP-01 and TLS-ALPN-01 ports. It lives as long as the test runner does.
  const pebble = await startPebble();
  // A fake Cloudflare API for the DNS-01 spec: the console's SDK calls it, and it writes TXT values into
  // pebble-challtestsrv, where pebble's VA (and the worker's propagation check) look them up.
  const cloudflare = await startFakeCloudflare({
    zones: [{ name: E2E_DNS_ZONE }],
    tokens: { [E2E_CLOUDFLARE_TOKEN]: { read: "all", edit: "all" } },
    dns: pebble,
  });
  const env: Record<string, string | undefined> = {
    ...process.env,
    PORTCULLIS_DATA_DIR: dataDir,
    PORTCULLIS_PORT: String(port),
    PORTCULLIS_WORKER_HEALTH_PORT: String(healthPort),
    PORTCULLIS_LOG_LEVEL: "warn",
    PORTCULLIS_ACME_DIRECTORY_URL: pebble.directoryUrl,
    PORTCULLIS_ACME_CA_BUNDLE: pebble.caBundlePath,
    PORTCULLIS_CLOUDFLARE_API_URL: cloudflare.url,
    PORTCULLIS_DNS_RESOLVERS: `127.0.0.1:${pebble.dnsPort}`,
  };
  delete env.DATABASE_URL;
  const child = spawn(process.execPath, [path.join(root, "bin/portcullis.mjs"), "serve"], { cwd: root, env: env as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"], detached: true });
  const logFile = path.join(dataDir, "console.log");
  const log = fs.createWriteStream(logFile);
  child.stdout.pipe(log);
  child.stderr.pipe(log);

  const setupUrl = await new Promise<string>((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`the console did not print its setup link within 120 s:\n${output}`)), 120_000);
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /(http:\/\/\S+\/setup\?token=\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.on("exit", (code) => reject(new Error(`the console exited with ${code}:\n${output}`)));
  });

  const baseURL = `http://127.0.0.1:${port}`;
  const state: E2EState = {
    baseURL,
    setupUrl,
    dataDir,
    pid: child.pid!,
    healthPort,
    logFile,
    pebble: { directoryUrl: pebble.directoryUrl, httpPort: pebble.httpPort, tlsPort: pebble.tlsPort, managementUrl: pebble.managementUrl },
    cloudflare: { apiUrl: cloudflare.url, token: E2E_CLOUDFLARE_TOKEN, zone: E2E_DNS_ZONE, dnsServer: `127.0.0.1:${pebble.dnsPort}` },
  };
  fs.writeFileSync(STATE_FILE, JSON.stringify(state));
  process.env.PORTCULLIS_E2E_BASE_URL = baseURL;
}
