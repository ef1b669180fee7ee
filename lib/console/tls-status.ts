import type { Config } from "../config";
import { TLS_MODES } from "../config";
import { readSnapshot, type Db } from "../db/connection";
import { latestEventId, listEvents } from "../events";
import { statusSteps, type StatusStep } from "../events/status-steps";
import type { ServiceWarning } from "../warnings";
import { isLoopbackHost } from "./http";
import { deriveServed } from "./tls-manager";
import { readAcmeSettings, readProvidedUpload, readSetting, TLS_MODE_KEY, readLocalCa } from "./tls-store";

// What the console serves over TLS, as the Settings → TLS page, the API and the banner see it.

export type ConsoleTlsMode = (typeof TLS_MODES)[number];

export type ServedCertificate = {
  kind: "local_ca" | "self_signed" | "acme" | "provided";
  subject: string;
  issuer: string;
  names: string[];
  notBefore: string;
  notAfter: string;
  fingerprintSha256: string;
  /** false for self-signed and local-CA certificates: browsers warn unless the operator installed the CA. */
  trusted: boolean;
};

export type ConsoleTlsStatus = {
  mode: ConsoleTlsMode;
  modeSource: "env" | "settings" | "default";
  /** Whether this process serves HTTPS itself (false for off, behind_proxy and auto on loopback). */
  https: boolean;
  /** Set when the chosen mode differs from what the running process can serve without a restart. */
  restartRequired: string | null;
  served: ServedCertificate | null;
  localCa: null | { subject: string; fingerprintSha256: string; notAfter: string };
  acme: {
    enabled: boolean;
    domain: string | null;
    email: string | null;
    certificateId: string | null;
    status: string | null;
    /** The newest event id when status was read: status changes with a higher id are newer than it (the page steps through them). */
    statusAsOf: number;
    /**
     * The certificate's latest status changes up to statusAsOf, oldest first: when this read is ahead of the
     * live stream, the page still steps through them (Pending → Requesting → Active) instead of skipping one.
     */
    statusSteps: StatusStep[];
    lastError: string | null;
  };
  provided: { source: "env" | "upload" | null; certFile: string | null; keyFile: string | null; lastError: string | null };
  /** Field → the environment variable that sets it (environment wins; the UI shows these locked). */
  locked: Record<string, string>;
};

/** What the running console process serves now; registered by the TLS manager in server.ts. */
export type RunningTls = {
  mode: ConsoleTlsMode;
  https: boolean;
  served: ServedCertificate | null;
  providedError: string | null;
  /** Re-reads the settings and applies what can change live; returns a reason when a restart is needed. */
  apply(): Promise<void>;
  /** A new server certificate from the local CA (same CA), served at once. */
  regenerate(): Promise<void>;
};

const holder = globalThis as unknown as { __portcullisConsoleTls?: RunningTls };

export function registerRunningTls(running: RunningTls | undefined) {
  holder.__portcullisConsoleTls = running;
}

export function getRunningTls(): RunningTls | undefined {
  return holder.__portcullisConsoleTls;
}

/** The mode in force: PORTCULLIS_TLS_MODE when set, else the one chosen in Settings → TLS, else auto. */
export async function effectiveTlsMode(db: Db, config: Config): Promise<{ mode: ConsoleTlsMode; source: "env" | "settings" | "default" }> {
  if (config.tls.modeFromEnv) return { mode: config.tls.mode, source: "env" };
  const stored = await readSetting<string>(db, TLS_MODE_KEY);
  if (stored && (TLS_MODES as readonly string[]).includes(stored)) return { mode: stored as ConsoleTlsMode, source: "settings" };
  return { mode: "auto", source: "default" };
}

/** Whether a mode makes this process terminate TLS itself on this bind address. */
export function modeServesHttps(mode: ConsoleTlsMode, host: string): boolean {
  if (mode === "off" || mode === "behind_proxy") return false;
  if (mode === "auto") return !isLoopbackHost(host);
  return true;
}

export function lockedFields(config: Config): Record<string, string> {
  const locked: Record<string, string> = {};
  if (config.tls.modeFromEnv) locked.mode = "PORTCULLIS_TLS_MODE";
  if (config.acme.domain) locked.acmeDomain = "PORTCULLIS_ACME_DOMAIN";
  if (config.acme.email) locked.acmeEmail = "PORTCULLIS_ACME_EMAIL";
  if (config.tls.certFile || config.tls.keyFile) locked.provided = config.tls.certFile ? "PORTCULLIS_TLS_CERT" : "PORTCULLIS_TLS_KEY";
  return locked;
}

const describeMode = (mode: ConsoleTlsMode, https: boolean) =>
  `${mode} (${https ? "HTTPS" : "plain HTTP"})`;

