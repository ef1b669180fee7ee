import fs from "node:fs";
import path from "node:path";

export const STATE_FILE = path.resolve(import.meta.dirname, "..", ".tmp", "e2e-state.json");
fs.mkdirSync(path.dirname(STATE_FILE), { recursive: true });

export type E2EState = {
  baseURL: string;
  setupUrl: string;
  dataDir: string;
  pid: number;
  healthPort: number;
  logFile: string;
  /** The pebble ACME server the console's worker orders from; its VA dials these ports for HTTP-01 and TLS-ALPN-01. */
  pebble: { directoryUrl: string; httpPort: number; tlsPort: number; managementUrl: string };
  /** The fake Cloudflare API the console uses (PORTCULLIS_CLOUDFLARE_API_URL): a token that may edit `zone`, whose TXT records land in pebble-challtestsrv (dnsServer). */
  cloudflare: { apiUrl: string; token: string; zone: string; dnsServer: string };
};

export function readState(): E2EState {
  return JSON.parse(fs.readFileSync(STATE_FILE, "utf8")) as E2EState;
}
