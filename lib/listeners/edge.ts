import crypto from "node:crypto";
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import tls from "node:tls";
import type { Logger } from "pino";
import type { Keyring } from "../crypto/seal";
import type { Db } from "../db";
import type { ListenersTable } from "../db/schema";
import { recordEvent } from "../events";
import { nowIso } from "../ids";
import { createSelfSignedCertificate } from "../pki/selfSigned";
import { keyContext } from "../certificates";
import { ListenerCounterStore, type ListenerCounts } from "../metrics/listener-counters";
import { parseClientHello, type ClientHelloResult } from "./client-hello";
import { alpnWire, nativeTls, type NativeServer, type TcpHandle, type TlsWrap } from "./native-tls";
import { parseUpstream, proxyHttp2WebSocket, proxyRequest, proxyUpgrade, UpstreamPools, type ProxiedRequest, type ProxiedResponse, type Upstream } from "./proxy";
import { listenForEdgeRevisions, readEdgeRevision, type RevisionListener } from "./revision";
import { checkServedCertificates, isServedCheckConnection, isServedCheckPeer, periodicRotation, servedChecksInFlight, type CheckPlan } from "./served-check";

// The worker's edge role: runs every enabled listener from the database and serves, per TLS
// handshake, the certificate mapped to the client's SNI name, over HTTP/2 or HTTP/1.1 as the client
// offers (ALPN). A change anywhere (listeners, mappings, certificates) bumps the edge revision; the
// edge hears of it by NOTIFY on PostgreSQL, and by polling otherwise, and rebuilds its index in place.
// Servers are only opened or closed when a listener's address changes, so open connections stay open.

export type CertEntry = { certificateId: string | null; fingerprint: string; context: tls.SecureContext };
export type SniIndex = {
  exact: Map<string, CertEntry>;
  wildcard: Map<string, CertEntry>;
  defaultEntry?: CertEntry;
  fallback?: CertEntry;
};
export type SniChoice = { entry: CertEntry; via: "exact" | "wildcard" | "default" | "fallback" };

/** Exact name, then a one-label wildcard, then the listener's default, then its fallback. */
export function resolveCertificateForSni(index: SniIndex, serverName: string | undefined): SniChoice | undefined {
  if (serverName) {
    const exact = index.exact.get(serverName);
    if (exact) return { entry: exact, via: "exact" };
    const dot = serverName.indexOf(".");
    if (dot > 0) {
      const wildcard = index.wildcard.get(serverName.slice(dot + 1));
      if (wildcard) return { entry: wildcard, via: "wildcard" };
    }
  }
  if (index.defaultEntry) return { entry: index.defaultEntry, via: "default" };
  if (index.fallback) return { entry: index.fallback, via: "fallback" };
  return undefined;
}

type Running = {
  row: ListenersTable;
  upstream?: Upstream;
  server: net.Server | NativeServer;
  httpServer: http.Server;
  h2Server?: http2.Http2Server;
  addressKey: string;
  /** Open client connections, destroyed when the edge stops. */
  connections: Set<{ destroy(): void }>;
  /** This listener's traffic counters (kept across server restarts; flushed to listener_counters). */
  counts: ListenerCounts;
};

const HANDSHAKE_TIMEOUT_MS = 10_000;
const FALLBACK_EVENT_INTERVAL_MS = 10 * 60_000;
const BIND_RETRY_INTERVAL_MS = 5_000;
const IDLE_TIMEOUT_MS = 65_000;
/** While NOTIFY is heard, the revision is still read this often, in case a notification was missed. */
const NOTIFIED_POLL_INTERVAL_MS = 5_000;
const LOAD_BATCH = 500;
// Offered to every client; the server's order wins, so clients that speak HTTP/2 get it.
const ALPN_HTTP = ["h2", "http/1.1"];
const ALPN_HTTP_WIRE = alpnWire(ALPN_HTTP);
const ALPN_CHALLENGE = ["acme-tls/1"];
// A TLS 1.2 client that asks to renegotiate is refused by OpenSSL itself (a no_renegotiation alert; OpenSSL
// clients then end the connection), before any of the new handshake's work. TLS 1.3 has no renegotiation.
const NO_RENEGOTIATION = crypto.constants.SSL_OP_NO_RENEGOTIATION;

export type EdgeOptions = {
  db: Db;
  keyring: Keyring;
  log: Logger;
  pollIntervalMs?: number;
  checkIntervalMs?: number;
  /** This worker's id in listener_counters (default: host, pid and start time). */
  workerId?: string;
  counterFlushIntervalMs?: number;
  /** Terminate TLS with tls.TLSSocket even where Node's TLS stream can be used directly (native-tls.ts). */
  portableTls?: boolean;
  /** A client that has not completed its handshake within this is dropped (default 10 s). */
  handshakeTimeoutMs?: number;
  /** A client connection with no request in flight is closed after this (default 65 s). */
  idleTimeoutMs?: number;
};

type CertRow = { id: string | null; chain_pem: string | null; sealed_key: string | null; fingerprint_sha256: string | null };

