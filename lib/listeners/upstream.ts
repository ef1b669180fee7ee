import { createRequire } from "node:module";
import net from "node:net";
import tls from "node:tls";
import type { Readable } from "node:stream";

// The edge's HTTP/1.1 client towards a listener's upstream: keep-alive connections per origin, each a
// socket and Node's own HTTP parser (llhttp's C++ binding, what node:http's client and server run on).
// It replaced undici's Pool on the proxy's request path: with one response parsed by C++ and handed over
// as a flat [name, value, …] list, and one write per request head, a proxied request costs the edge less
// JavaScript than undici's dispatcher, its WebAssembly parser and its header objects (bench/README.md).
//
// What an operator may expect of it, much as of nginx's upstream keep-alive: a connection is reused only after
// a complete response to a completely sent request that both sides agreed to keep alive; an idle one is
// closed after 4 s (before Node's default 5 s on the other side, so the upstream rarely closes one under
// a new request), and a request that meets a reused connection closing before any answer is sent again
// once on a new connection when it is safe to repeat (an idempotent method without a body). An upstream
// that does not answer a request within 60 s, or stalls a response as long, or cannot be connected to
// within 10 s, gets the 502 page (or the client's connection closed, once the response has begun).

/** llhttp through Node's binding, as lib/_http_common.js sets it up. */
type Parser = {
  initialize(type: number, resource: object, maxHeaderSize: number, lenient: number): void;
  execute(data: Buffer): number | Error;
  finish(): number | Error | undefined;
  close(): void;
  [callback: number]: unknown;
  connection?: UpstreamConnection;
};
type ParserClass = {
  new (): Parser;
  RESPONSE: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kLenientNone: number;
};

const { HTTPParser } = createRequire(import.meta.url)("_http_common") as { HTTPParser: ParserClass };

/** Limits of a pool; the defaults are the edge's (tests shorten them). */
export type UpstreamPoolOptions = {
  /** Connections open at once; requests beyond wait for one to come free. */
  maxConnections?: number;
  /** An idle connection is closed after this long. */
  idleMs?: number;
  /** A request fails when the upstream sends nothing for this long (before or during its response). */
  answerMs?: number;
  /** A connection that is not up after this long fails its request. */
  connectMs?: number;
};

/**
 * What the proxy does with an upstream's answer. Per request, in this order: onStart; onInformational for each 1xx
 * answer; then onHead, onData for each piece of the body and onEnd, or onError at any point after onStart.
 */
export interface UpstreamHandler {
  /** The request is on its way (or queued); abort() and resume() act on it from now on. */
  onStart(control: UpstreamControl): void;
  /** An informational (1xx) response: 103 Early Hints, say. */
  onInformational(statusCode: number, headers: string[]): void;
  /** The final response's status and headers, as a flat [name, value, …] list in the upstream's spelling. */
  onHead(statusCode: number, statusMessage: string, headers: string[]): void;
  /** A piece of the body; false asks the upstream to wait until resume(). */
  onData(chunk: Buffer): boolean;
  /** The end of the body, with its trailers (often none). */
  onEnd(trailers: string[]): void;
  /** The upstream could not be reached, broke off, timed out or answered with something other than HTTP/1.1. */
  onError(err: Error & { code?: string }): void;
}

export interface UpstreamControl {
  /** The client went away: drop the request, and with it the connection if the request is under way. */
  abort(): void;
  /** Go on reading the body after onData returned false. */
  resume(): void;
}

export type UpstreamRequest = {
  method: string;
  path: string;
  /** Flat [name, value, …], lower-case names, without hop-by-hop headers. */
  headers: string[];
  /** A request body to stream (sent chunked unless the headers carry content-length), or null. */
  body: Readable | null;
  /** The body's trailers once it has ended, flat [name, value, …]: sent after a chunked body. */
  trailers?: () => string[];
};

