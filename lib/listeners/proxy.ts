import crypto from "node:crypto";
import http from "node:http";
import http2 from "node:http2";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import type { Duplex } from "node:stream";
import { UpstreamPool, upstreamTlsOptions, type UpstreamControl, type UpstreamHandler } from "./upstream";

// The reverse proxy: requests from HTTP/1.1 and HTTP/2 clients go to the upstream over HTTP/1.1 through
// keep-alive connection pools on Node's own HTTP parser (./upstream.ts), with X-Forwarded-*, streamed
// bodies and trailers both ways, a plain 502 page when the upstream is down, 103 Early Hints passed on,
// WebSocket (and any other HTTP/1.1) upgrades spliced over raw sockets, and WebSockets over HTTP/2
// (RFC 8441) turned into HTTP/1.1 upgrades towards the upstream.

export type ProxiedRequest = http.IncomingMessage | http2.Http2ServerRequest;
export type ProxiedResponse = http.ServerResponse | http2.Http2ServerResponse;
/** Where a listener counts the requests whose upstream could not be reached or broke off (for /metrics). */
export type UpstreamErrorCount = { upstreamErrors: number };

/** A listener's upstream URL, parsed once per reload rather than once per request. */
export type Upstream = {
  url: URL;
  origin: string;
  basePath: string;
  secure: boolean;
  port: number;
  /** The host to connect to: an IPv6 address without its brackets. */
  hostname: string;
  /** The Host header for a request that came without one. */
  host: string;
  /** For https: whether the upstream's certificate must be valid for its name (false: any certificate is accepted). */
  verify: boolean;
  /** Its connection pool's key: the origin, and whether certificates are checked on its connections. */
  poolKey: string;
};

export function parseUpstream(raw: string, verify = true): Upstream {
  const url = new URL(raw);
  const secure = url.protocol === "https:";
  const hostname = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const poolKey = secure && !verify ? `${url.origin} (certificate not verified)` : url.origin;
  return { url, origin: url.origin, basePath: url.pathname.replace(/\/$/, ""), secure, port: Number(url.port || (secure ? 443 : 80)), hostname, host: url.host, verify, poolKey };
}

// Connection-specific headers (RFC 9110 §7.6.1), which a proxy must not forward, plus Expect, which the
// edge has already answered (Node sends "100 Continue" itself): the upstream would answer it a second time.
const REQUEST_HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect",
  "http2-settings",
]);
// Trailer is end-to-end in a response: it announces the trailers that follow the body.
const RESPONSE_HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "te", "transfer-encoding", "upgrade"]);
const OWN_FORWARDED = new Set(["x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"]);

const UPSTREAM_TIMEOUT_MS = 60_000;

/**
 * One keep-alive pool per upstream origin, shared by every listener that proxies to it; an https origin whose
 * certificate one listener checks and another does not has two, so that no connection serves both.
 */
export class UpstreamPools {
  private readonly pools = new Map<string, UpstreamPool>();

  get(upstream: Upstream): UpstreamPool {
    let pool = this.pools.get(upstream.poolKey);
    if (!pool) {
      pool = new UpstreamPool(upstream, { answerMs: UPSTREAM_TIMEOUT_MS });
      this.pools.set(upstream.poolKey, pool);
    }
    return pool;
  }

  /** Closes the pools no listener proxies to any more (by Upstream.poolKey), once their requests finish. */
  retain(poolKeys: Set<string>) {
    for (const [key, pool] of this.pools) {
      if (poolKeys.has(key)) continue;
      this.pools.delete(key);
      pool.close();
    }
  }

  async destroy() {
    const pools = [...this.pools.values()];
    this.pools.clear();
    for (const pool of pools) pool.destroy();
  }
}

const isHttp2 = (req: ProxiedRequest): req is http2.Http2ServerRequest => req.httpVersionMajor === 2;

function clientAddress(req: ProxiedRequest): string {
  const address = req.socket?.remoteAddress ?? "";
  return address.startsWith("::ffff:") ? address.slice(7) : address;
}

type Outbound = { headers: string[]; body: boolean };

const connectionTokens = (value: string) => new Set(value.split(",").map((t) => t.trim().toLowerCase()));