export class Edge {
  private readonly running = new Map<string, Running>();
  private readonly indexes = new Map<string, SniIndex>();
  private readonly contextCache = new Map<string, CertEntry>();
  private readonly fallbackNoted = new Map<string, number>();
  private readonly bindFailures = new Map<string, string>();
  private readonly pools = new UpstreamPools();
  private revision: string | null = null;
  private reloading: Promise<void> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;
  private notifications?: RevisionListener;
  private polling = false;
  private pollAgain = false;
  private lastPollAt = 0;
  private checking?: Promise<void>;
  private nextCheck?: { everything: Set<string>; rotate: boolean };
  /** A check put off because a change had not been loaded yet: it goes with the check after that reload. */
  private deferredCheck?: { everything: Set<string>; rotate: boolean };
  /** Handshakes, errors, fallbacks, requests and upstream errors per listener, for /metrics. */
  readonly counters: ListenerCounterStore;
  /** Whether connections are handed to Node's TLS stream directly (native-tls.ts) rather than to a tls.TLSSocket. */
  readonly nativeTls: boolean;
  readonly handshakeTimeoutMs: number;
  readonly idleTimeoutMs: number;

  constructor(private readonly opts: EdgeOptions) {
    this.counters = new ListenerCounterStore(opts.db, opts.workerId, opts.log);
    this.nativeTls = nativeTls !== undefined && !opts.portableTls;
    this.handshakeTimeoutMs = opts.handshakeTimeoutMs ?? HANDSHAKE_TIMEOUT_MS;
    this.idleTimeoutMs = opts.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
  }

  async start() {
    await this.reload();
    const pollIntervalMs = this.opts.pollIntervalMs ?? 250;
    this.notifications = listenForEdgeRevisions(this.opts.db, () => void this.pollRevision());
    const poll = setInterval(() => {
      if (this.notifications?.listening() && Date.now() - this.lastPollAt < NOTIFIED_POLL_INTERVAL_MS) return;
      void this.pollRevision();
    }, pollIntervalMs);
    const check = setInterval(() => void this.runServedCheck({ rotate: true }), this.opts.checkIntervalMs ?? 60_000);
    // A port that was busy is tried again now and then, without reloading everything each poll.
    const retry = setInterval(() => {
      if (this.bindFailures.size) void this.reload();
    }, BIND_RETRY_INTERVAL_MS);
    this.timers.push(poll, check, retry);
    this.counters.start(this.opts.counterFlushIntervalMs);
  }

  async stop() {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    this.notifications?.stop();
    await this.reloading.catch(() => {});
    await Promise.all([...this.running.values()].map((r) => this.closeServer(r, true)));
    this.running.clear();
    await this.pools.destroy();
    await this.counters.stop().catch((err: unknown) => this.opts.log.warn({ err }, "edge: could not save the final listener counters"));
  }

  /** Writes this worker's listener counters now (they are also written every few seconds). */
  flushCounters(): Promise<void> {
    return this.counters.flush();
  }

  /** Listeners this edge serves now, with their bound ports (for health output and tests). */
  status() {
    return [...this.running.values()].map((r) => ({ id: r.row.id, name: r.row.name, address: r.addressKey, connections: r.connections.size }));
  }

  /** Whether changes reach this edge by NOTIFY (PostgreSQL, connected) rather than by polling alone. */
  notified(): boolean {
    return this.notifications?.listening() ?? false;
  }

  private async pollRevision() {
    if (this.stopped) return;
    // A burst of notifications makes one read (and at most one more after it), not one each.
    if (this.polling) {
      this.pollAgain = true;
      return;
    }
    this.polling = true;
    try {
      do {
        this.pollAgain = false;
        this.lastPollAt = Date.now();
        const revision = await readEdgeRevision(this.opts.db);
        if (revision !== this.revision) await this.reload();
      } while (this.pollAgain && !this.stopped);
    } catch (err) {
      this.opts.log.warn({ err }, "edge: could not read the change revision; retrying");
    } finally {
      this.polling = false;
    }
  }

  /** Serialised: a reload that arrives while one runs waits for it, then runs with fresh data. */
  reload(): Promise<void> {
    this.reloading = this.reloading.catch(() => {}).then(() => this.reloadNow());
    return this.reloading;
  }