export type UpstreamTarget = { origin: string; hostname: string; port: number; secure: boolean; host: string; /** https: false accepts any certificate (default true). */ verify?: boolean };

/** tls.connect's server name and certificate check for an https upstream (an IP address gets no SNI). */
export function upstreamTlsOptions(target: { hostname: string; verify?: boolean }): tls.ConnectionOptions {
  return { servername: net.isIP(target.hostname) ? undefined : target.hostname, rejectUnauthorized: target.verify !== false };
}

const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

const upstreamError = (message: string, code: string) => Object.assign(new Error(message), { code });

/** The header and trailer lists of a response that has none apart from those in kOnHeadersComplete (nearly every one). */
const NO_LINES = Object.freeze([]) as unknown as string[];

/** One request, from dispatch to the end of its response. */
class Pending implements UpstreamControl {
  connection: UpstreamConnection | null = null;
  aborted = false;
  retried = false;
  /** Whether any of the response has arrived: a request is sent again only before that. */
  answered = false;
  readonly head: string;
  readonly chunked: boolean;

  constructor(
    readonly pool: UpstreamPool,
    readonly request: UpstreamRequest,
    readonly handler: UpstreamHandler,
  ) {
    const { method, path, headers, body } = request;
    let head = `${method} ${path} HTTP/1.1\r\n`;
    let host = false;
    let length = false;
    for (let i = 0; i < headers.length; i += 2) {
      const name = headers[i];
      if (name === "host") host = true;
      else if (name === "content-length") length = true;
      head += `${name}: ${headers[i + 1]}\r\n`;
    }
    if (!host) head += `host: ${pool.target.host}\r\n`;
    this.chunked = body !== null && !length;
    if (this.chunked) head += "transfer-encoding: chunked\r\n";
    this.head = `${head}\r\n`;
  }

  get retryable() {
    return !this.retried && !this.answered && this.request.body === null && IDEMPOTENT.has(this.request.method);
  }

  abort() {
    if (this.aborted) return;
    this.aborted = true;
    const connection = this.connection;
    if (connection) connection.destroy();
    else this.pool.unqueue(this);
  }

  resume() {
    const connection = this.connection;
    if (!connection || connection.pending !== this) return;
    connection.lastActive = this.pool.clock;
    connection.socket.resume();
  }
}

/** A connection to the upstream, with its parser; at most one request on it at a time. */
class UpstreamConnection {
  readonly socket: net.Socket;
  readonly parser: Parser;
  pending: Pending | null = null;
  /** Requests this connection has completed: a failure on a reused connection may be the upstream closing it. */
  served = 0;
  connected = false;
  closed = false;
  /** The pool's clock when this connection last did something. */
  lastActive: number;
  // The response being read.
  /** Header lines the parser passed before kOnHeadersComplete (over 32 of them), then the trailers: NO_LINES until some come. */
  headerLines = NO_LINES;
  trailers = NO_LINES;
  headersDone = false;
  informational = false;
  keepAlive = false;
  responseDone = false;
  requestSent = false;

  constructor(readonly pool: UpstreamPool) {
    const { hostname, port, secure } = pool.target;
    this.lastActive = pool.clock;
    this.socket = secure
      ? tls.connect({ host: hostname, port, ...upstreamTlsOptions(pool.target), ALPNProtocols: ["http/1.1"] })
      : net.connect({ host: hostname, port, noDelay: true });
    const parser = new HTTPParser();
    parser.initialize(HTTPParser.RESPONSE, {}, 0, HTTPParser.kLenientNone);
    parser[HTTPParser.kOnHeaders] = onParserHeaders;
    parser[HTTPParser.kOnHeadersComplete] = onParserHeadersComplete;
    parser[HTTPParser.kOnBody] = onParserBody;
    parser[HTTPParser.kOnMessageComplete] = onParserMessageComplete;
    parser.connection = this;
    this.parser = parser;
    const socket = this.socket as net.Socket & { connection?: UpstreamConnection };
    socket.connection = this;
    socket.once(secure ? "secureConnect" : "connect", onSocketConnect);
    socket.on("data", onSocketData);
    socket.on("end", onSocketEnd);
    socket.on("error", onSocketError);
    socket.on("close", onSocketClose);
  }