/**
 * What goes upstream for an HTTP/1.1 request: its end-to-end headers and ours, as a flat
 * [name, value, …] list, and whether a body follows. One pass over rawHeaders: reading req.headers would
 * build a second copy of them for every request.
 */
function fromHttp1(req: http.IncomingMessage, proto: "http" | "https"): Outbound {
  const raw = req.rawHeaders;
  const headers: string[] = [];
  let host = "";
  let forwardedFor = "";
  let connection = "";
  let body = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const value = raw[i + 1];
    if (name === "host") host = value;
    else if (name === "content-length") body = value !== "0";
    else if (name === "transfer-encoding") body = true;
    else if (name === "x-forwarded-for") forwardedFor = forwardedFor ? `${forwardedFor}, ${value}` : value;
    else if (name === "connection") connection = connection ? `${connection}, ${value}` : value;
    if (REQUEST_HOP_BY_HOP.has(name) || OWN_FORWARDED.has(name)) continue;
    headers.push(name, value);
  }
  // Connection may name further headers that are meant for this hop only.
  let out = headers;
  if (connection) {
    const listed = connectionTokens(connection);
    out = [];
    for (let i = 0; i < headers.length; i += 2) if (!listed.has(headers[i])) out.push(headers[i], headers[i + 1]);
  }
  const client = clientAddress(req);
  out.push("x-forwarded-for", forwardedFor ? `${forwardedFor}, ${client}` : client, "x-forwarded-proto", proto, "x-forwarded-host", host);
  return { headers: out, body };
}

/** The same for an HTTP/2 request: pseudo-headers dropped, :authority as Host; no body when the stream ended with the headers. */
function fromHttp2(req: http2.Http2ServerRequest, proto: "http" | "https"): Outbound {
  const source = req.headers;
  const host = String(source[":authority"] ?? source.host ?? "");
  const listed = source.connection ? connectionTokens(String(source.connection)) : undefined;
  const headers: string[] = ["host", host];
  for (const name in source) {
    if (name.charCodeAt(0) === 58 /* ":" */ || name === "host" || REQUEST_HOP_BY_HOP.has(name) || OWN_FORWARDED.has(name) || listed?.has(name)) continue;
    const value = source[name];
    if (Array.isArray(value)) for (const v of value) headers.push(name, v);
    else if (value !== undefined) headers.push(name, value);
  }
  const prior = source["x-forwarded-for"];
  const client = clientAddress(req);
  headers.push("x-forwarded-for", prior ? `${Array.isArray(prior) ? prior.join(", ") : prior}, ${client}` : client, "x-forwarded-proto", proto, "x-forwarded-host", host);
  const length = source["content-length"];
  const body = length !== undefined ? length !== "0" : !req.stream.endAfterHeaders && req.method !== "GET" && req.method !== "HEAD";
  return { headers, body };
}

/** Removes a response's connection-specific headers, in place (the WebSocket path's node:http response). */
function withoutHopByHop(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const listed = headers.connection;
  if (listed) for (const token of String(listed).split(",")) delete headers[token.trim().toLowerCase()];
  for (const name of RESPONSE_HOP_BY_HOP) if (name in headers) delete headers[name];
  return headers;
}

/**
 * A response's end-to-end headers from the upstream's flat [name, value, …] list, in its spelling: the
 * connection-specific ones, and those its Connection header names, stay on this hop.
 */
function endToEnd(raw: string[]): string[] {
  const out: string[] = [];
  let listed: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (name === "connection") listed = listed ? `${listed},${raw[i + 1]}` : raw[i + 1];
    else if (!RESPONSE_HOP_BY_HOP.has(name)) out.push(raw[i], raw[i + 1]);
  }
  if (listed === undefined) return out;
  const tokens = connectionTokens(listed);
  const kept: string[] = [];
  for (let i = 0; i < out.length; i += 2) if (!tokens.has(out[i].toLowerCase())) kept.push(out[i], out[i + 1]);
  return kept;
}

/** A flat header list as an object with lower-case names, repeated ones as arrays (for HTTP/2, hints and trailers). */
function headerObject(flat: string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i < flat.length; i += 2) {
    const name = flat[i].toLowerCase();
    const prior = out[name];
    if (prior === undefined) out[name] = flat[i + 1];
    else if (Array.isArray(prior)) prior.push(flat[i + 1]);
    else out[name] = [prior, flat[i + 1]];
  }
  return out;
}