  private async reloadNow() {
    if (this.stopped) return;
    const { db } = this.opts;
    const revision = await readEdgeRevision(db);
    const rows = await db.selectFrom("listeners").selectAll().where("enabled", "=", 1).execute();
    // Names and fingerprints only: certificates whose context is cached are not read again, which keeps a
    // reload with 10,000 mappings short (and, on SQLite, the event loop free).
    const mappings = await db
      .selectFrom("certificate_mappings")
      .innerJoin("certificates", "certificates.id", "certificate_mappings.certificate_id")
      .select(["certificate_mappings.listener_id", "certificate_mappings.hostname", "certificates.id", "certificates.fingerprint_sha256"])
      .where("certificates.chain_pem", "is not", null)
      .execute();
    const https = rows.filter((r) => r.kind === "https");
    const minVersions = new Map(https.map((r) => [r.id, r.min_tls_version as tls.SecureVersion]));
    const servedMappings = mappings.filter((m) => minVersions.has(m.listener_id));
    const cacheKey = (id: string, fingerprint: string | null, minVersion: string) => (fingerprint ? `${id}|${fingerprint}|${minVersion}` : undefined);

    const wantedIds = new Set<string>();
    for (const row of https) if (row.default_certificate_id) wantedIds.add(row.default_certificate_id);
    for (const m of servedMappings) {
      const key = cacheKey(m.id, m.fingerprint_sha256, minVersions.get(m.listener_id)!);
      if (!key || !this.contextCache.has(key)) wantedIds.add(m.id);
    }
    const loaded = new Map<string, CertRow>();
    const ids = [...wantedIds];
    for (let i = 0; i < ids.length; i += LOAD_BATCH) {
      const batch = await db
        .selectFrom("certificates")
        .select(["id", "chain_pem", "sealed_key", "fingerprint_sha256"])
        .where("id", "in", ids.slice(i, i + LOAD_BATCH))
        .execute();
      for (const c of batch) loaded.set(c.id, c);
    }

    const used = new Map<string, CertEntry>();
    /** The cached entry under `key`, or a new one from `cert` (cached under `key` too, when there is one). */
    const entryFor = (key: string | undefined, cert: CertRow | undefined, minVersion: tls.SecureVersion, contextName: string) => {
      const cached = key ? (used.get(key) ?? this.contextCache.get(key)) : undefined;
      if (cached) {
        used.set(key!, cached);
        return cached;
      }
      if (!cert?.chain_pem || !cert.sealed_key) return undefined;
      try {
        const keyPem = this.opts.keyring.open(cert.sealed_key, contextName);
        const entry: CertEntry = {
          certificateId: cert.id,
          fingerprint: cert.fingerprint_sha256 ?? crypto.createHash("sha256").update(cert.chain_pem).digest("hex"),
          context: tls.createSecureContext({ cert: cert.chain_pem, key: keyPem, minVersion, secureOptions: NO_RENEGOTIATION }),
        };
        if (key) used.set(key, entry);
        return entry;
      } catch (err) {
        this.opts.log.error({ err, certificateId: cert.id }, "edge: cannot load a certificate; it is skipped");
        return undefined;
      }
    };

    const byListener = new Map<string, typeof mappings>();
    for (const m of servedMappings) {
      let list = byListener.get(m.listener_id);
      if (!list) byListener.set(m.listener_id, (list = []));
      list.push(m);
    }
    const nextIndexes = new Map<string, SniIndex>();
    for (const row of https) {
      const minVersion = minVersions.get(row.id)!;
      const index: SniIndex = { exact: new Map(), wildcard: new Map() };
      for (const m of byListener.get(row.id) ?? []) {
        const entry = entryFor(cacheKey(m.id, m.fingerprint_sha256, minVersion), loaded.get(m.id), minVersion, keyContext(m.id));
        if (!entry) continue;
        if (m.hostname.startsWith("*.")) index.wildcard.set(m.hostname.slice(2), entry);
        else index.exact.set(m.hostname, entry);
      }
      const def = row.default_certificate_id ? loaded.get(row.default_certificate_id) : undefined;
      if (def) index.defaultEntry = entryFor(cacheKey(def.id!, def.fingerprint_sha256, minVersion), def, minVersion, keyContext(def.id!));
      if (row.fallback_policy === "self_signed") {
        const fallback = await this.fallbackFor(row);
        const digest = crypto.createHash("sha256").update(fallback.chain_pem).digest("hex");
        index.fallback = entryFor(`fallback|${row.id}|${digest}|${minVersion}`, { id: null, ...fallback }, minVersion, fallbackKeyContext(row.id));
      }
      nextIndexes.set(row.id, index);
    }
    // Swap the indexes first: from here on, every new handshake uses the new certificates.
    this.indexes.clear();
    for (const [id, index] of nextIndexes) this.indexes.set(id, index);
    this.contextCache.clear();
    for (const [key, entry] of used) this.contextCache.set(key, entry);

    const wanted = new Map(rows.map((r) => [r.id, r]));
    for (const [id, running] of this.running) {
      const row = wanted.get(id);
      if (!row || addressKey(row) !== running.addressKey) {
        this.running.delete(id);
        await this.closeServer(running, false);
      } else {
        running.row = row;
        running.upstream = upstreamOf(row);
      }
    }
    for (const id of this.bindFailures.keys()) if (!wanted.has(id)) this.bindFailures.delete(id);
    const opened = new Set<string>();
    for (const row of rows) {
      if (this.running.has(row.id)) continue;
      if (await this.openServer(row)) opened.add(row.id);
    }
    this.pools.retain(new Set([...this.running.values()].flatMap((r) => (r.upstream ? [r.upstream.poolKey] : []))));
    const changed = revision !== this.revision;
    this.revision = revision;
    // Check what is served a moment after a change, once the servers are up: what changed, and everything
    // on a listener that has just opened.
    if (changed || opened.size) setTimeout(() => void this.runServedCheck({ everything: opened }), 300).unref();
  }

