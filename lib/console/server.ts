import http from "node:http";
import https from "node:https";
import net from "node:net";
import tls from "node:tls";
import type { Config } from "../config";
import type { Keyring } from "../crypto/seal";
import type { Db } from "../db";
import { parseClientHello } from "../listeners/client-hello";
import { prepareRequest, trustedProxyList, type RequestContext } from "./http";
import { acmeChallengeContext, ConsoleTlsManager, type ManagerOptions } from "./tls-manager";

// The console's own server, without Next.js: plain HTTP or HTTPS by the TLS mode, the security headers
// on every response, the TLS-ALPN-01 answer for the console's domain, and certificate swaps without
// a restart. server.ts wires Next's request handler into it; tests use a small handler.

export type ConsoleHandler = (req: http.IncomingMessage, res: http.ServerResponse, ctx: RequestContext) => void | Promise<void>;

export type ConsoleServer = {
  server: http.Server;
  /** The socket that listens (for HTTPS, a TCP front that reads the ClientHello first). */
  listener: net.Server;
  tls: ConsoleTlsManager;
  https: boolean;
  port: number;
  url: string;
  close(): Promise<void>;
};

const HELLO_TIMEOUT_MS = 10_000;
const MAX_HELLO_BYTES = 64 * 1024;

export async function createConsoleServer(opts: {
  config: Config;
  db: Db;
  keyring: Keyring;
  handler: ConsoleHandler;
  log: ManagerOptions["log"];
  onError?: (err: unknown) => void;
}): Promise<ConsoleServer> {
  const { config, db, keyring, handler, log } = opts;
  const manager = new ConsoleTlsManager({ config, db, keyring, log });
  await manager.start(); // a ConsoleTlsStartupError here stops the process with its message
  const trusted = trustedProxyList(config.tls.trustedProxies);
  const useTls = manager.https;

  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const ctx = prepareRequest(req, res, { config, trusted, tls: useTls });
    Promise.resolve()
      .then(() => handler(req, res, ctx))
      .catch((err: unknown) => {
        (opts.onError ?? ((e) => log.error({ err: e }, "request failed")))(err);
        if (!res.headersSent) {
          res.statusCode = 500;
          res.end("Internal error; see the console log.");
        }
      });
  };

  let server: http.Server;
  let listener: net.Server;
  if (useTls) {
    const httpsServer = https.createServer({ ...manager.secureContextOptions(), ALPNProtocols: ["http/1.1"] }, onRequest);
    manager.attach(httpsServer);
    server = httpsServer;
    listener = net.createServer((socket) => frontConnection(socket, httpsServer, (name) => acmeChallengeContext(db, keyring, name)));
  } else {
    server = http.createServer(onRequest);
    listener = server;
  }
  server.keepAliveTimeout = 65_000;

  await new Promise<void>((resolve, reject) => {
    listener.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE") reject(new Error(`port ${config.port} on ${config.host} is already in use; stop what uses it or set PORTCULLIS_PORT`));
      else if (err.code === "EACCES") reject(new Error(`not allowed to listen on ${config.host}:${config.port}; use a port above 1023 or grant the capability`));
      else reject(err);
    });
    listener.listen(config.port, config.host, resolve);
  });
  // The HTTPS server never listens itself: its connections arrive through the front. "listening" sets
  // up its connection tracking (idle and header timeouts, closeIdleConnections).
  if (listener !== server) server.emit("listening");
  const port = (listener.address() as net.AddressInfo).port;
  const hostForUrl = config.host.includes(":") ? `[${config.host}]` : config.host;
  const url = `${useTls ? "https" : "http"}://${hostForUrl}:${port}`;

  let closed = false;
  return {
    server,
    listener,
    tls: manager,
    https: useTls,
    port,
    url,
    async close() {
      if (closed) return;
      closed = true;
      manager.stop();
      await new Promise<void>((resolve) => {
        listener.close(() => resolve());
        server.closeIdleConnections();
        if (listener !== server) server.close();
        setTimeout(() => server.closeAllConnections(), 5000).unref();
      });
    },
  };
}

/** Reads the ClientHello: a TLS-ALPN-01 validation gets the challenge certificate, everything else the console. */
function frontConnection(socket: net.Socket, httpsServer: https.Server, challenge: (name: string) => Promise<tls.SecureContext | undefined>) {
  let received = Buffer.alloc(0);
  const timer = setTimeout(() => socket.destroy(), HELLO_TIMEOUT_MS);
  socket.on("error", () => socket.destroy());
  const onData = (chunk: Buffer) => {
    received = Buffer.concat([received, chunk]);
    const hello = parseClientHello(received);
    if (hello.status === "incomplete" && received.length < MAX_HELLO_BYTES) return;
    socket.removeListener("data", onData);
    clearTimeout(timer);
    if (hello.status !== "ok") {
      if (/^[A-Z]{3,8} \S+ HTTP\/1\.[01]\r?\n/.test(received.subarray(0, 200).toString("latin1"))) {
        socket.end("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nThis is the Portcullis console's HTTPS port: open it with https://, not http://.\n");
      } else socket.destroy();
      return;
    }
    socket.pause();
    socket.unshift(received);
    if (hello.alpnProtocols.includes("acme-tls/1") && hello.serverName) {
      void challenge(hello.serverName)
        .catch(() => undefined)
        .then((context) => {
          if (!context) return socket.destroy();
          const s = new tls.TLSSocket(socket, { isServer: true, secureContext: context, ALPNProtocols: ["acme-tls/1"] });
          s.on("error", () => s.destroy());
          s.on("secure", () => s.end());
        });
      return;
    }
    httpsServer.emit("connection", socket);
  };
  socket.on("data", onData);
}