export function badGatewayPage(upstream: URL, reason: string) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>502 Bad Gateway</title></head><body style="font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem">
<h1>502 Bad Gateway</h1><p>Portcullis could not reach the service behind this address (${escapeHtml(upstream.host)}): ${escapeHtml(reason)}.</p>
<p>If you run this site, check that the upstream is running and the listener's upstream URL is right.</p></body></html>`;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function describeUpstreamError(err: Error & { code?: string; cause?: unknown }): string {
  const code = err.code ?? (err.cause as { code?: string } | undefined)?.code;
  if (code === "ECONNREFUSED") return "the connection was refused (is it running?)";
  if (code === "ETIMEDOUT") return err.message.startsWith("it ") ? err.message : "it did not answer in time";
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") return "its host name does not resolve";
  if (code === "ECONNRESET" || code === "EPIPE") return "it closed the connection";
  if (code === "EBADHTTP") return err.message;
  const certificate = code ? UNTRUSTED_CERTIFICATE[code] : undefined;
  if (certificate) {
    return `its TLS certificate ${certificate} (${code}); if that is expected (a self-signed upstream), set the listener's "Upstream certificate" to "Accept any certificate"`;
  }
  return code ?? err.message;
}

/** Node's codes for an upstream certificate that does not verify, as a reason an operator can act on. */
const UNTRUSTED_CERTIFICATE: Record<string, string> = {
  DEPTH_ZERO_SELF_SIGNED_CERT: "is self-signed",
  SELF_SIGNED_CERT_IN_CHAIN: "chains to a self-signed certificate that is not trusted",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "is not signed by a trusted certificate authority",
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: "is signed by an authority this machine does not trust",
  UNABLE_TO_GET_ISSUER_CERT: "is signed by an authority this machine does not trust",
  CERT_HAS_EXPIRED: "has expired",
  CERT_NOT_YET_VALID: "is not valid yet",
  ERR_TLS_CERT_ALTNAME_INVALID: "does not cover the upstream's host name",
};

function sendBadGateway(res: ProxiedResponse, upstream: Upstream, err: Error) {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const page = badGatewayPage(upstream.url, describeUpstreamError(err));
  res.writeHead(502, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", "content-length": Buffer.byteLength(page) });
  res.end(page);
}

const kExchange = Symbol("portcullis.exchange");
type ResponseWithExchange = ProxiedResponse & { [kExchange]?: Exchange };

/** One request in flight: the upstream pool's handler, on its prototype so that a request allocates no closures. */
class Exchange implements UpstreamHandler {
  control?: UpstreamControl;
  clientGone = false;

  constructor(
    readonly res: ResponseWithExchange,
    readonly upstream: Upstream,
    readonly http2Client: boolean,
    readonly counts: UpstreamErrorCount | undefined,
  ) {}

  onStart(control: UpstreamControl) {
    this.control = control;
  }

  onInformational(statusCode: number, raw: string[]) {
    // 103 Early Hints goes on to the client (Node checks its Link header); 100 Continue was the edge's
    // own to send, and other 1xx codes have no meaning past this hop.
    if (statusCode !== 103 || this.res.headersSent) return;
    const hints = headerObject(endToEnd(raw));
    if (!hints.link) return;
    try {
      this.res.writeEarlyHints(hints);
    } catch {
      // a Link header Node will not send: the hints are an optimisation, the final response still comes
    }
  }

  onHead(statusCode: number, statusMessage: string, raw: string[]) {
    try {
      const headers = endToEnd(raw);
      if (this.http2Client) (this.res as http2.Http2ServerResponse).writeHead(statusCode, headerObject(headers));
      else (this.res as http.ServerResponse).writeHead(statusCode, statusMessage || undefined, headers);
    } catch (err) {
      // A header Node will not send on: the client gets the 502 page, and the upstream's connection goes.
      this.control?.abort();
      this.onError(err as Error);
    }
  }

  onData(chunk: Buffer): boolean {
    // Both response types write a Buffer the same way; TypeScript cannot call through their union.
    if ((this.res as http.ServerResponse).write(chunk)) return true;
    this.res.once("drain", onResponseDrain);
    return false;
  }

  onEnd(trailers: string[]) {
    if (trailers.length) this.res.addTrailers(headerObject(endToEnd(trailers)));
    this.res.end();
  }

  onError(err: Error) {
    if (this.clientGone) return;
    if (this.counts) this.counts.upstreamErrors++;
    sendBadGateway(this.res, this.upstream, err);
  }
}

function onResponseClose(this: ResponseWithExchange) {
  const exchange = this[kExchange];
  if (!exchange || this.writableFinished) return;
  exchange.clientGone = true;
  exchange.control?.abort();
}

function onResponseDrain(this: ResponseWithExchange) {
  this[kExchange]?.control?.resume();
}

// Fields a trailer section must not carry (RFC 9110 §6.5.1): framing, routing and this hop's own.
const NOT_TRAILERS = new Set([...REQUEST_HOP_BY_HOP, "content-length", "host"]);

/** The request's trailers that go on to the upstream, read once its body has ended. */
function requestTrailers(this: ProxiedRequest): string[] {
  const raw = this.rawTrailers;
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (!NOT_TRAILERS.has(name) && name.charCodeAt(0) !== 58 /* ":" */) out.push(name, raw[i + 1]);
  }
  return out;
}