  private async fallbackFor(row: ListenersTable): Promise<{ chain_pem: string; sealed_key: string; fingerprint_sha256: string | null }> {
    if (row.fallback_chain_pem && row.fallback_sealed_key) {
      return { chain_pem: row.fallback_chain_pem, sealed_key: row.fallback_sealed_key, fingerprint_sha256: null };
    }
    const { certificatePem, privateKeyPem } = await createSelfSignedCertificate({
      commonName: `Portcullis fallback (${row.name})`,
      names: [{ type: "dns", value: "portcullis-fallback.invalid" }],
      keyType: "ecdsa-p256",
      validityDays: 3650,
    });
    const sealed = this.opts.keyring.seal(privateKeyPem, fallbackKeyContext(row.id));
    // Two edges may race to make one: the first stored wins, and both then use it.
    await this.opts.db
      .updateTable("listeners")
      .set({ fallback_chain_pem: certificatePem, fallback_sealed_key: sealed })
      .where("id", "=", row.id)
      .where("fallback_chain_pem", "is", null)
      .execute();
    const stored = await this.opts.db.selectFrom("listeners").select(["fallback_chain_pem", "fallback_sealed_key"]).where("id", "=", row.id).executeTakeFirstOrThrow();
    return { chain_pem: stored.fallback_chain_pem!, sealed_key: stored.fallback_sealed_key!, fingerprint_sha256: null };
  }

  /** True when the server is listening; a failure is recorded once per distinct reason. */
  private async openServer(row: ListenersTable): Promise<boolean> {
    const connections = new Set<{ destroy(): void }>();
    const httpServer = http.createServer();
    httpServer.keepAliveTimeout = this.idleTimeoutMs;
    let server: net.Server | undefined;
    const counts = this.counters.for(row.id);
    const running: Running = { row, upstream: upstreamOf(row), server: undefined as unknown as net.Server, httpServer, addressKey: addressKey(row), connections, counts };
    if (row.kind === "https") {
      httpServer.on("request", (req, res) => this.handleHttpsRequest(running, req, res));
      httpServer.on("upgrade", (req, socket, head) => {
        counts.requests++;
        if (!running.upstream) return socket.destroy();
        proxyUpgrade(req, socket, head, running.upstream, "https", counts);
      });
      // Never listens: it gets the TLS sockets that negotiated h2. Sessions idle this long are closed, and
      // a client gets as many concurrent streams as nginx allows.
      // enableConnectProtocol: browsers open WebSockets on the HTTP/2 connection they already have (RFC 8441).
      const h2Server = http2.createServer({ settings: { maxConcurrentStreams: 128, enableConnectProtocol: true } });
      h2Server.setTimeout(this.idleTimeoutMs);
      h2Server.on("request", (req, res) => this.handleHttpsRequest(running, req, res));
      h2Server.on("connect", (req, res) => this.handleHttp2Connect(running, req, res));
      h2Server.on("session", (session) => session.on("error", () => session.destroy()));
      running.h2Server = h2Server;
      if (!this.nativeTls) server = net.createServer({ noDelay: true }, (socket) => this.acceptTls(running, socket));
    } else {
      httpServer.on("request", (req, res) => void this.handleHttpRequest(running, req, res));
      httpServer.on("upgrade", (req, socket, head) => {
        counts.requests++;
        const upstream = running.row.http_action === "proxy" ? running.upstream : undefined;
        if (!upstream) return socket.destroy();
        proxyUpgrade(req, socket, head, upstream, "http", counts);
      });
      server = httpServer;
    }
    try {
      if (server) {
        const listening = server;
        (listening as net.Server & { [kTracked]: Set<{ destroy(): void }> })[kTracked] = connections;
        listening.on("connection", trackSocket);
        running.server = listening;
        await new Promise<void>((resolve, reject) => {
          listening.once("error", reject);
          listening.listen({ host: row.bind_address, port: row.port }, () => {
            listening.off("error", reject);
            resolve();
          });
        });
      } else {
        running.server = nativeTls!.listen(row.bind_address, row.port, (handle) => new NativeConnection(this, running, handle as NativeHandle));
      }
      this.running.set(row.id, running);
      if (this.bindFailures.delete(row.id)) {
        await recordEvent(this.opts.db, { type: "listener.bound", listenerId: row.id, message: `listener "${row.name}" now listens on ${row.bind_address}:${row.port}` });
      }
      this.opts.log.info({ listener: row.name, address: running.addressKey }, "edge: listener started");
      return true;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      const failureKey = `${running.addressKey}|${code}`;
      if (this.bindFailures.get(row.id) !== failureKey) {
        this.bindFailures.set(row.id, failureKey);
        const message =
          code === "EADDRINUSE"
            ? `listener "${row.name}" cannot start: ${row.bind_address}:${row.port} is in use by another program`
            : code === "EACCES"
              ? `listener "${row.name}" cannot start: port ${row.port} needs root or CAP_NET_BIND_SERVICE`
              : `listener "${row.name}" cannot start on ${row.bind_address}:${row.port} (${code})`;
        this.opts.log.error({ listener: row.name, code }, message);
        await recordEvent(this.opts.db, { type: "listener.bind_failed", severity: "error", listenerId: row.id, message, detail: { code } });
      }
      return false;
    }
  }

  /**
   * Stops accepting; requests in flight finish on their own unless the edge itself is stopping.
   */
  private closeServer(running: Running, dropConnections: boolean): Promise<void> {
    return new Promise((resolve) => {
      running.server.close(() => resolve());
      if (dropConnections) for (const c of running.connections) c.destroy();
      else resolve();
    });
  }

