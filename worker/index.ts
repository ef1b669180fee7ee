import http from "node:http";
import type { Config } from "../lib/config";
import { configureAcmeTransport } from "../lib/acme/client";
import { AcmeEngine } from "../lib/acme/engine";
import { AlertDispatcher } from "../lib/alerts/dispatcher";
import { dnsSettings } from "../lib/dns/credentials";
import { pruneLedger } from "../lib/acme/ratelimit";
import { markExpiredCertificates } from "../lib/certificates";
import { FileCertificateWatcher } from "../lib/certificates/imported";
import { closeEventFeeds } from "../lib/events/feed";
import { Edge } from "../lib/listeners/edge";
import { setLoggerName } from "../lib/log";
import { prepareProcess } from "../lib/runtime";
import { pruneLoginAttempts } from "../lib/users";

const SWEEP_INTERVAL_MS = 60_000;
const FILE_SYNC_INTERVAL_MS = 2_000;

/**
 * The worker process. The engine role sweeps certificate lifecycles (active → expired, with an event),
 * runs ACME orders and renewals, and reloads certificates kept on disk. The edge role serves every
 * enabled listener.
 */
export async function startWorker(config: Config) {
  const log = setLoggerName("worker");
  const { db, keyring } = await prepareProcess(config, (m) => log.info(m));
  const abort = new AbortController();
  let edge: Edge | undefined;
  let engine: AcmeEngine | undefined;
  let alerts: AlertDispatcher | undefined;
  const state = { startedAt: new Date().toISOString(), lastSweepAt: null as string | null, lastSweepError: null as string | null };

  const health = http.createServer((req, res) => {
    if (req.url === "/health") {
      res.writeHead(200, { "Content-Type": "application/json" });
      res.end(JSON.stringify({ status: "ok", roles: config.workerRoles, ...state, listeners: edge?.status() ?? [] }));
      return;
    }
    res.writeHead(404).end();
  });

  let sweeping: Promise<void> = Promise.resolve();
  const sweep = () => {
    sweeping = (async () => {
      try {
        const expired = await markExpiredCertificates(db);
        await pruneLoginAttempts(db);
        await pruneLedger(db);
        if (expired) log.warn({ expired }, "certificates expired");
        state.lastSweepAt = new Date().toISOString();
        state.lastSweepError = null;
      } catch (err) {
        state.lastSweepError = err instanceof Error ? err.message : String(err);
        log.error({ err }, "lifecycle sweep failed; retrying at the next interval");
      }
    })();
  };
  if (config.workerRoles.includes("engine")) {
    sweep();
    const timer = setInterval(sweep, SWEEP_INTERVAL_MS);
    // Certificates kept on disk by other tools: a change is picked up within seconds.
    const files = new FileCertificateWatcher(db, keyring);
    let syncing = false;
    const fileTimer = setInterval(() => {
      if (syncing) return;
      syncing = true;
      files
        .sync()
        .then(({ updated }) => updated && log.info({ updated }, "certificates reloaded from disk"))
        .catch((err: unknown) => log.error({ err }, "checking certificate files failed"))
        .finally(() => (syncing = false));
    }, FILE_SYNC_INTERVAL_MS);
    abort.signal.addEventListener("abort", () => {
      clearInterval(timer);
      clearInterval(fileTimer);
    });
    // ACME orders and renewals: due certificates are claimed with a lease, so any number of workers may run.
    configureAcmeTransport(config.acme.caBundle);
    // DNS-01 reaches Cloudflare at PORTCULLIS_CLOUDFLARE_API_URL and checks propagation on PORTCULLIS_DNS_RESOLVERS (or each zone's name servers).
    engine = new AcmeEngine({ db, keyring, log, dns: { settings: dnsSettings(config) } });
    engine.start();
    // Webhook alerts (one per problem) and expiry notices; deliveries are claimed with a lease.
    alerts = new AlertDispatcher({ db, keyring, log });
    alerts.start();
  }
  if (config.workerRoles.includes("edge")) {
    edge = new Edge({ db, keyring, log, portableTls: config.edgeTls === "portable" });
    await edge.start();
    log.info({ listeners: edge.status(), tls: edge.nativeTls ? "native" : "portable" }, "edge role: serving listeners");
  }

  const stop = async () => {
    if (abort.signal.aborted) return;
    log.info("worker stopping");
    abort.abort();
    health.close();
    await Promise.all([edge?.stop(), engine?.stop(), alerts?.stop()]);
    closeEventFeeds();
    await sweeping;
    await db.destroy().catch(() => {});
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);

  // Healthy means fully started: the roles run and a SIGTERM is handled.
  await new Promise<void>((resolve, reject) => {
    health.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        err.code === "EADDRINUSE"
          ? new Error(`worker health port ${config.workerHealthPort} is in use; set PORTCULLIS_WORKER_HEALTH_PORT to a free port`)
          : err,
      ),
    );
    health.listen(config.workerHealthPort, "127.0.0.1", resolve);
  });
  log.info({ roles: config.workerRoles, health: `http://127.0.0.1:${config.workerHealthPort}/health` }, "worker started");
}
