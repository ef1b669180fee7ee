import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { createAcmeCertificate } from "../acme/certificates";
import { SYSTEM_ACTOR } from "../audit";
import { keyContext } from "../certificates/index";
import type { Config } from "../config";
import type { Keyring } from "../crypto/seal";
import type { Db } from "../db";
import { AppError } from "../errors";
import { recordEvent } from "../events";
import { WakeableLoop } from "../events/wake-loop";
import { issueFromLocalCa, type PemPair } from "../pki/local-ca";
import { parseSubjectAltName, type SanEntry } from "../pki/names";
import { createSelfSignedCertificate } from "../pki/selfSigned";
import { validateUpload } from "../pki/upload";
import { isLoopbackHost } from "./http";
import {
  ACME_KEY,
  ACME_SELF_SIGNED_KEY,
  ACME_SELF_SIGNED_KEY_CONTEXT,
  LOCAL_SERVER_KEY,
  LOCAL_SERVER_KEY_CONTEXT,
  PROVIDED_KEY_CONTEXT,
  loadOrCreateLocalCa,
  openPair,
  readAcmeSettings,
  readProvidedUpload,
  readSetting,
  sealPair,
  writeSetting,
  type AcmeSettings,
  type StoredAcmeFallback,
  type StoredLocalServer,
} from "./tls-store";
import { checkTlsEnvironment, ConsoleTlsStartupError, describe, loadProvidedFiles, type TlsMaterial } from "./tls-env";
import { effectiveTlsMode, modeServesHttps, registerRunningTls, type ConsoleTlsMode, type RunningTls, type ServedCertificate } from "./tls-status";

// Which certificate the console's own HTTPS server presents, and keeping it current: the local CA's
// server certificate (renewed), Let's Encrypt's (swapped in when issued or renewed), or provided
// files (watched and hot-reloaded). Swaps use server.setSecureContext: open connections stay up.

const HOUR_MS = 60 * 60 * 1000;
export const LOCAL_CHECK_INTERVAL_MS = 12 * HOUR_MS;
export const ACME_POLL_INTERVAL_MS = 30_000;
export const PROVIDED_POLL_INTERVAL_MS = 2_000;
const ACME_FALLBACK_DAYS = 30;

export { checkTlsEnvironment, ConsoleTlsStartupError, loadProvidedFiles, type TlsMaterial };

// ---------------------------------------------------------------------------------------------
// The names on the local CA's server certificate.

function isUsableInterfaceAddress(info: os.NetworkInterfaceInfo): boolean {
  if (info.internal) return false;
  if (info.family === "IPv6" && (/^fe80:/i.test(info.address) || info.scopeid)) return false;
  return true;
}

/** Bind host (or, on a wildcard bind, the interfaces), public URL host, PORTCULLIS_TLS_SANS, hostname, localhost. */
export function localServerNames(config: Config): SanEntry[] {
  const out = new Map<string, SanEntry>();
  const add = (value: string | undefined) => {
    if (!value) return;
    const parsed = parseSubjectAltName(value.replace(/^\[|\]$/g, ""));
    if (parsed.ok) out.set(`${parsed.entry.type}:${parsed.entry.value}`, parsed.entry);
  };
  const host = config.host;
  if (host === "0.0.0.0" || host === "::" || host === "[::]") {
    for (const list of Object.values(os.networkInterfaces())) for (const info of list ?? []) if (isUsableInterfaceAddress(info)) add(info.address);
  } else add(host);
  if (config.publicUrl) add(new URL(config.publicUrl).hostname);
  for (const san of config.tls.sans) add(san);
  add(os.hostname());
  add("localhost");
  add("127.0.0.1");
  add("::1");
  return [...out.values()];
}

const nameKey = (names: SanEntry[] | string[]) =>
  names
    .map((n) => (typeof n === "string" ? n : `${n.type}:${n.value}`))
    .sort()
    .join(",");

// ---------------------------------------------------------------------------------------------
// The TLS-ALPN-01 answer: the challenge certificate for a name the engine is validating.

