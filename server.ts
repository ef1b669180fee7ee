import crypto from "node:crypto";
import http from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";
import next from "next";
import { checkTlsMode, prepareRequest, trustedProxyList } from "./lib/console/http";
import type { Config } from "./lib/config";
import { describeDatabase } from "./lib/db/connection";
import { closeEventFeeds } from "./lib/events/feed";
import { setLoggerName } from "./lib/log";
import { prepareProcess } from "./lib/runtime";
import { countUsers, issueSetupToken } from "./lib/users";

const projectRoot = path.dirname(fileURLToPath(import.meta.url));

/** The console: our HTTP server around Next.js's request handler. Resolves once it listens. */
export async function startConsole(config: Config) {
  const log = setLoggerName("console");
  const tls = checkTlsMode(config);
  if (!tls.ok) {
    process.stderr.write(`Portcullis cannot start the console: ${tls.message}\n`);
    process.exit(2);
  }
  const { db, keyring } = await prepareProcess(config, (m) => log.info(m));

  // next-auth signs sessions with AUTH_SECRET; derived from the sealing key, sessions survive restarts.
  process.env.AUTH_SECRET ||= Buffer.from(crypto.hkdfSync("sha256", keyring.current.key, "portcullis", "auth-secret-v1", 32)).toString("base64url");
  process.env.AUTH_TRUST_HOST = "true";
  process.env.NEXT_TELEMETRY_DISABLED = "1";

  const app = next({ dev: false, dir: projectRoot, hostname: config.host, port: config.port, quiet: true });
  await app.prepare();
  const handle = app.getRequestHandler();
  const trusted = trustedProxyList(config.tls.trustedProxies);

  const server = http.createServer((req, res) => {
    prepareRequest(req, res, { config, trusted, tls: false });
    handle(req, res).catch((err: unknown) => {
      log.error({ err }, "request failed");
      if (!res.headersSent) {
        res.statusCode = 500;
        res.end("Internal error; see the console log.");
      }
    });
  });
  server.keepAliveTimeout = 65_000;

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    log.info("console stopping");
    // Open event streams end now, so that their connections do not hold the shutdown.
    closeEventFeeds();
    server.close();
    server.closeIdleConnections();
    setTimeout(() => server.closeAllConnections(), 5000).unref();
    await app.close().catch(() => {});
    await db.destroy().catch(() => {});
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);

  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE") {
        reject(new Error(`port ${config.port} on ${config.host} is already in use; stop what uses it or set PORTCULLIS_PORT`));
      } else if (err.code === "EACCES") {
        reject(new Error(`not allowed to listen on ${config.host}:${config.port}; use a port above 1023 or grant the capability`));
      } else reject(err);
    });
    server.listen(config.port, config.host, resolve);
  });

  const hostForUrl = config.host.includes(":") ? `[${config.host}]` : config.host;
  const url = config.publicUrl ?? `http://${hostForUrl}:${config.port}`;
  log.info({ url, database: describeDatabase(config.database) }, "console listening");
  const lines = [`Portcullis console: ${url}`, `Database: ${describeDatabase(config.database)}`];
  if ((await countUsers(db)) === 0) {
    const token = await issueSetupToken(db);
    lines.push(
      "No user exists yet. Create the first admin at:",
      `  ${url.replace(/\/$/, "")}/setup?token=${token}`,
      "or run: npx portcullis user add --email you@example.com --role admin",
    );
  }
  process.stdout.write(`\n${lines.join("\n")}\n\n`);

  return server;
}