  /** With net.Server and tls.TLSSocket, where Node's TLS stream cannot be used directly (native-tls.ts). */
  private acceptTls(running: Running, socket: net.Socket) {
    // Per-connection state lives on the socket and the handlers are shared functions, so that a connection
    // allocates no closures: there are thousands a second.
    const pending = socket as PendingSocket;
    pending[kPending] = { edge: this, running, received: undefined, current: socket, timer: setTimeout(destroyStalled, this.handshakeTimeoutMs, pending), counted: false, secured: false };
    socket.on("error", ignoreError);
    socket.on("data", onClientHelloData);
  }

  /** The ClientHello is in (called by the socket's data handler): a challenge answer, a refusal, or the handshake. */
  clientHello(socket: PendingSocket, state: PendingHandshake, hello: ClientHelloResult) {
    if (hello.status !== "ok") {
      state.running.counts.handshakeErrors++; // not a TLS ClientHello, or a malformed one
      clearTimeout(state.timer);
      socket.destroy();
      return;
    }
    socket.pause();
    socket.unshift(state.received!);
    state.received = undefined;
    if (hello.alpnProtocols.includes("acme-tls/1")) {
      clearTimeout(state.timer);
      void this.challengeHandshake(socket, hello.serverName);
      return;
    }
    // The edge's own served-certificate checks are not traffic: they are left out of the counters.
    state.counted = !isServedCheckConnection(socket);
    const choice = this.chooseCertificate(state.running, hello.serverName, state.counted);
    if (!choice) {
      clearTimeout(state.timer);
      socket.destroy();
      return;
    }
    const tlsSocket = new tls.TLSSocket(socket, { isServer: true, secureContext: choice.entry.context, ALPNProtocols: ALPN_HTTP }) as SecuringSocket;
    tlsSocket[kSecuring] = state;
    tlsSocket.on("error", destroyOnError);
    tlsSocket.on("close", clearHandshakeTimer);
    tlsSocket.once("secure", onSecure); // one hand-over per socket (renegotiation is refused: NO_RENEGOTIATION)
    state.current = tlsSocket;
  }

  /** The native path's twin of clientHello (called by onNativeHelloRead). */
  nativeClientHello(conn: NativeConnection, hello: ClientHelloResult) {
    if (hello.status !== "ok") {
      conn.running.counts.handshakeErrors++; // not a TLS ClientHello, or a malformed one
      conn.destroy();
      return;
    }
    const received = conn.received!;
    conn.received = undefined;
    if (hello.alpnProtocols.includes("acme-tls/1")) {
      // Rare: a TLS-ALPN-01 validation gets a TCP socket and a tls.TLSSocket, as on the portable path.
      clearTimeout(conn.timer);
      const socket = new net.Socket({ handle: conn.handle, pauseOnCreate: true, readable: true, writable: true } as net.SocketConstructorOpts);
      conn.own(socket);
      socket.on("error", ignoreError);
      socket.unshift(received);
      void this.challengeHandshake(socket, hello.serverName);
      return;
    }
    if (servedChecksInFlight()) {
      const peer = nativeTls!.peer(conn.handle);
      conn.counted = !isServedCheckPeer(peer.address, peer.port);
    } else {
      conn.counted = true;
    }
    const choice = this.chooseCertificate(conn.running, hello.serverName, conn.counted);
    if (!choice) conn.destroy();
    else conn.startTls(choice.entry.context, received);
  }

  /** The certificate for this name (undefined when the handshake is refused), counted and noted. */
  private chooseCertificate(running: Running, serverName: string | undefined, counted: boolean): SniChoice | undefined {
    const index = this.indexes.get(running.row.id);
    const choice = index ? resolveCertificateForSni(index, serverName) : undefined;
    if (!choice) {
      if (counted) running.counts.handshakeErrors++; // fallback policy "refuse", and nothing matched
      return undefined;
    }
    if (choice.via === "fallback") {
      if (counted) running.counts.fallbackServed++;
      this.noteFallback(running.row, serverName);
    }
    return choice;
  }

  private async challengeHandshake(socket: net.Socket, serverName: string | undefined) {
    const context = serverName ? await this.challengeContext(serverName).catch(() => undefined) : undefined;
    if (!context) return socket.destroy();
    const challengeSocket = new tls.TLSSocket(socket, { isServer: true, secureContext: context, ALPNProtocols: ALPN_CHALLENGE });
    challengeSocket.on("error", () => challengeSocket.destroy());
    challengeSocket.on("secure", () => challengeSocket.end());
  }

  private async challengeContext(serverName: string): Promise<tls.SecureContext | undefined> {
    const row = await this.opts.db
      .selectFrom("acme_challenges")
      .select(["id", "certificate_pem", "sealed_key"])
      .where("kind", "=", "tls-alpn-01")
      .where("identifier", "=", serverName)
      .where("expires_at", ">", nowIso())
      .orderBy("created_at", "desc")
      .executeTakeFirst();
    if (!row?.certificate_pem || !row.sealed_key) return undefined;
    const key = this.opts.keyring.open(row.sealed_key, `acme-challenge:${row.id}`);
    return tls.createSecureContext({ cert: row.certificate_pem, key });
  }