/** The TLS-ALPN-01 certificate for serverName while a challenge is pending (same rows the edge answers from). */
export async function acmeChallengeContext(db: Db, keyring: Keyring, serverName: string): Promise<tls.SecureContext | undefined> {
  const row = await db
    .selectFrom("acme_challenges")
    .select(["id", "certificate_pem", "sealed_key"])
    .where("kind", "=", "tls-alpn-01")
    .where("identifier", "=", serverName.toLowerCase())
    .where("expires_at", ">", new Date().toISOString())
    .orderBy("created_at", "desc")
    .executeTakeFirst();
  if (!row?.certificate_pem || !row.sealed_key) return undefined;
  return tls.createSecureContext({ cert: row.certificate_pem, key: keyring.open(row.sealed_key, `acme-challenge:${row.id}`) });
}

// ---------------------------------------------------------------------------------------------
// Steps the API also takes when no HTTPS server runs in this process (e.g. before a restart).

/** A new server certificate from the local CA (created on first use), stored for the console to serve. */
export async function issueLocalServerCertificate(db: Db, keyring: Keyring, config: Config, now: Date = new Date()): Promise<PemPair> {
  const ca = await loadOrCreateLocalCa(db, keyring);
  const names = localServerNames(config);
  const wildcardBind = ["0.0.0.0", "::", "[::]"].includes(config.host);
  const commonName = config.publicUrl ? new URL(config.publicUrl).hostname : wildcardBind ? os.hostname() : config.host;
  const pair = await issueFromLocalCa(ca, { names, commonName, now });
  const stored: StoredLocalServer = { ...sealPair(keyring, pair, LOCAL_SERVER_KEY_CONTEXT), names: names.map((n) => `${n.type}:${n.value}`) };
  await writeSetting(db, LOCAL_SERVER_KEY, stored);
  return pair;
}

/** The domain and contact for the console's ACME certificate: the environment wins over Settings → TLS. */
export async function consoleAcmeWanted(db: Db, config: Config): Promise<{ settings: AcmeSettings; domain: string; email: string | null }> {
  const settings: AcmeSettings = (await readAcmeSettings(db)) ?? { enabled: false, domain: null, email: null, certificateId: null };
  const domain = (config.acme.domain ?? settings.domain ?? "").toLowerCase();
  if (!domain) throw new AppError("bad_request", "the Let's Encrypt mode needs the console's domain: set PORTCULLIS_ACME_DOMAIN, or enter it in Settings → TLS");
  return { settings, domain, email: config.acme.email ?? settings.email ?? null };
}

/**
 * The certificates row (source "acme") that carries the console's certificate: reused when it names the
 * domain, else created through the usual path, so the worker's engine issues and renews it like any other.
 */
export async function ensureConsoleAcmeCertificate(db: Db, keyring: Keyring, config: Config): Promise<{ id: string; domain: string }> {
  const { settings, domain, email } = await consoleAcmeWanted(db, config);
  const sameDomain = async (id: string | null | undefined) => {
    if (!id) return false;
    const row = await db.selectFrom("certificates").select(["domains", "source"]).where("id", "=", id).executeTakeFirst();
    return row?.source === "acme" && nameKey(JSON.parse(row.domains) as string[]) === domain;
  };
  if (await sameDomain(settings.certificateId)) return { id: settings.certificateId!, domain };
  const name = `Portcullis console (${domain})`;
  const byName = await db.selectFrom("certificates").select("id").where("name", "=", name).executeTakeFirst();
  let id: string;
  if (byName && (await sameDomain(byName.id))) id = byName.id;
  else {
    const challenge = settings.challenge ?? (config.port === 443 ? "tls-alpn-01" : "http-01");
    const { certificate } = await createAcmeCertificate(db, keyring, config, SYSTEM_ACTOR, {
      name: byName ? `${name} ${crypto.randomBytes(2).toString("hex")}` : name,
      domains: [domain],
      challenge,
      email: email ?? "",
      agreeTos: true,
    });
    id = certificate.id;
  }
  await writeSetting(db, ACME_KEY, { ...settings, certificateId: id } satisfies AcmeSettings);
  return { id, domain };
}

/**
 * What a console in this mode serves, from the stored material alone: for a process where no HTTPS
 * server is registered (a status read during a build, or in tests).
 */
