import type { IncomingMessage, ServerResponse } from "node:http";
import net from "node:net";
import type { Config } from "../config";

// What the console's own server does to every request before Next.js sees it.

const LOOPBACK_HOSTS = new Set(["127.0.0.1", "::1", "localhost"]);
export const isLoopbackHost = (host: string) => LOOPBACK_HOSTS.has(host) || host.startsWith("127.");

export const CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  // Next.js inlines its bootstrap and flight data as scripts.
  "script-src 'self' 'unsafe-inline'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self' data:",
  "connect-src 'self'",
  "frame-ancestors 'none'",
  "base-uri 'self'",
  "form-action 'self'",
  "object-src 'none'",
].join("; ");

function normalizeAddress(address: string | undefined): string {
  if (!address) return "unknown";
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}

/** Addresses or CIDR ranges (v4 and v6) of trusted proxies, as a BlockList. */
export function trustedProxyList(entries: string[]): net.BlockList {
  const list = new net.BlockList();
  for (const entry of entries.length ? entries : ["127.0.0.1", "::1"]) {
    const [address, bits] = entry.split("/");
    const type = net.isIP(address) === 6 ? "ipv6" : "ipv4";
    if (bits) list.addSubnet(address, Number(bits), type);
    else list.addAddress(address, type);
  }
  return list;
}

export type RequestContext = { clientIp: string; https: boolean };

/**
 * Strips forwarding headers that the peer may not set, records the client's address for login
 * throttling and audit, and adds the security headers. Returns how the browser reached us.
 */
export function prepareRequest(
  req: IncomingMessage,
  res: ServerResponse,
  opts: { config: Config; trusted: net.BlockList; tls: boolean },
): RequestContext {
  const peer = normalizeAddress(req.socket.remoteAddress);
  let clientIp = peer;
  let https = opts.tls;
  const fromTrustedProxy =
    opts.config.tls.mode === "behind_proxy" && opts.trusted.check(peer, net.isIP(peer) === 6 ? "ipv6" : "ipv4");
  if (fromTrustedProxy) {
    const forwardedFor = String(req.headers["x-forwarded-for"] ?? "").split(",").map((s) => s.trim()).filter(Boolean);
    if (forwardedFor.length) clientIp = forwardedFor[forwardedFor.length - 1];
    https = String(req.headers["x-forwarded-proto"] ?? "").split(",")[0].trim() === "https";
  } else {
    delete req.headers["x-forwarded-for"];
    delete req.headers["x-forwarded-host"];
    delete req.headers["x-forwarded-proto"];
  }
  req.headers["x-portcullis-client-ip"] = clientIp;
  if (!fromTrustedProxy) req.headers["x-forwarded-proto"] = https ? "https" : "http";

  res.setHeader("X-Content-Type-Options", "nosniff");
  res.setHeader("X-Frame-Options", "DENY");
  res.setHeader("Referrer-Policy", "same-origin");
  res.setHeader("Content-Security-Policy", CONTENT_SECURITY_POLICY);
  if (https) res.setHeader("Strict-Transport-Security", "max-age=31536000; includeSubDomains");
  return { clientIp, https };
}

/**
 * Whether the mode in the environment lets the console start on this bind address (no files or
 * database read here; lib/console/tls-manager.ts checkTlsEnvironment adds the provided files' checks).
 */
export function checkTlsMode(config: Config): { ok: true } | { ok: false; message: string } {
  const { mode } = config.tls;
  if (mode === "off" && !isLoopbackHost(config.host) && !config.tls.allowInsecureHttp) {
    return {
      ok: false,
      message: `PORTCULLIS_TLS_MODE=off on ${config.host} would send passwords unencrypted over the network. Bind to 127.0.0.1, run behind a TLS proxy (PORTCULLIS_TLS_MODE=behind_proxy), or accept the risk with PORTCULLIS_ALLOW_INSECURE_HTTP=true.`,
    };
  }
  return { ok: true };
}
