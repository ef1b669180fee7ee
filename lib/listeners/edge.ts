import crypto from "node:crypto";
import http from "node:http";
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
import { parseClientHello } from "./client-hello";
import { proxyRequest, proxyUpgrade } from "./proxy";
import { readEdgeRevision } from "./revision";
import { checkServedCertificates } from "./served-check";

// The worker's edge role: runs every enabled listener from the database and serves, per TLS
// handshake, the certificate mapped to the client's SNI name. A change anywhere (listeners,
// mappings, certificates) bumps the edge revision; the edge sees it within the poll interval and
// rebuilds its index in place. Servers are only opened or closed when a listener's address
// changes, so connections that are open stay open.

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
  server: net.Server;
  httpServer: http.Server;
  addressKey: string;
  sockets: Set<net.Socket>;
};

const CLIENT_HELLO_TIMEOUT_MS = 10_000;
const FALLBACK_EVENT_INTERVAL_MS = 10 * 60_000;
const BIND_RETRY_INTERVAL_MS = 5_000;

export type EdgeOptions = {
  db: Db;
  keyring: Keyring;
  log: Logger;
  pollIntervalMs?: number;
  checkIntervalMs?: number;
};

export class Edge {
  private readonly running = new Map<string, Running>();
  private readonly indexes = new Map<string, SniIndex>();
  private readonly contextCache = new Map<string, tls.SecureContext>();
  private readonly fallbackNoted = new Map<string, number>();
  private readonly bindFailures = new Map<string, string>();
  private revision: string | null = null;
  private reloading: Promise<void> = Promise.resolve();
  private timers: NodeJS.Timeout[] = [];
  private stopped = false;

  constructor(private readonly opts: EdgeOptions) {}

  async start() {
    await this.reload();
    const poll = setInterval(() => void this.pollRevision(), this.opts.pollIntervalMs ?? 250);
    const check = setInterval(() => void this.runServedCheck(), this.opts.checkIntervalMs ?? 60_000);
    // A port that was busy is tried again now and then, without reloading everything each poll.
    const retry = setInterval(() => {
      if (this.bindFailures.size) void this.reload();
    }, BIND_RETRY_INTERVAL_MS);
    this.timers.push(poll, check, retry);
  }

  async stop() {
    this.stopped = true;
    for (const t of this.timers) clearInterval(t);
    await this.reloading.catch(() => {});
    await Promise.all([...this.running.values()].map((r) => this.closeServer(r, true)));
    this.running.clear();
  }

  /** Listeners this edge serves now, with their bound ports (for health output and tests). */
  status() {
    return [...this.running.values()].map((r) => ({ id: r.row.id, name: r.row.name, address: r.addressKey }));
  }