export async function deriveServed(db: Db, config: Config, mode: ConsoleTlsMode, https: boolean): Promise<ServedCertificate | null> {
  if (!https) return null;
  if (mode === "auto") {
    const stored = await readSetting<StoredLocalServer>(db, LOCAL_SERVER_KEY);
    return stored ? describe(stored.certificatePem, "local_ca", false) : null;
  }
  if (mode === "acme") {
    const settings = await readAcmeSettings(db);
    const row = settings?.certificateId ? await db.selectFrom("certificates").select(["chain_pem"]).where("id", "=", settings.certificateId).executeTakeFirst() : undefined;
    if (row?.chain_pem) return describe(row.chain_pem, "acme", true);
    const fallback = await readSetting<StoredAcmeFallback>(db, ACME_SELF_SIGNED_KEY);
    return fallback ? describe(fallback.certificatePem, "self_signed", false) : null;
  }
  if (mode === "provided") {
    if (config.tls.certFile && config.tls.keyFile) return loadProvidedFiles(config.tls.certFile, config.tls.keyFile).served;
    const upload = await readProvidedUpload(db);
    return upload ? describe(upload.certificatePem, "provided", true) : null;
  }
  return null;
}

// ---------------------------------------------------------------------------------------------

export type ManagerOptions = { config: Config; db: Db; keyring: Keyring; log: { info: (o: object | string, m?: string) => void; warn: (o: object | string, m?: string) => void; error: (o: object | string, m?: string) => void }; now?: () => Date };

type Source = { mode: ConsoleTlsMode; stop(): void };

/** The console's TLS state for one process; registered globally so the API routes can read and steer it. */
export class ConsoleTlsManager implements RunningTls {
  mode: ConsoleTlsMode = "auto";
  https = false;
  served: ServedCertificate | null = null;
  providedError: string | null = null;
  private material?: TlsMaterial;
  private server?: tls.Server;
  private source?: Source;
  private queue: Promise<unknown> = Promise.resolve();
  private stopped = false;
  private stopFollowing?: () => void;

  constructor(private readonly opts: ManagerOptions) {}

  private now = () => this.opts.now?.() ?? new Date();

  /** Decides the mode and loads the first certificate; a ConsoleTlsStartupError stops the process. */
  async start(): Promise<void> {
    const { config, db } = this.opts;
    const env = checkTlsEnvironment(config, this.now());
    if (!env.ok) throw new ConsoleTlsStartupError(env.message);
    const { mode, source } = await effectiveTlsMode(db, config);
    if (mode === "off" && !isLoopbackHost(config.host) && !config.tls.allowInsecureHttp) {
      throw new ConsoleTlsStartupError(
        `the TLS mode chosen in Settings → TLS is off, which on ${config.host} would send passwords unencrypted. Set PORTCULLIS_TLS_MODE=auto (or another mode) to override it, or PORTCULLIS_ALLOW_INSECURE_HTTP=true to accept the risk.`,
      );
    }
    this.mode = mode;
    this.https = modeServesHttps(mode, config.host);
    if (this.https) {
      try {
        await this.serial(() => this.switchSource(mode));
      } catch (err) {
        if (err instanceof ConsoleTlsStartupError) throw err;
        if (err instanceof AppError) {
          const how = source === "env" ? "" : " (chosen in Settings → TLS; PORTCULLIS_TLS_MODE=auto overrides it)";
          throw new ConsoleTlsStartupError(`PORTCULLIS_TLS_MODE=${mode}${how}: ${err.message}`);
        }
        throw err;
      }
    }
    registerRunningTls(this);
    if (this.https) await this.followSettingsChanges();
  }

  /**
   * Settings changed by another process (the CLI's `tls set`, a second console) are announced as
   * "console.tls_changed" events: apply them here too. Changes made through this process's own API
   * are applied at once by the route; applying again is harmless (a swap happens only for a new fingerprint).
   */
  private async followSettingsChanges() {
    const latest = async () =>
      Number(
        (await this.opts.db.selectFrom("events").select((eb) => eb.fn.max("id").as("id")).where("type", "=", "console.tls_changed").executeTakeFirst())?.id ?? 0,
      );
    let seen = await latest();
    const loop = new WakeableLoop({
      db: this.opts.db,
      pass: async () => {
        const id = await latest();
        if (id <= seen) return;
        seen = id;
        await this.apply();
      },
      nextDelayMs: () => ACME_POLL_INTERVAL_MS,
      onError: (err) => this.opts.log.error({ err }, "applying the console's changed TLS settings failed"),
      unref: true,
    });
    loop.start();
    this.stopFollowing = () => void loop.stop();
  }