/** Streams one request to the upstream and its response back, over whichever HTTP version the client speaks. */
export function proxyRequest(pools: UpstreamPools, req: ProxiedRequest, res: ProxiedResponse, upstream: Upstream, proto: "http" | "https", counts?: UpstreamErrorCount) {
  const http2Client = isHttp2(req);
  const outbound = http2Client ? fromHttp2(req, proto) : fromHttp1(req as http.IncomingMessage, proto);
  if (!outbound.body) req.resume();
  // Header values, trailers and the path go into the HTTP/1.1 request as they are: Node's strict HTTP/1.1
  // parser has refused CR, LF and other control characters in them, and nghttp2 drops such a field from an
  // HTTP/2 request or resets its stream (edge.test.ts checks that they do not reach the upstream).
  const path = joinPath(upstream, req.url || "/");
  const exchange = new Exchange(res, upstream, http2Client, counts);
  (res as ResponseWithExchange)[kExchange] = exchange;
  res.on("close", onResponseClose);
  pools.get(upstream).request(
    { method: req.method || "GET", path, headers: outbound.headers, body: outbound.body ? req : null, trailers: outbound.body ? requestTrailers.bind(req) : undefined },
    exchange,
  );
}

/** Upgrades (WebSocket): replay the request head to the upstream, then splice the two sockets. */
export function proxyUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, upstream: Upstream, proto: "http" | "https", counts?: UpstreamErrorCount) {
  const { hostname } = upstream;
  const upstreamSocket: net.Socket = upstream.secure
    ? tls.connect({ host: hostname, port: upstream.port, ...upstreamTlsOptions(upstream) })
    : net.connect({ host: hostname, port: upstream.port });
  const lines = [`${req.method} ${joinPath(upstream, req.url ?? "/")} HTTP/1.1`];
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (!OWN_FORWARDED.has(raw[i].toLowerCase())) lines.push(`${raw[i]}: ${raw[i + 1]}`);
  }
  const prior = req.headers["x-forwarded-for"];
  const client = clientAddress(req);
  lines.push(`x-forwarded-for: ${prior ? `${prior}, ${client}` : client}`, `x-forwarded-proto: ${proto}`, `x-forwarded-host: ${req.headers.host ?? ""}`);
  upstreamSocket.once(upstream.secure ? "secureConnect" : "connect", () => {
    upstreamSocket.write(`${lines.join("\r\n")}\r\n\r\n`);
    if (head.length) upstreamSocket.write(head);
    upstreamSocket.pipe(socket);
    socket.pipe(upstreamSocket);
  });
  upstreamSocket.on("error", () => {
    if (counts) counts.upstreamErrors++;
    if (socket.writable) socket.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  });
  socket.on("error", () => upstreamSocket.destroy());
  socket.on("close", () => upstreamSocket.destroy());
  upstreamSocket.on("close", () => socket.destroy());
}

