import crypto from "node:crypto";
import net from "node:net";
import type { Config } from "../config";
import type { Db } from "../db";
import { authenticateApiToken } from "../tokens";

// Who may read /metrics: a client address in PORTCULLIS_METRICS_ALLOW (no token needed), the bearer token in
// PORTCULLIS_METRICS_TOKEN, or any valid API token (viewers too: metrics are read-only).

export type MetricsAccess = { ok: true; via: "address" | "metrics_token" | "api_token" } | { ok: false; status: 401 | 403; reason: string };

export type MetricsRequest = {
  /** The Authorization header, if any. */
  authorization: string | null;
  /** The client's address as the console's server determined it (x-portcullis-client-ip), if known. */
  clientIp: string | null;
};

const lists = new Map<string, net.BlockList>();

/** The allow list as a BlockList, built once per distinct setting. */
function allowList(entries: string[]): net.BlockList {
  const key = entries.join(",");
  let list = lists.get(key);
  if (!list) {
    list = new net.BlockList();
    for (const entry of entries) {
      const [address, bits] = entry.split("/");
      const type = net.isIP(address) === 6 ? "ipv6" : "ipv4";
      if (bits !== undefined) list.addSubnet(address, Number(bits), type);
      else list.addAddress(address, type);
    }
    lists.set(key, list);
  }
  return list;
}

export function isAllowedAddress(entries: string[], clientIp: string | null): boolean {
  if (!entries.length || !clientIp) return false;
  const address = clientIp.startsWith("::ffff:") ? clientIp.slice(7) : clientIp;
  const family = net.isIP(address);
  if (!family) return false;
  return allowList(entries).check(address, family === 6 ? "ipv6" : "ipv4");
}

/** Compares without leaking, through timing, how much of the token matched. */
function sameToken(given: string, expected: string): boolean {
  const digest = (s: string) => crypto.createHash("sha256").update(s).digest();
  return crypto.timingSafeEqual(digest(given), digest(expected));
}

export async function authorizeMetricsRequest(db: Db, settings: Config["metrics"], request: MetricsRequest): Promise<MetricsAccess> {
  // An allowed address needs nothing more, whatever header it sends.
  if (isAllowedAddress(settings.allow, request.clientIp)) return { ok: true, via: "address" };
  const header = request.authorization?.trim();
  if (!header) {
    if (settings.allow.length) {
      return {
        ok: false,
        status: 403,
        reason: `Your address (${request.clientIp ?? "unknown"}) is not in PORTCULLIS_METRICS_ALLOW. Send Authorization: Bearer <token> with ${settings.token ? "the metrics token or " : ""}an API token, or add the address to PORTCULLIS_METRICS_ALLOW.`,
      };
    }
    return {
      ok: false,
      status: 401,
      reason: `Metrics need a token: send Authorization: Bearer <token> with ${settings.token ? "the token in PORTCULLIS_METRICS_TOKEN or " : ""}an API token (Settings → API tokens).`,
    };
  }
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match) return { ok: false, status: 401, reason: "The Authorization header must be: Bearer <token>." };
  const token = match[1];
  if (settings.token && sameToken(token, settings.token)) return { ok: true, via: "metrics_token" };
  if (await authenticateApiToken(db, token)) return { ok: true, via: "api_token" };
  return {
    ok: false,
    status: 401,
    reason: `The token is not valid: it is ${settings.token ? "neither PORTCULLIS_METRICS_TOKEN nor" : "not"} an active API token (unknown or revoked). Send Authorization: Bearer <token>.`,
  };
}