  /** Options for tls.createServer / https.createServer. */
  secureContextOptions(): tls.SecureContextOptions {
    if (!this.material) throw new Error("the console serves no certificate (plain HTTP mode)");
    return { cert: this.material.chainPem, key: this.material.keyPem, minVersion: "TLSv1.2" };
  }

  attach(server: tls.Server) {
    this.server = server;
  }

  stop() {
    this.stopped = true;
    this.stopFollowing?.();
    this.source?.stop();
    registerRunningTls(undefined);
  }

  apply(): Promise<void> {
    return this.serial(async () => {
      const { mode } = await effectiveTlsMode(this.opts.db, this.opts.config);
      // HTTP ↔ HTTPS needs a restart; the status says so.
      if (!this.https || !modeServesHttps(mode, this.opts.config.host)) return;
      await this.switchSource(mode);
    });
  }

  regenerate(): Promise<void> {
    return this.serial(async () => {
      const pair = await this.issueLocalServer();
      if (this.https && this.mode === "auto") this.swap(await this.localMaterial(pair), "a new server certificate from the local CA");
    });
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.queue.then(fn, fn);
    this.queue = next.catch(() => {});
    return next;
  }

  private swap(material: TlsMaterial, why: string) {
    const changed = this.material?.served.fingerprintSha256 !== material.served.fingerprintSha256;
    this.material = material;
    this.served = material.served;
    if (changed && this.server) {
      this.server.setSecureContext(this.secureContextOptions());
      this.opts.log.info({ fingerprint: material.served.fingerprintSha256, kind: material.served.kind }, `console certificate swapped in: ${why}`);
    }
  }

  /** Stops the old source's timers and watchers, loads the new one and serves it. Keeps the old one on failure. */
  private async switchSource(mode: ConsoleTlsMode) {
    let next: { material: TlsMaterial; source: Source };
    if (mode === "acme") next = await this.startAcme();
    else if (mode === "provided") next = await this.startProvided();
    else next = await this.startLocal();
    this.source?.stop();
    this.source = next.source;
    this.mode = mode;
    this.swap(next.material, `mode ${mode}`);
  }

  // --- auto: the local CA ----------------------------------------------------------------------

  private issueLocalServer(): Promise<PemPair> {
    return issueLocalServerCertificate(this.opts.db, this.opts.keyring, this.opts.config, this.now());
  }

  private async localMaterial(pair: PemPair): Promise<TlsMaterial> {
    const ca = await loadOrCreateLocalCa(this.opts.db, this.opts.keyring);
    return { chainPem: `${pair.certificatePem.trimEnd()}\n${ca.certificatePem}`, keyPem: pair.privateKeyPem, served: describe(pair.certificatePem, "local_ca", false) };
  }

  /** The stored server certificate, re-issued when a third of its life is left, the names changed, or the CA differs. */
  private async currentLocalServer(): Promise<PemPair> {
    const { db, keyring, config } = this.opts;
    const ca = await loadOrCreateLocalCa(db, keyring);
    const stored = await readSetting<StoredLocalServer>(db, LOCAL_SERVER_KEY);
    if (stored) {
      try {
        const cert = new crypto.X509Certificate(stored.certificatePem);
        const caCert = new crypto.X509Certificate(ca.certificatePem);
        const notBefore = Date.parse(cert.validFrom);
        const notAfter = Date.parse(cert.validTo);
        const fresh = notAfter - this.now().getTime() > (notAfter - notBefore) / 3;
        const sameNames = nameKey(stored.names) === nameKey(localServerNames(config));
        if (fresh && sameNames && cert.verify(caCert.publicKey)) return openPair(keyring, stored, LOCAL_SERVER_KEY_CONTEXT);
      } catch {
        // Unreadable: issue a new one below.
      }
    }
    return this.issueLocalServer();
  }