  /** Puts a request on this idle connection. */
  send(pending: Pending) {
    this.pending = pending;
    pending.connection = this;
    this.headerLines = NO_LINES;
    this.trailers = NO_LINES;
    this.headersDone = false;
    this.informational = false;
    this.keepAlive = false;
    this.responseDone = false;
    this.requestSent = false;
    this.lastActive = this.pool.clock;
    const { body } = pending.request;
    this.socket.write(pending.head, "latin1");
    if (body === null) this.requestSent = true;
    else streamBody(this, pending, body);
  }

  /** A request is over on this connection: it goes back to the pool, or closes if it cannot be reused. */
  finish() {
    const pending = this.pending;
    this.pending = null;
    if (pending) pending.connection = null;
    this.served++;
    this.lastActive = this.pool.clock;
    if (!this.keepAlive || !this.requestSent || this.closed) this.destroy();
    else {
      // A slow client may have paused the socket on the response's last bytes: the next request must be read.
      if (this.socket.isPaused()) this.socket.resume();
      this.pool.release(this);
    }
  }

  /** Something went wrong with the request on this connection (or it closed under it). */
  fail(err: Error & { code?: string }) {
    const pending = this.pending;
    this.destroy();
    if (!pending || pending.aborted) return;
    this.pending = null;
    pending.connection = null;
    if (this.served > 0 && pending.retryable && !this.pool.closing) {
      pending.retried = true;
      this.pool.dispatchNew(pending);
      return;
    }
    pending.handler.onError(err);
  }

  destroy() {
    if (this.closed) return;
    this.closed = true;
    this.pool.forget(this);
    this.socket.destroy();
  }
}

function streamBody(connection: UpstreamConnection, pending: Pending, body: Readable) {
  const { socket } = connection;
  let waiting = false;
  const onDrain = () => {
    waiting = false;
    body.resume();
  };
  const onData = (chunk: Buffer) => {
    if (pending.connection !== connection) return;
    connection.lastActive = connection.pool.clock;
    let ok: boolean;
    if (pending.chunked) {
      if (chunk.length === 0) return; // "0\r\n" would end the body
      socket.cork();
      socket.write(`${chunk.length.toString(16)}\r\n`);
      socket.write(chunk);
      ok = socket.write("\r\n");
      socket.uncork();
    } else ok = socket.write(chunk);
    if (!ok) {
      body.pause();
      if (!waiting) {
        waiting = true;
        socket.once("drain", onDrain);
      }
    }
  };
  const onEnd = () => {
    body.off("data", onData);
    if (pending.connection !== connection) return;
    if (pending.chunked) {
      let last = "0\r\n";
      const trailers = pending.request.trailers?.() ?? [];
      for (let i = 0; i < trailers.length; i += 2) last += `${trailers[i]}: ${trailers[i + 1]}\r\n`;
      socket.write(`${last}\r\n`, "latin1");
    }
    connection.requestSent = true;
    connection.lastActive = connection.pool.clock;
  };
  body.on("data", onData);
  body.once("end", onEnd);
}

type ParserThis = Parser & { connection: UpstreamConnection };

function onParserHeaders(this: ParserThis, headers: string[]) {
  const c = this.connection;
  if (c.headersDone) c.trailers = c.trailers === NO_LINES ? headers.slice() : c.trailers.concat(headers);
  else c.headerLines = c.headerLines === NO_LINES ? headers.slice() : c.headerLines.concat(headers);
}

