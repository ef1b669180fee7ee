import http from "node:http";
import https from "node:https";
import type net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { parseConfig } from "../lib/config";
import { CONTENT_SECURITY_POLICY, prepareRequest, trustedProxyList } from "../lib/console/http";
import { findFreePort } from "../lib/net";
import { createSelfSignedCertificate } from "../lib/pki/selfSigned";

// The console's security headers, as lib/console/http.ts sets them on every request before Next.js
// sees it (pages, API and static assets alike: the e2e spec 10-console-tls checks those through the
// built app). Here: a real server on loopback and real requests, for each way a browser can reach it.

type Started = { server: http.Server | https.Server; port: number; seen: { https?: boolean; proto?: string } };
const servers: Started["server"][] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function start(env: Record<string, string>, tlsOptions?: { cert: string; key: string }): Promise<Started> {
  const config = parseConfig(env);
  const trusted: net.BlockList = trustedProxyList(config.tls.trustedProxies);
  const seen: Started["seen"] = {};
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const ctx = prepareRequest(req, res, { config, trusted, tls: Boolean(tlsOptions) });
    seen.https = ctx.https;
    seen.proto = String(req.headers["x-forwarded-proto"]);
    res.end("ok");
  };
  const server = tlsOptions ? https.createServer(tlsOptions, handler) : http.createServer(handler);
  const port = await findFreePort();
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  servers.push(server);
  return { server, port, seen };
}

function get(port: number, opts: { tls?: boolean; headers?: Record<string, string>; path?: string } = {}): Promise<http.IncomingHttpHeaders> {
  return new Promise((resolve, reject) => {
    const request = (opts.tls ? https : http).get(
      { host: "127.0.0.1", port, path: opts.path ?? "/", headers: opts.headers, rejectUnauthorized: false },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.headers));
      },
    );
    request.on("error", reject);
  });
}

function expectBaseHeaders(headers: http.IncomingHttpHeaders) {
  expect(headers["x-content-type-options"]).toBe("nosniff");
  expect(headers["x-frame-options"]).toBe("DENY");
  expect(headers["content-security-policy"]).toBe(CONTENT_SECURITY_POLICY);
}

describe("security headers on every console response", () => {
  it("over plain HTTP: nosniff, DENY and the CSP, and no HSTS (a browser would ignore it, and it must not pin HTTPS on a plain console)", async () => {
    const { port, seen } = await start({ PORTCULLIS_TLS_MODE: "off" });
    const headers = await get(port, { path: "/_next/static/chunks/x.js" });
    expectBaseHeaders(headers);
    expect(headers["strict-transport-security"]).toBeUndefined();
    expect(seen.https).toBe(false);
  });

  it("over HTTPS: HSTS as well", async () => {
    const { certificatePem, privateKeyPem } = await createSelfSignedCertificate({ names: [{ type: "ip", value: "127.0.0.1" }], keyType: "ecdsa-p256", validityDays: 1 });
    const { port, seen } = await start({ PORTCULLIS_TLS_MODE: "provided" }, { cert: certificatePem, key: privateKeyPem });
    const headers = await get(port, { tls: true, path: "/api/v1/health" });
    expectBaseHeaders(headers);
    expect(headers["strict-transport-security"]).toBe("max-age=31536000; includeSubDomains");
    expect(seen).toEqual({ https: true, proto: "https" });
  });

  it("behind a trusted proxy that says https: HSTS; that says http: none", async () => {
    const { port, seen } = await start({ PORTCULLIS_TLS_MODE: "behind_proxy", PORTCULLIS_TRUSTED_PROXIES: "127.0.0.1" });
    const viaHttps = await get(port, { headers: { "X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9" } });
    expectBaseHeaders(viaHttps);
    expect(viaHttps["strict-transport-security"]).toBe("max-age=31536000; includeSubDomains");
    expect(seen.https).toBe(true);

    const viaHttp = await get(port, { headers: { "X-Forwarded-Proto": "http" } });
    expectBaseHeaders(viaHttp);
    expect(viaHttp["strict-transport-security"]).toBeUndefined();
    expect(seen.https).toBe(false);
  });

  it("ignores X-Forwarded-Proto from a peer that is not a trusted proxy, and outside behind_proxy mode", async () => {
    const untrusted = await start({ PORTCULLIS_TLS_MODE: "behind_proxy", PORTCULLIS_TRUSTED_PROXIES: "192.0.2.10" });
    const headers = await get(untrusted.port, { headers: { "X-Forwarded-Proto": "https" } });
    expectBaseHeaders(headers);
    expect(headers["strict-transport-security"]).toBeUndefined();
    expect(untrusted.seen).toEqual({ https: false, proto: "http" });

    const plain = await start({ PORTCULLIS_TLS_MODE: "off" });
    const spoofed = await get(plain.port, { headers: { "X-Forwarded-Proto": "https" } });
    expect(spoofed["strict-transport-security"]).toBeUndefined();
    expect(plain.seen).toEqual({ https: false, proto: "http" });
  });

  it("the CSP forbids framing, plugins and foreign scripts, and allows only this origin to be fetched (the live stream included)", () => {
    const directives = new Map(CONTENT_SECURITY_POLICY.split(";").map((d) => d.trim().split(/\s+/)).map(([name, ...values]) => [name, values]));
    expect(directives.get("frame-ancestors")).toEqual(["'none'"]);
    expect(directives.get("object-src")).toEqual(["'none'"]);
    expect(directives.get("default-src")).toEqual(["'self'"]);
    expect(directives.get("connect-src")).toEqual(["'self'"]);
    expect(directives.get("script-src")).not.toContain("'unsafe-eval'");
    expect(directives.get("script-src")?.some((s) => s.startsWith("http") || s === "*")).toBe(false);
    expect(directives.get("base-uri")).toEqual(["'self'"]);
  });
});