  private async startLocal(): Promise<{ material: TlsMaterial; source: Source }> {
    const material = await this.localMaterial(await this.currentLocalServer());
    const timer = setInterval(() => {
      void this.serial(async () => {
        if (this.mode !== "auto") return;
        this.swap(await this.localMaterial(await this.currentLocalServer()), "the local CA's server certificate was renewed");
      }).catch((err: unknown) => this.opts.log.error({ err }, "renewing the console's local-CA certificate failed"));
    }, LOCAL_CHECK_INTERVAL_MS);
    timer.unref();
    return { material, source: { mode: "auto", stop: () => clearInterval(timer) } };
  }

  // --- acme ------------------------------------------------------------------------------------

  private async acmeFallback(domain: string): Promise<TlsMaterial> {
    const { db, keyring } = this.opts;
    const stored = await readSetting<StoredAcmeFallback>(db, ACME_SELF_SIGNED_KEY);
    let pair: PemPair | undefined;
    if (stored?.domain === domain) {
      const cert = new crypto.X509Certificate(stored.certificatePem);
      if (Date.parse(cert.validTo) - this.now().getTime() > 7 * 24 * HOUR_MS) pair = openPair(keyring, stored, ACME_SELF_SIGNED_KEY_CONTEXT);
    }
    if (!pair) {
      pair = await createSelfSignedCertificate({ names: [{ type: "dns", value: domain }], keyType: "ecdsa-p256", validityDays: ACME_FALLBACK_DAYS, now: this.now() });
      await writeSetting(db, ACME_SELF_SIGNED_KEY, { ...sealPair(keyring, pair, ACME_SELF_SIGNED_KEY_CONTEXT), domain } satisfies StoredAcmeFallback);
    }
    return { chainPem: pair.certificatePem, keyPem: pair.privateKeyPem, served: describe(pair.certificatePem, "self_signed", false) };
  }

  /** The issued certificate when the row has one, else the self-signed stand-in. */
  private async acmeMaterial(id: string, domain: string): Promise<TlsMaterial> {
    const row = await this.opts.db.selectFrom("certificates").select(["chain_pem", "sealed_key", "not_after"]).where("id", "=", id).executeTakeFirst();
    if (row?.chain_pem && row.sealed_key && row.not_after && Date.parse(row.not_after) > this.now().getTime()) {
      return { chainPem: row.chain_pem, keyPem: this.opts.keyring.open(row.sealed_key, keyContext(id)), served: describe(row.chain_pem, "acme", true) };
    }
    return this.acmeFallback(domain);
  }

  private async startAcme(): Promise<{ material: TlsMaterial; source: Source }> {
    const { id, domain } = await ensureConsoleAcmeCertificate(this.opts.db, this.opts.keyring, this.opts.config);
    const material = await this.acmeMaterial(id, domain);
    const handle: Source = { mode: "acme", stop: () => {} };
    // A pass on every event (the engine's "issued" and "renewed" among them) and every ACME_POLL_INTERVAL_MS.
    const loop = new WakeableLoop({
      db: this.opts.db,
      pass: () =>
        this.serial(async () => {
          if (this.stopped || this.mode !== "acme" || this.source !== handle) return;
          const next = await this.acmeMaterial(id, domain);
          if (next.served.fingerprintSha256 !== this.served?.fingerprintSha256) {
            this.swap(next, `the ACME certificate for ${domain}`);
            await recordEvent(this.opts.db, { type: "console.tls_reloaded", certificateId: id, message: `The console now serves ${next.served.kind === "acme" ? "the certificate issued" : "a self-signed certificate"} for ${domain} (fingerprint ${next.served.fingerprintSha256}).`, detail: { kind: next.served.kind, fingerprintSha256: next.served.fingerprintSha256 } });
          }
        }),
      nextDelayMs: () => ACME_POLL_INTERVAL_MS,
      onError: (err) => this.opts.log.error({ err }, "checking the console's ACME certificate failed"),
      unref: true,
    });
    loop.start();
    handle.stop = () => void loop.stop();
    return { material, source: handle };
  }

  // --- provided --------------------------------------------------------------------------------