const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
// What an RFC 8441 client sends that the upstream's HTTP/1.1 WebSocket handshake needs as it is; the key is
// the edge's own (an HTTP/2 client sends none) and the edge checks the upstream's answer to it.
const WEBSOCKET_PASSED = new Set(["sec-websocket-protocol", "sec-websocket-extensions", "sec-websocket-version", "origin"]);

/**
 * An extended CONNECT over HTTP/2 (RFC 8441): a WebSocket for browsers that keep one connection per site.
 * The upstream gets an ordinary HTTP/1.1 upgrade; once it answers 101 with the right accept key the client
 * gets 200 and the stream carries the WebSocket frames both ways. Anything other than 101 from the upstream
 * goes back as it is (a 403 or 404 stays one), and an unreachable upstream gets the 502 page.
 */
export function proxyHttp2WebSocket(req: http2.Http2ServerRequest, res: http2.Http2ServerResponse, upstream: Upstream, proto: "http" | "https", counts?: UpstreamErrorCount) {
  const { headers } = fromHttp2(req, proto);
  const key = crypto.randomBytes(16).toString("base64");
  const outgoing: string[] = [];
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    if (!name.startsWith("sec-websocket-") || WEBSOCKET_PASSED.has(name)) outgoing.push(name, headers[i + 1]);
  }
  if (!req.headers["sec-websocket-version"]) outgoing.push("sec-websocket-version", "13");
  outgoing.push("connection", "Upgrade", "upgrade", "websocket", "sec-websocket-key", key);
  const { hostname } = upstream;
  const options: https.RequestOptions = {
    host: hostname,
    port: upstream.port,
    method: "GET",
    path: joinPath(upstream, String(req.headers[":path"] ?? "/")),
    headers: outgoing,
    agent: false,
    timeout: UPSTREAM_TIMEOUT_MS,
    ...(upstream.secure ? upstreamTlsOptions(upstream) : {}),
  };
  const upstreamRequest = (upstream.secure ? https : http).request(options);
  const { stream } = req;
  let settled = false;
  const fail = (err: Error) => {
    if (settled) return;
    settled = true;
    if (counts) counts.upstreamErrors++;
    if (!stream.destroyed) sendBadGateway(res, upstream, err);
  };
  upstreamRequest.on("error", fail);
  upstreamRequest.on("timeout", () => upstreamRequest.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
  let upgraded = false;
  // A client that goes away first takes the upstream request (or the refusal it is reading) with it.
  stream.on("close", () => {
    if (!upgraded) upstreamRequest.destroy();
  });
  upstreamRequest.on("response", (upstreamRes) => {
    // The upstream said no to the upgrade: its answer is the client's.
    settled = true;
    res.writeHead(upstreamRes.statusCode ?? 502, withoutHopByHop({ ...upstreamRes.headers }));
    upstreamRes.pipe(res as unknown as NodeJS.WritableStream);
  });
  upstreamRequest.on("upgrade", (upstreamRes: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    const expected = crypto.createHash("sha1").update(key + WEBSOCKET_GUID).digest("base64");
    if (String(upstreamRes.headers.upgrade ?? "").toLowerCase() !== "websocket" || upstreamRes.headers["sec-websocket-accept"] !== expected) {
      socket.destroy();
      fail(new Error("it answered the WebSocket upgrade with a wrong Sec-WebSocket-Accept or Upgrade header"));
      return;
    }
    settled = true;
    upgraded = true;
    if (stream.destroyed) return socket.destroy();
    socket.setTimeout(0);
    socket.setNoDelay(true);
    const answer: http2.OutgoingHttpHeaders = { ":status": 200 };
    for (const name of ["sec-websocket-protocol", "sec-websocket-extensions"]) {
      const value = upstreamRes.headers[name];
      if (value !== undefined) answer[name] = value;
    }
    stream.respond(answer);
    if (head.length) stream.write(head);
    socket.pipe(stream);
    stream.pipe(socket);
    socket.on("error", () => stream.close(http2.constants.NGHTTP2_CANCEL));
    socket.on("close", () => {
      if (!stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
    });
    stream.on("error", () => socket.destroy());
    stream.on("close", () => socket.destroy());
  });
  upstreamRequest.end();
}

function joinPath(upstream: Upstream, requestPath: string): string {
  return `${upstream.basePath}${requestPath.charCodeAt(0) === 47 /* "/" */ ? requestPath : `/${requestPath}`}`;
}