  private async pollRevision() {
    if (this.stopped) return;
    try {
      const revision = await readEdgeRevision(this.opts.db);
      if (revision !== this.revision) await this.reload();
    } catch (err) {
      this.opts.log.warn({ err }, "edge: could not read the change revision; retrying");
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
    const mappings = await db
      .selectFrom("certificate_mappings")
      .innerJoin("certificates", "certificates.id", "certificate_mappings.certificate_id")
      .select([
        "certificate_mappings.listener_id",
        "certificate_mappings.hostname",
        "certificates.id",
        "certificates.chain_pem",
        "certificates.sealed_key",
        "certificates.fingerprint_sha256",
      ])
      .where("certificates.chain_pem", "is not", null)
      .execute();
    const defaultIds = [...new Set(rows.map((r) => r.default_certificate_id).filter((id): id is string => Boolean(id)))];
    const defaults = defaultIds.length
      ? await db.selectFrom("certificates").select(["id", "chain_pem", "sealed_key", "fingerprint_sha256"]).where("id", "in", defaultIds).execute()
      : [];
    const defaultsById = new Map(defaults.map((d) => [d.id, d]));

    const usedContexts = new Set<string>();
    const entryFor = (cert: { id: string | null; chain_pem: string | null; sealed_key: string | null; fingerprint_sha256: string | null }, minVersion: tls.SecureVersion, contextName: string) => {
      if (!cert.chain_pem || !cert.sealed_key) return undefined;
      const fingerprint = cert.fingerprint_sha256 ?? crypto.createHash("sha256").update(cert.chain_pem).digest("hex");
      const cacheKey = `${cert.id}|${fingerprint}|${minVersion}`;
      usedContexts.add(cacheKey);
      let context = this.contextCache.get(cacheKey);
      if (!context) {
        try {
          const key = this.opts.keyring.open(cert.sealed_key, contextName);
          context = tls.createSecureContext({ cert: cert.chain_pem, key, minVersion });
        } catch (err) {
          this.opts.log.error({ err, certificateId: cert.id }, "edge: cannot load a certificate; it is skipped");
          return undefined;
        }
        this.contextCache.set(cacheKey, context);
      }
      return { certificateId: cert.id, fingerprint, context } satisfies CertEntry;
    };

    const nextIndexes = new Map<string, SniIndex>();
    for (const row of rows.filter((r) => r.kind === "https")) {
      const minVersion = row.min_tls_version as tls.SecureVersion;
      const index: SniIndex = { exact: new Map(), wildcard: new Map() };
      for (const m of mappings.filter((x) => x.listener_id === row.id)) {
        const entry = entryFor(m, minVersion, keyContext(m.id));
        if (!entry) continue;
        if (m.hostname.startsWith("*.")) index.wildcard.set(m.hostname.slice(2), entry);
        else index.exact.set(m.hostname, entry);
      }
      const def = row.default_certificate_id ? defaultsById.get(row.default_certificate_id) : undefined;
      if (def) index.defaultEntry = entryFor(def, minVersion, keyContext(def.id));
      if (row.fallback_policy === "self_signed") {
        const fallback = await this.fallbackFor(row);
        index.fallback = entryFor({ id: null, ...fallback }, minVersion, fallbackKeyContext(row.id));
      }
      nextIndexes.set(row.id, index);
    }
    // Swap the indexes first: from here on, every new handshake uses the new certificates.
    this.indexes.clear();
    for (const [id, index] of nextIndexes) this.indexes.set(id, index);
    for (const key of this.contextCache.keys()) if (!usedContexts.has(key)) this.contextCache.delete(key);

    const wanted = new Map(rows.map((r) => [r.id, r]));
    for (const [id, running] of this.running) {
      const row = wanted.get(id);
      if (!row || addressKey(row) !== running.addressKey) {
        this.running.delete(id);
        await this.closeServer(running, false);
      } else {
        running.row = row;
      }
    }
    for (const id of this.bindFailures.keys()) if (!wanted.has(id)) this.bindFailures.delete(id);
    let opened = false;
    for (const row of rows) {
      if (this.running.has(row.id)) continue;
      opened = (await this.openServer(row)) || opened;
    }
    const changed = revision !== this.revision;
    this.revision = revision;
    // Check what is served a moment after a change, once the servers are up.
    if (changed || opened) setTimeout(() => void this.runServedCheck(), 300).unref();
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
    const sockets = new Set<net.Socket>();
    const httpServer = http.createServer();
    httpServer.keepAliveTimeout = 65_000;
    let server: net.Server;
    const running: Running = { row, server: undefined as unknown as net.Server, httpServer, addressKey: addressKey(row), sockets };
    if (row.kind === "https") {
      httpServer.on("request", (req, res) => this.handleHttpsRequest(running, req, res));
      httpServer.on("upgrade", (req, socket, head) => {
        const upstream = running.row.upstream_url ? new URL(running.row.upstream_url) : undefined;
        if (!upstream) return socket.destroy();
        proxyUpgrade(req, socket, head, upstream, "https");
      });
      server = net.createServer((socket) => this.acceptTls(running, socket));
    } else {
      httpServer.on("request", (req, res) => void this.handleHttpRequest(running, req, res));
      httpServer.on("upgrade", (req, socket, head) => {
        const upstream = running.row.http_action === "proxy" && running.row.upstream_url ? new URL(running.row.upstream_url) : undefined;
        if (!upstream) return socket.destroy();
        proxyUpgrade(req, socket, head, upstream, "http");
      });
      server = httpServer;
    }
    server.on("connection", (socket: net.Socket) => {
      sockets.add(socket);
      socket.on("close", () => sockets.delete(socket));
    });
    running.server = server;
    try {
      await new Promise<void>((resolve, reject) => {
        server.once("error", reject);
        server.listen({ host: row.bind_address, port: row.port }, () => {
          server.off("error", reject);
          resolve();
        });
      });
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

  /** Stops accepting; open connections finish on their own unless the edge itself is stopping. */
  private closeServer(running: Running, dropConnections: boolean): Promise<void> {
    return new Promise((resolve) => {
      running.server.close(() => resolve());
      if (dropConnections) for (const s of running.sockets) s.destroy();
      else resolve();
    });
  }

  private acceptTls(running: Running, socket: net.Socket) {
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => socket.destroy(), CLIENT_HELLO_TIMEOUT_MS);
    socket.on("error", () => {});
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const hello = parseClientHello(received);
      if (hello.status === "incomplete" && received.length < 70_000) return;
      socket.off("data", onData);
      clearTimeout(timer);
      if (hello.status !== "ok") {
        socket.destroy();
        return;
      }
      socket.pause();
      socket.unshift(received);
      void this.handshake(running, socket, hello.serverName, hello.alpnProtocols);
    };
    socket.on("data", onData);
  }

  private async handshake(running: Running, socket: net.Socket, serverName: string | undefined, alpn: string[]) {
    const listenerId = running.row.id;
    if (alpn.includes("acme-tls/1")) {
      const context = serverName ? await this.challengeContext(serverName).catch(() => undefined) : undefined;
      if (!context) return socket.destroy();
      const challengeSocket = new tls.TLSSocket(socket, { isServer: true, secureContext: context, ALPNProtocols: ["acme-tls/1"] });
      challengeSocket.on("error", () => challengeSocket.destroy());
      challengeSocket.on("secure", () => challengeSocket.end());
      return;
    }
    const index = this.indexes.get(listenerId);
    const choice = index ? resolveCertificateForSni(index, serverName) : undefined;
    if (!choice) return socket.destroy(); // fallback policy "refuse", and nothing matched
    if (choice.via === "fallback") this.noteFallback(running.row, serverName);
    const tlsSocket = new tls.TLSSocket(socket, { isServer: true, secureContext: choice.entry.context, ALPNProtocols: ["http/1.1"] });
    tlsSocket.on("error", () => tlsSocket.destroy());
    running.httpServer.emit("connection", tlsSocket);
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

  private handleHttpsRequest(running: Running, req: http.IncomingMessage, res: http.ServerResponse) {
    const upstream = running.row.upstream_url;
    if (!upstream) {
      res.writeHead(503, { "Content-Type": "text/plain; charset=utf-8" }).end("This listener has no upstream configured.\n");
      return;
    }
    proxyRequest(req, res, new URL(upstream), "https");
  }

  private async handleHttpRequest(running: Running, req: http.IncomingMessage, res: http.ServerResponse) {
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
    if (row.http_action === "proxy" && row.upstream_url) {
      proxyRequest(req, res, new URL(row.upstream_url), "http");
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

  private async runServedCheck() {
    if (this.stopped) return;
    try {
      await checkServedCertificates(this.opts.db, [...this.running.values()].filter((r) => r.row.kind === "https").map((r) => r.row));
    } catch (err) {
      this.opts.log.warn({ err }, "edge: the served-certificate check failed; it runs again later");
    }
  }
}

const addressKey = (row: ListenersTable) => `${row.kind}://${row.bind_address}:${row.port}`;
export const fallbackKeyContext = (listenerId: string) => `listener-fallback:${listenerId}`;