// The certificate's newest events read with the status: an order makes about nine, five of them status
// changes (pending, requesting, issued…), so these hold the last order's whole way.
const STATUS_EVENTS = 20;

/** statusAsOf is left 0 and steps empty with `{ statusAsOf: false }` (the banner, which shows no status, on every page). */
export async function getConsoleTlsStatus(db: Db, config: Config, opts: { statusAsOf?: boolean } = {}): Promise<ConsoleTlsStatus> {
  const { mode, source } = await effectiveTlsMode(db, config);
  const running = getRunningTls();
  const wantsHttps = modeServesHttps(mode, config.host);
  const https = running ? running.https : wantsHttps;
  let restartRequired: string | null = null;
  if (running && running.https !== wantsHttps) {
    restartRequired = `The console runs in ${describeMode(running.mode, running.https)}; the chosen mode ${describeMode(mode, wantsHttps)} takes effect when Portcullis is restarted.`;
  }

  const acmeSettings = await readAcmeSettings(db);
  const acmeDomain = config.acme.domain ?? acmeSettings?.domain ?? null;
  const acmeEmail = config.acme.email ?? acmeSettings?.email ?? null;
  let acmeRow: { status: string; last_error: string | null } | undefined;
  let statusAsOf = 0;
  let steps: StatusStep[] = [];
  const certificateId = acmeSettings?.certificateId;
  if (certificateId) {
    const readRow = (from: Db) => from.selectFrom("certificates").select(["status", "last_error"]).where("id", "=", certificateId).executeTakeFirst();
    if (opts.statusAsOf === false) acmeRow = await readRow(db);
    // One snapshot: every status event after statusAsOf is newer than the status read, and those up to it are read with it.
    else {
      ({ statusAsOf, acmeRow, steps } = await readSnapshot(db, async (trx) => ({
        statusAsOf: await latestEventId(trx),
        acmeRow: await readRow(trx),
        steps: statusSteps((await listEvents(trx, { certificateId, newestFirst: true, limit: STATUS_EVENTS })).reverse()),
      })));
    }
  }
  const upload = config.tls.certFile ? undefined : await readProvidedUpload(db);
  const providedSource: "env" | "upload" | null = config.tls.certFile || config.tls.keyFile ? "env" : upload ? "upload" : null;

  const ca = await readLocalCa(db);
  return {
    mode,
    modeSource: source,
    https,
    restartRequired,
    served: running ? running.served : await deriveServed(db, config, mode, wantsHttps).catch(() => null),
    localCa: ca ? { subject: ca.facts.subject, fingerprintSha256: ca.facts.fingerprintSha256, notAfter: ca.facts.notAfter } : null,
    acme: {
      enabled: mode === "acme" || Boolean(acmeSettings?.enabled),
      domain: acmeDomain,
      email: acmeEmail,
      certificateId: acmeSettings?.certificateId ?? null,
      status: acmeRow?.status ?? null,
      statusAsOf,
      statusSteps: steps,
      lastError: acmeRow?.last_error ?? null,
    },
    provided: {
      source: providedSource,
      certFile: config.tls.certFile ?? null,
      keyFile: config.tls.keyFile ?? null,
      lastError: running?.providedError ?? null,
    },
    locked: lockedFields(config),
  };
}

/** The console's part of the banner: a warning while the console serves a certificate browsers do not trust. */
export async function consoleTlsWarnings(db: Db, config: Config): Promise<ServiceWarning[]> {
  const status = await getConsoleTlsStatus(db, config, { statusAsOf: false });
  const served = status.served;
  if (!served || served.trusted) return [];
  if (served.kind === "local_ca") {
    return [
      {
        id: "console-local-ca",
        message:
          "The console serves a certificate from Portcullis's own local CA: browsers will warn unless you install that CA (download it from /api/v1/ca), or switch to Let's Encrypt or your own certificate.",
        href: "/settings/tls",
        linkText: "Open TLS settings",
      },
    ];
  }
  if (served.kind === "provided") {
    const from = status.provided.source === "env" ? `the file ${status.provided.certFile}` : "the certificate uploaded in Settings → TLS";
    return [
      {
        id: "console-self-signed",
        message: `The console serves a self-signed certificate (${served.subject}) from ${from}: browsers will warn. Replace it with one from a CA, or enable Let's Encrypt.`,
        href: "/settings/tls",
        linkText: "Open TLS settings",
      },
    ];
  }
  return [
    {
      id: "console-self-signed",
      message:
        status.mode === "acme"
          ? `The console serves a self-signed certificate until Let's Encrypt issues one for ${status.acme.domain ?? "its domain"}${status.acme.lastError ? ` (last error: ${status.acme.lastError})` : ""}: browsers will warn.`
          : "The console serves a self-signed certificate: browsers will warn.",
      href: "/settings/tls",
      linkText: "Open TLS settings",
    },
  ];
}