  private async startProvided(): Promise<{ material: TlsMaterial; source: Source }> {
    const { config, db, keyring } = this.opts;
    const { certFile, keyFile } = config.tls;
    if (!certFile || !keyFile) {
      const upload = await readProvidedUpload(db);
      if (!upload) throw new AppError("bad_request", "the provided mode needs a certificate: set PORTCULLIS_TLS_CERT and PORTCULLIS_TLS_KEY, or upload one in Settings → TLS");
      const pair = openPair(keyring, upload, PROVIDED_KEY_CONTEXT);
      try {
        const v = validateUpload({ kind: "pem", certificatePem: pair.certificatePem, keyPem: pair.privateKeyPem }, this.now());
        this.providedError = null;
        return { material: { chainPem: v.chainPem, keyPem: v.privateKeyPem, served: describe(v.leafPem, "provided", true) }, source: { mode: "provided", stop: () => {} } };
      } catch (err) {
        if (err instanceof AppError) throw new AppError("bad_request", `the certificate uploaded in Settings → TLS cannot be served: ${err.message}; upload a new one`);
        throw err;
      }
    }
    let material: TlsMaterial;
    try {
      material = loadProvidedFiles(certFile, keyFile, this.now());
    } catch (err) {
      if (err instanceof ConsoleTlsStartupError) throw new AppError("bad_request", err.message);
      throw err;
    }
    this.providedError = null;
    return { material, source: this.watchProvided(certFile, keyFile) };
  }

  /** fs.watch on the directories (certbot swaps symlinks) and a stat poll as a safety net. */
  private watchProvided(certFile: string, keyFile: string): Source {
    const signature = () =>
      [certFile, keyFile]
        .map((f) => {
          try {
            const s = fs.statSync(f);
            return `${s.ino}:${s.size}:${s.mtimeMs}`;
          } catch {
            return "missing";
          }
        })
        .join("|");
    let last = signature();
    let lastFailure: string | null = null;
    let debounce: NodeJS.Timeout | undefined;
    const reload = () => {
      const now = signature();
      if (now === last) return;
      last = now;
      void this.serial(async () => {
        if (this.mode !== "provided" || this.source !== handle) return;
        try {
          const next = loadProvidedFiles(certFile, keyFile, this.now());
          this.providedError = null;
          lastFailure = null;
          if (next.served.fingerprintSha256 === this.served?.fingerprintSha256) return;
          this.swap(next, `${certFile} changed`);
          await recordEvent(this.opts.db, {
            type: "console.tls_reloaded",
            message: `The console reloaded its certificate from ${certFile} (now ${next.served.subject}, expires ${next.served.notAfter.slice(0, 10)}).`,
            detail: { certFile, fingerprintSha256: next.served.fingerprintSha256 },
          });
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          this.providedError = message;
          if (message === lastFailure) return;
          lastFailure = message;
          this.opts.log.error({ certFile, keyFile }, `the console's certificate files changed but cannot be served; keeping the previous certificate: ${message}`);
          await recordEvent(this.opts.db, {
            type: "console.tls_reload_failed",
            severity: "error",
            message: `The console kept serving its previous certificate: ${message}`,
            detail: { certFile, keyFile },
          });
        }
      }).catch((err: unknown) => this.opts.log.error({ err }, "reloading the console's certificate failed"));
    };
    const soon = () => {
      clearTimeout(debounce);
      debounce = setTimeout(reload, 250);
      debounce.unref();
    };
    const watchers: fs.FSWatcher[] = [];
    for (const dir of new Set([path.dirname(path.resolve(certFile)), path.dirname(path.resolve(keyFile))])) {
      try {
        const w = fs.watch(dir, soon);
        w.on("error", () => {});
        watchers.push(w);
      } catch {
        // The poll below still notices changes.
      }
    }
    const timer = setInterval(reload, PROVIDED_POLL_INTERVAL_MS);
    timer.unref();
    const handle: Source = {
      mode: "provided",
      stop: () => {
        clearInterval(timer);
        clearTimeout(debounce);
        for (const w of watchers) w.close();
      },
    };
    return handle;
  }
}

export const isIpAddress = (host: string) => net.isIP(host) !== 0;