  private noteFallback(row: ListenersTable, serverName: string | undefined) {
    const key = `${row.id}|${serverName ?? ""}`;
    const last = this.fallbackNoted.get(key) ?? 0;
    if (Date.now() - last < FALLBACK_EVENT_INTERVAL_MS) return;
    this.fallbackNoted.set(key, Date.now());
    const name = serverName ?? "(no SNI name)";
    void recordEvent(this.opts.db, {
      type: "tls.fallback_served",
      severity: "warning",
      listenerId: row.id,
      message: `listener "${row.name}" served its self-signed fallback certificate for ${name}: no certificate is mapped to that name`,
      detail: { serverName: serverName ?? null },
    }).catch((err: unknown) => this.opts.log.warn({ err }, "edge: could not record a fallback event"));
  }

  private handleHttpsRequest(running: Running, req: ProxiedRequest, res: ProxiedResponse) {
    running.counts.requests++;
    if (!running.upstream) {
      res.writeHead(503, { "content-type": "text/plain; charset=utf-8" });
      res.end("This listener has no upstream configured.\n");
      return;
    }
    proxyRequest(this.pools, req, res, running.upstream, "https", running.counts);
  }

  /** HTTP/2's CONNECT: a WebSocket (RFC 8441) goes to the upstream; this is not a forward proxy. */
  private handleHttp2Connect(running: Running, req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) {
    running.counts.requests++;
    const protocol = req.headers[":protocol"];
    if (protocol === "websocket" && running.upstream) {
      proxyHttp2WebSocket(req, res, running.upstream, "https", running.counts);
      return;
    }
    const [status, message] = !running.upstream
      ? [503, "This listener has no upstream configured.\n"]
      : protocol
        ? [501, `The ${String(protocol)} protocol is not supported over HTTP/2 CONNECT; only websocket is.\n`]
        : [405, "CONNECT is not supported: this is a reverse proxy, not a forward proxy.\n"];
    res.writeHead(status, { "content-type": "text/plain; charset=utf-8" });
    res.end(message);
  }

  private async handleHttpRequest(running: Running, req: http.IncomingMessage, res: http.ServerResponse) {
    running.counts.requests++;
    const path = (req.url ?? "/").split("?")[0];
    const prefix = "/.well-known/acme-challenge/";
    if (path.startsWith(prefix)) {
      const token = path.slice(prefix.length);
      const row = /^[A-Za-z0-9_-]{1,256}$/.test(token)
        ? await this.opts.db
            .selectFrom("acme_challenges")
            .select("key_authorization")
            .where("kind", "=", "http-01")
            .where("token", "=", token)
            .where("expires_at", ">", nowIso())
            .executeTakeFirst()
            .catch(() => undefined)
        : undefined;
      if (row?.key_authorization) {
        res.writeHead(200, { "Content-Type": "text/plain" }).end(row.key_authorization);
      } else {
        res.writeHead(404, { "Content-Type": "text/plain" }).end("No pending ACME challenge with this token.\n");
      }
      return;
    }
    const { row } = running;
    if (row.http_action === "proxy" && running.upstream) {
      proxyRequest(this.pools, req, res, running.upstream, "http", running.counts);
      return;
    }
    const host = (req.headers.host ?? "").replace(/:\d+$/, "");
    if (!host) {
      res.writeHead(400, { "Content-Type": "text/plain" }).end("A Host header is needed to redirect to HTTPS.\n");
      return;
    }
    const port = row.redirect_port && row.redirect_port !== 443 ? `:${row.redirect_port}` : "";
    res.writeHead(301, { Location: `https://${host}${port}${req.url ?? "/"}`, "Content-Type": "text/plain" }).end("Moved to HTTPS.\n");
  }

  /** One check at a time: a request that arrives meanwhile runs after it, merged with any other. */
  private runServedCheck(request: { everything?: Set<string>; rotate?: boolean }): Promise<void> {
    const next = (this.nextCheck ??= { everything: new Set(), rotate: false });
    for (const id of request.everything ?? []) next.everything.add(id);
    next.rotate ||= request.rotate ?? false;
    if (this.checking) return this.checking;
    this.checking = (async () => {
      while (this.nextCheck && !this.stopped) {
        const { everything } = this.nextCheck;
        let { rotate } = this.nextCheck;
        this.nextCheck = undefined;
        if (this.deferredCheck) {
          for (const id of this.deferredCheck.everything) everything.add(id);
          rotate ||= this.deferredCheck.rotate;
          this.deferredCheck = undefined;
        }
        const plan: CheckPlan = { everything, rotation: rotate ? periodicRotation : undefined };
        try {
          // A change this edge has not loaded yet would read as "not served": the reload it is about to make
          // checks again once the change is in service.
          if ((await readEdgeRevision(this.opts.db)) !== this.revision) {
            this.deferredCheck = { everything, rotate };
            continue;
          }
          const listeners = [...this.running.values()].filter((r) => r.row.kind === "https").map((r) => r.row);
          await checkServedCertificates(this.opts.db, listeners, plan);
        } catch (err) {
          this.opts.log.warn({ err }, "edge: the served-certificate check failed; it runs again later");
        }
      }
      this.checking = undefined;
    })();
    return this.checking;
  }
}

const kPending = Symbol("portcullis.pendingHandshake");
const kSecuring = Symbol("portcullis.securing");
const kTracked = Symbol("portcullis.trackedIn");
/** One connection from accept to the hand-over of its decrypted stream to the HTTP/1.1 or HTTP/2 server. */
type PendingHandshake = { edge: Edge; running: Running; received: Buffer | undefined; current: net.Socket; timer: NodeJS.Timeout; counted: boolean; secured: boolean };
type PendingSocket = net.Socket & { [kPending]: PendingHandshake };
// secureConnecting and _releaseControl are TLSSocket's own, missing from its type.
type SecuringSocket = tls.TLSSocket & { secureConnecting: boolean; _releaseControl(): boolean; [kSecuring]: PendingHandshake };

