import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import type { Duplex } from "node:stream";

// A reverse proxy on Node's core http module: keep-alive to the upstream, X-Forwarded-*,
// WebSocket (and any other) upgrades, and a plain 502 page when the upstream is down.

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);

const agents = { http: new http.Agent({ keepAlive: true, maxSockets: 256 }), https: new https.Agent({ keepAlive: true, maxSockets: 256 }) };

function forwardedHeaders(req: http.IncomingMessage, proto: "http" | "https", keepUpgrade: boolean): http.OutgoingHttpHeaders {
  const headers: http.OutgoingHttpHeaders = {};
  const connectionTokens = String(req.headers.connection ?? "")
    .split(",")
    .map((t) => t.trim().toLowerCase());
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    if (!keepUpgrade && (HOP_BY_HOP.has(name) || connectionTokens.includes(name))) continue;
    headers[name] = value;
  }
  const client = (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
  const prior = req.headers["x-forwarded-for"];
  headers["x-forwarded-for"] = prior ? `${prior}, ${client}` : client;
  headers["x-forwarded-proto"] = proto;
  headers["x-forwarded-host"] = req.headers.host ?? "";
  return headers;
}

export function badGatewayPage(upstream: URL, reason: string) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>502 Bad Gateway</title></head><body style="font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem">
<h1>502 Bad Gateway</h1><p>Portcullis could not reach the service behind this address (${escapeHtml(upstream.host)}): ${escapeHtml(reason)}.</p>
<p>If you run this site, check that the upstream is running and the listener's upstream URL is right.</p></body></html>`;
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function describeUpstreamError(err: NodeJS.ErrnoException): string {
  if (err.code === "ECONNREFUSED") return "the connection was refused (is it running?)";
  if (err.code === "ETIMEDOUT" || err.code === "ESOCKETTIMEDOUT") return "it did not answer in time";
  if (err.code === "ENOTFOUND" || err.code === "EAI_AGAIN") return "its host name does not resolve";
  if (err.code === "ECONNRESET") return "it closed the connection";
  return err.code ?? err.message;
}

export function proxyRequest(req: http.IncomingMessage, res: http.ServerResponse, upstream: URL, proto: "http" | "https") {
  const secure = upstream.protocol === "https:";
  const outgoing = (secure ? https : http).request({
    protocol: upstream.protocol,
    hostname: upstream.hostname,
    port: upstream.port || (secure ? 443 : 80),
    method: req.method,
    path: joinPath(upstream, req.url ?? "/"),
    headers: forwardedHeaders(req, proto, false),
    agent: secure ? agents.https : agents.http,
    timeout: 60_000,
  });
  outgoing.on("response", (upstreamRes) => {
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(upstreamRes.headers)) {
      if (value !== undefined && !HOP_BY_HOP.has(name)) headers[name] = value;
    }
    res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, headers);
    upstreamRes.pipe(res);
  });
  outgoing.on("timeout", () => outgoing.destroy(Object.assign(new Error("timeout"), { code: "ETIMEDOUT" })));
  outgoing.on("error", (err: NodeJS.ErrnoException) => {
    if (res.headersSent) {
      res.destroy();
      return;
    }
    res.writeHead(502, { "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store" });
    res.end(badGatewayPage(upstream, describeUpstreamError(err)));
  });
  req.pipe(outgoing);
  res.on("close", () => {
    if (!res.writableFinished) outgoing.destroy();
  });
}

/** Upgrades (WebSocket): replay the request head to the upstream, then splice the two sockets. */
export function proxyUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, upstream: URL, proto: "http" | "https") {
  const secure = upstream.protocol === "https:";
  const port = Number(upstream.port || (secure ? 443 : 80));
  const upstreamSocket: net.Socket = secure
    ? tls.connect({ host: upstream.hostname, port, servername: net.isIP(upstream.hostname) ? undefined : upstream.hostname })
    : net.connect({ host: upstream.hostname, port });
  const headers = forwardedHeaders(req, proto, true);
  const lines = [`${req.method} ${joinPath(upstream, req.url ?? "/")} HTTP/1.1`];
  for (const [name, value] of Object.entries(headers)) {
    for (const v of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${v}`);
  }
  upstreamSocket.once(secure ? "secureConnect" : "connect", () => {
    upstreamSocket.write(`${lines.join("\r\n")}\r\n\r\n`);
    if (head.length) upstreamSocket.write(head);
    upstreamSocket.pipe(socket);
    socket.pipe(upstreamSocket);
  });
  upstreamSocket.on("error", () => {
    if (socket.writable) socket.end("HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
  });
  socket.on("error", () => upstreamSocket.destroy());
  socket.on("close", () => upstreamSocket.destroy());
  upstreamSocket.on("close", () => socket.destroy());
}

function joinPath(upstream: URL, requestPath: string): string {
  const base = upstream.pathname.replace(/\/$/, "");
  return `${base}${requestPath.startsWith("/") ? requestPath : `/${requestPath}`}`;
}