function onParserHeadersComplete(
  this: ParserThis,
  _major: number,
  _minor: number,
  headers: string[] | undefined,
  _method: unknown,
  _url: unknown,
  statusCode: number,
  statusMessage: string,
  _upgrade: boolean,
  shouldKeepAlive: boolean,
): number {
  const c = this.connection;
  const pending = c.pending;
  const lines = headers ?? c.headerLines;
  c.headerLines = NO_LINES;
  if (!pending || pending.aborted) return 1;
  pending.answered = true;
  if (statusCode === 101) {
    // Nothing asked for it (upgrades do not come through here): what follows is not HTTP.
    c.fail(upstreamError("it switched protocols when no upgrade was asked for", "EBADHTTP"));
    return 1;
  }
  if (statusCode < 200) {
    c.informational = true;
    pending.handler.onInformational(statusCode, lines);
    return 1;
  }
  c.headersDone = true;
  c.keepAlive = shouldKeepAlive;
  pending.handler.onHead(statusCode, statusMessage, lines);
  // A response to HEAD has the length of the body it would have had, and no body; 304 has none either.
  return pending.request.method === "HEAD" || statusCode === 304 ? 1 : 0;
}

function onParserBody(this: ParserThis, chunk: Buffer) {
  const c = this.connection;
  const pending = c.pending;
  if (!pending || pending.aborted) return;
  c.lastActive = c.pool.clock;
  if (!pending.handler.onData(chunk)) c.socket.pause();
}

function onParserMessageComplete(this: ParserThis) {
  const c = this.connection;
  if (c.informational) {
    c.informational = false;
    return;
  }
  const pending = c.pending;
  if (!pending || c.responseDone) return;
  c.responseDone = true;
  if (!pending.aborted) pending.handler.onEnd(c.trailers);
}

type SocketThis = net.Socket & { connection: UpstreamConnection };

function onSocketConnect(this: SocketThis) {
  const c = this.connection;
  c.connected = true;
  c.lastActive = c.pool.clock;
}

function onSocketData(this: SocketThis, data: Buffer) {
  const c = this.connection;
  if (!c.pending) {
    // Bytes on an idle connection: nothing was asked, so it cannot be trusted with the next request.
    c.destroy();
    return;
  }
  c.lastActive = c.pool.clock;
  const result = c.parser.execute(data);
  if (result instanceof Error) {
    c.fail(upstreamError(`it answered with something that is not valid HTTP/1.1 (${(result as Error & { code?: string }).code ?? result.message})`, "EBADHTTP"));
    return;
  }
  // A response that came before the whole request body was sent ends the connection (finish sees to it).
  if (c.responseDone && c.pending) c.finish();
}

function onSocketEnd(this: SocketThis) {
  const c = this.connection;
  // The upstream closed an idle connection: out of the pool now, not at its 'close'.
  if (!c.pending) {
    c.destroy();
    return;
  }
  // A response delimited by the end of the connection ends here.
  if (c.pending && c.headersDone && !c.responseDone) {
    const result = c.parser.finish();
    if (result instanceof Error) c.fail(upstreamError("it closed the connection in the middle of a response", "ECONNRESET"));
    else if (c.responseDone) c.finish();
  }
}

function onSocketError(this: SocketThis, err: Error & { code?: string }) {
  this.connection.fail(err);
}

function onSocketClose(this: SocketThis) {
  const c = this.connection;
  if (c.pending) {
    if (c.responseDone) c.finish();
    else c.fail(upstreamError("it closed the connection", "ECONNRESET"));
  } else c.destroy();
  c.parser.close();
}

/** Keep-alive connections to one upstream origin, shared by every listener that proxies to it. */
export class UpstreamPool {
  /** Milliseconds, advanced by the sweep in steps of tickMs: what lastActive is measured in. */
  clock = 0;
  private readonly maxConnections: number;
  private readonly idleMs: number;
  private readonly answerMs: number;
  private readonly connectMs: number;
  private readonly tickMs: number;
  private readonly idle: UpstreamConnection[] = [];
  private readonly connections = new Set<UpstreamConnection>();
  private readonly queue: Pending[] = [];
  private sweeper?: NodeJS.Timeout;
  /** No new connections: the pool's origin is no longer proxied to, or the edge is stopping. */
  closing = false;