/**
 * Adds a read to the bytes received so far: the parsed ClientHello once it is whole (or malformed, or past any
 * real ClientHello's size), undefined while more is needed. Both TLS paths read it this way.
 */
function takeClientHelloBytes(state: { received: Buffer | undefined }, chunk: Buffer): ClientHelloResult | undefined {
  // Almost always the whole ClientHello comes in the first read: no copy then.
  state.received = state.received ? Buffer.concat([state.received, chunk]) : chunk;
  const hello = parseClientHello(state.received);
  return hello.status === "incomplete" && state.received.length < 70_000 ? undefined : hello;
}

function onClientHelloData(this: PendingSocket, chunk: Buffer) {
  const state = this[kPending];
  const hello = takeClientHelloBytes(state, chunk);
  if (!hello) return;
  this.off("data", onClientHelloData);
  state.edge.clientHello(this, state, hello);
}

/** One timer for the whole handshake, ClientHello included: a client that stalls anywhere in it is dropped. */
function destroyStalled(socket: PendingSocket) {
  const state = socket[kPending];
  // A stall inside the TLS handshake is counted when its socket closes; one in a partial ClientHello here. A
  // connection that never sent a byte (a TCP health check, a port scan) is not a handshake and not counted.
  if (state.current === socket && state.received?.length) state.running.counts.handshakeErrors++;
  state.current.destroy();
}

/**
 * The protocol is known once the handshake is done: HTTP/2 sessions and HTTP/1.1 connections each go to
 * their own server, as a tls.Server hands them over on 'secureConnection'.
 */
function onSecure(this: SecuringSocket) {
  const securing = this[kSecuring];
  const { running, timer } = securing;
  securing.secured = true;
  if (securing.counted) running.counts.handshakes++;
  clearTimeout(timer);
  // tls.Server does both before 'secureConnection': an HTTP/2 session waits for secureConnecting to be cleared,
  // and a TLS error (a refused renegotiation, a bad record) is emitted as 'error' only once control is released.
  this.secureConnecting = false;
  this._releaseControl();
  if (this.alpnProtocol === "h2" && running.h2Server) running.h2Server.emit("connection", this);
  else running.httpServer.emit("connection", this);
}

/** On close: a connection that closes before its handshake completed (an error, an alert, a timeout) counts as a failed handshake. */
function clearHandshakeTimer(this: SecuringSocket) {
  const securing = this[kSecuring];
  clearTimeout(securing.timer);
  if (!securing.secured && securing.counted) securing.running.counts.handshakeErrors++;
}

// ---------------------------------------------------------------------------------------------
// Native TLS (native-tls.ts): the connection is a libuv TCP handle with Node's TLS stream on it, and
// becomes a net.Socket (over the TLS stream) only when the client's first request arrives.

const kConnection = Symbol("portcullis.nativeConnection");
type NativeHandle = TcpHandle & { [kConnection]: NativeConnection };
type NativeTlsWrap = TlsWrap & { [kConnection]: NativeConnection; reading?: boolean };
type OwningSocket = net.Socket & { [kConnection]: NativeConnection };
/** The decrypted stream as a net.Socket, with what the HTTP servers read of a TLSSocket. */
type PlaintextSocket = OwningSocket & { ssl: TlsWrap | null; encrypted: true; alpnProtocol: string | false };

/** One accepted connection, from its ClientHello until a JavaScript socket owns it (or it closes). */
class NativeConnection {
  received: Buffer | undefined = undefined;
  /** False for the edge's own served-certificate checks, which are not traffic. */
  counted = false;
  ssl: NativeTlsWrap | undefined = undefined;
  /** When the handshake completed (ms), 0 before. */
  securedAt = 0;
  /** The socket that owns the handle once there is one: the decrypted stream, or a TLS-ALPN-01 validation's TCP socket. */
  socket: OwningSocket | undefined = undefined;
  closed = false;
  /** The handshake's time limit, then the first request's. */
  timer: NodeJS.Timeout;

  constructor(
    readonly edge: Edge,
    readonly running: Running,
    readonly handle: NativeHandle,
  ) {
    handle[kConnection] = this;
    running.connections.add(this);
    this.timer = setTimeout(onNativeTimer, edge.handshakeTimeoutMs, this);
    handle.setNoDelay(true);
    handle.onread = onNativeHelloRead;
    handle.readStart();
  }

  startTls(context: tls.SecureContext, clientHello: Buffer) {
    const ssl = nativeTls!.wrap(this.handle, context) as NativeTlsWrap;
    ssl[kConnection] = this;
    this.ssl = ssl;
    ssl.onhandshakedone = onNativeHandshakeDone;
    ssl.onerror = onNativeError;
    ssl.onread = onNativeFirstRead;
    ssl.onclienthello = ssl.oncertcb = ssl.onnewsession = ssl.onkeylog = noop; // called only when enabled
    ssl.setALPNProtocols(ALPN_HTTP_WIRE);
    // The TCP handle has been reading since the ClientHello's first bytes: the TLS stream now gets what it reads.
    ssl.receive(clientHello);
  }

