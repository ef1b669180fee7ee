import crypto from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import next from "next";
import { createConsoleServer } from "./lib/console/server";
import { checkTlsEnvironment, ConsoleTlsStartupError } from "./lib/console/tls-env";
import type { Config } from "./lib/config";
import { describeDatabase } from "./lib/db/connection";
import { closeEventFeeds } from "./lib/events/feed";
import { setLoggerName } from "./lib/log";
import { prepareProcess } from "./lib/runtime";
import { countUsers, issueSetupToken } from "./lib/users";

const projectRoot = path.dirname(fileURLToPath(import.meta.url));

/** The console: our HTTP(S) server around Next.js's request handler. Resolves once it listens. */
export async function startConsole(config: Config) {
  const log = setLoggerName("console");
  const env = checkTlsEnvironment(config);
  if (!env.ok) {
    process.stderr.write(`Portcullis cannot start the console: ${env.message}\n`);
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

  let consoleServer;
  try {
    consoleServer = await createConsoleServer({ config, db, keyring, log, handler: (req, res) => handle(req, res) });
  } catch (err) {
    if (err instanceof ConsoleTlsStartupError) {
      process.stderr.write(`Portcullis cannot start the console: ${err.message}\n`);
      await db.destroy().catch(() => {});
      process.exit(2);
    }
    throw err;
  }
  const { server } = consoleServer;

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    log.info("console stopping");
    // Open event streams end now, so that their connections do not hold the shutdown.
    closeEventFeeds();
    void consoleServer.close(); // stops accepting, closes idle connections, the rest after 5 s
    await app.close().catch(() => {});
    await db.destroy().catch(() => {});
    process.exit(0);
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);

  const url = config.publicUrl ?? consoleServer.url;
  const served = consoleServer.tls.served;
  log.info({ url, database: describeDatabase(config.database), tlsMode: consoleServer.tls.mode, fingerprint: served?.fingerprintSha256 }, "console listening");
  const lines = [`Portcullis console: ${url}`, `Database: ${describeDatabase(config.database)}`];
  if (served) {
    lines.push(`TLS: ${consoleServer.tls.mode}, serving ${served.subject} (SHA-256 ${served.fingerprintSha256})`);
    if (served.kind === "local_ca") lines.push(`  Browsers will warn until you trust the local CA: ${url.replace(/\/$/, "")}/api/v1/ca?format=pem`);
  }
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