  constructor(
    readonly target: UpstreamTarget,
    options: UpstreamPoolOptions = {},
  ) {
    this.maxConnections = options.maxConnections ?? 256;
    this.idleMs = options.idleMs ?? 4000;
    this.answerMs = options.answerMs ?? 60_000;
    this.connectMs = options.connectMs ?? 10_000;
    this.tickMs = Math.max(10, Math.min(1000, this.idleMs / 4, this.answerMs / 4, this.connectMs / 4));
  }

  /** Sends a request; the handler hears of its answer. Throws nothing: a failure goes to handler.onError. */
  request(request: UpstreamRequest, handler: UpstreamHandler) {
    const pending = new Pending(this, request, handler);
    handler.onStart(pending);
    if (pending.aborted) return;
    if (this.closing) {
      handler.onError(upstreamError("the listener's upstream changed", "ECONNRESET"));
      return;
    }
    const idle = this.idle.pop();
    if (idle) idle.send(pending);
    else if (this.connections.size < this.maxConnections) this.dispatchNew(pending);
    else this.queue.push(pending);
  }

  dispatchNew(pending: Pending) {
    const connection = new UpstreamConnection(this);
    this.connections.add(connection);
    this.sweeper ??= setInterval(sweep, this.tickMs, this).unref();
    connection.send(pending);
  }

  /** A connection free for the next request. */
  release(connection: UpstreamConnection) {
    let next = this.queue.shift();
    while (next?.aborted) next = this.queue.shift();
    if (next) connection.send(next);
    else if (this.closing) connection.destroy();
    else this.idle.push(connection);
  }

  unqueue(pending: Pending) {
    const i = this.queue.indexOf(pending);
    if (i >= 0) this.queue.splice(i, 1);
  }

  forget(connection: UpstreamConnection) {
    this.connections.delete(connection);
    const i = this.idle.indexOf(connection);
    if (i >= 0) this.idle.splice(i, 1);
    // A queued request takes the place of a connection that has gone.
    let next = this.queue.shift();
    while (next?.aborted) next = this.queue.shift();
    if (next) this.dispatchNew(next);
    else if (this.connections.size === 0 && this.sweeper) {
      clearInterval(this.sweeper);
      this.sweeper = undefined;
    }
  }

  /** Open connections (for tests and status). */
  get size() {
    return this.connections.size;
  }

  /** Closes idle connections now and the others once their request is over. */
  close() {
    this.closing = true;
    for (const connection of [...this.idle]) connection.destroy();
  }

  /** Closes every connection now; requests under way get the 502 page. */
  destroy() {
    this.closing = true;
    for (const pending of this.queue.splice(0)) pending.handler.onError(upstreamError("the edge is stopping", "ECONNRESET"));
    for (const connection of [...this.connections]) connection.fail(upstreamError("the edge is stopping", "ECONNRESET"));
  }

  /** Every tickMs: close idle connections, and fail requests the upstream leaves unanswered. */
  tick() {
    const now = (this.clock += this.tickMs);
    for (const connection of [...this.connections]) {
      const quiet = now - connection.lastActive;
      if (!connection.pending) {
        if (quiet >= this.idleMs) connection.destroy();
      } else if (!connection.connected && quiet >= this.connectMs) {
        connection.fail(upstreamError("it did not accept a connection in time", "ETIMEDOUT"));
      } else if (quiet >= this.answerMs && !connection.socket.isPaused()) {
        connection.fail(upstreamError("it did not answer in time", "ETIMEDOUT"));
      }
    }
  }
}

function sweep(pool: UpstreamPool) {
  pool.tick();
}