  /** A socket now owns the handle: destroying the connection destroys it, and its close ends the connection. */
  own(socket: net.Socket) {
    const owning = socket as OwningSocket;
    owning[kConnection] = this;
    this.socket = owning;
    owning.on("close", onOwnerClose);
  }

  destroy() {
    if (this.closed) return;
    if (this.socket) {
      this.socket.destroy(); // its close event ends the connection (onOwnerClose)
      return;
    }
    this.ended();
    // The TLS state is freed once the handle has closed: never from inside OpenSSL's own callbacks.
    this.handle.close(onNativeHandleClose);
  }

  ended() {
    this.closed = true;
    clearTimeout(this.timer);
    // A handshake that started and never completed (an error, an alert, a timeout) counts as failed.
    if (this.ssl && !this.securedAt && this.counted) this.running.counts.handshakeErrors++;
    this.running.connections.delete(this);
  }
}

function onNativeHelloRead(this: NativeHandle, arrayBuffer: ArrayBuffer) {
  const conn = this[kConnection];
  const chunk = nativeTls!.readResult(arrayBuffer);
  if (chunk === undefined) return;
  if (chunk === null) {
    if (conn.received) conn.running.counts.handshakeErrors++; // went away in the middle of its ClientHello
    conn.destroy();
    return;
  }
  const hello = takeClientHelloBytes(conn, chunk);
  if (!hello) return;
  conn.edge.nativeClientHello(conn, hello);
}

/**
 * The handshake's time is up (a stall anywhere in it, ClientHello included), or, once secured, the wait
 * for the first request, which may last as long as an idle keep-alive connection.
 */
function onNativeTimer(conn: NativeConnection) {
  if (conn.securedAt) {
    const idle = Date.now() - conn.securedAt;
    const { idleTimeoutMs } = conn.edge;
    if (idle < idleTimeoutMs) {
      conn.timer = setTimeout(onNativeTimer, idleTimeoutMs - idle, conn);
      return;
    }
  } else if (!conn.ssl && conn.received) {
    conn.running.counts.handshakeErrors++; // a partial ClientHello; one that never sent a byte is not a handshake
  }
  conn.destroy();
}

function onNativeHandshakeDone(this: NativeTlsWrap) {
  const conn = this[kConnection];
  if (conn.securedAt) return;
  conn.securedAt = Date.now();
  if (conn.counted) conn.running.counts.handshakes++;
  // The timer runs on: it now limits the wait for the first request (onNativeTimer).
}

function onNativeError(this: NativeTlsWrap) {
  this[kConnection].destroy();
}

/** The first decrypted bytes: the connection becomes a socket for the HTTP/1.1 or HTTP/2 server, with them unread. */
function onNativeFirstRead(this: NativeTlsWrap, arrayBuffer: ArrayBuffer) {
  const conn = this[kConnection];
  const chunk = nativeTls!.readResult(arrayBuffer);
  if (chunk === undefined) return;
  if (chunk === null) {
    conn.destroy(); // closed, or an error, before any request
    return;
  }
  clearTimeout(conn.timer);
  // Its handle is the TLS stream, which goes on reading: `reading` tells net.Socket so, which then does not start it
  // again (each stop and start of a read is a system call). The TLS stream's close (TLSWrap.prototype.close in
  // lib/_tls_wrap.js) closes the TCP handle and frees the TLS state of its owner's .ssl.
  this.reading = true;
  const plain = new net.Socket({ handle: this } as net.SocketConstructorOpts) as PlaintextSocket;
  plain.ssl = this;
  plain.encrypted = true;
  plain.alpnProtocol = this.getALPNNegotiatedProtocol() || false;
  plain.on("error", destroyOnError);
  conn.own(plain);
  plain.unshift(chunk);
  const { running } = conn;
  if (plain.alpnProtocol === "h2" && running.h2Server) running.h2Server.emit("connection", plain);
  else running.httpServer.emit("connection", plain);
}

function onOwnerClose(this: OwningSocket) {
  this[kConnection].ended();
}

function onNativeHandleClose(this: NativeHandle) {
  this[kConnection].ssl?.destroySSL();
}

function noop() {}

function trackSocket(this: { [kTracked]: Set<{ destroy(): void }> }, socket: net.Socket) {
  const sockets = this[kTracked];
  sockets.add(socket);
  (socket as net.Socket & { [kTracked]: Set<{ destroy(): void }> })[kTracked] = sockets;
  socket.on("close", untrackSocket);
}

function untrackSocket(this: net.Socket & { [kTracked]: Set<{ destroy(): void }> }) {
  this[kTracked].delete(this);
}

function ignoreError() {}
function destroyOnError(this: net.Socket) {
  this.destroy();
}

function upstreamOf(row: ListenersTable): Upstream | undefined {
  if (!row.upstream_url || (row.kind === "http" && row.http_action !== "proxy")) return undefined;
  try {
    return parseUpstream(row.upstream_url, Number(row.upstream_tls_verify) !== 0);
  } catch {
    return undefined;
  }
}

const addressKey = (row: ListenersTable) => `${row.kind}://${row.bind_address}:${row.port}`;
export const fallbackKeyContext = (listenerId: string) => `listener-fallback:${listenerId}`;
