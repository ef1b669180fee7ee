import { spawn } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Command, CommanderError } from "commander";
import { addAcmeCommands } from "./acme";
import { addBackupCommands, addSecretCommands } from "./backup";
import { ensureBuild } from "./build";
import { addCertCommands } from "./cert";
import { addDnsCommands } from "./dns";
import { addEventsCommand } from "./events";
import { addListenerCommands } from "./listener";
import { EXIT, EXIT_CODES_HELP, UsageError } from "./output";
import { addTlsCommands } from "./tls";
import { addTokenCommands, addUserCommands } from "./users";
import { addWebhookCommands } from "./webhook";

// The library is imported inside each action: `portcullis --help` and a `cert list` should not wait for
// the console, the ACME client and the PKI code to load.

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bin = path.join(root, "bin", "portcullis.mjs");

export { EXIT };

// A reader that stops early (`portcullis events --follow | head -1`) is a normal end, not a crash.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(EXIT.ok);
});

function exitOnTlsRefusal(tlsEnv: typeof import("../lib/console/tls-env"), config: import("../lib/config").Config) {
  const check = tlsEnv.checkTlsEnvironment(config);
  if (check.ok) return;
  process.stderr.write(`Portcullis cannot start the console: ${check.message}\n`);
  process.exit(2);
}

const program = new Command()
  .name("portcullis")
  .description("Portcullis: a self-hosted TLS certificate console")
  .showHelpAfterError("(add --help for usage)")
  // Usage errors come back as exceptions, so that they exit with EXIT.usage rather than commander's 1.
  .exitOverride()
  .addHelpText("after", EXIT_CODES_HELP);

program
  .command("serve")
  .description("run the console and the worker together (what `npm start` does)")
  .action(async () => {
    const { loadConfigOrExit } = await import("../lib/config");
    const { getDatabase } = await import("../lib/db");
    const { migrateToLatest } = await import("../lib/db/migrate");
    const config = loadConfigOrExit();
    // A bad TLS mode or provided file stops here, before a migration or a build is paid for.
    exitOnTlsRefusal(await import("../lib/console/tls-env"), config);
    // Migrate once here, so that the two children find the schema ready.
    const { db, kind } = getDatabase();
    await migrateToLatest(db, kind);
    await db.destroy();
    ensureBuild(root);
    const { workerEnvironment } = await import("../worker/environment");
    const children = ["console", "worker"].map((role) =>
      spawn(process.execPath, [bin, role], { stdio: "inherit", env: role === "worker" ? workerEnvironment(process.env) : process.env }),
    );
    let exiting = false;
    const stopAll = (signal: NodeJS.Signals) => {
      for (const child of children) if (child.exitCode === null) child.kill(signal);
    };
    for (const [index, child] of children.entries()) {
      child.on("exit", (code) => {
        if (!exiting) {
          const [name, other] = index === 0 ? ["console", "worker"] : ["worker", "console"];
          process.stderr.write(`portcullis: the ${name} exited (code ${code ?? "signal"}); stopping the ${other}\n`);
          exiting = true;
          process.exitCode = code ?? 0;
          stopAll("SIGTERM");
        }
        if (children.every((c) => c.exitCode !== null || c.signalCode !== null)) process.exit(process.exitCode ?? 0);
      });
    }
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.on(signal, () => {
        exiting = true;
        stopAll("SIGTERM");
      });
    }
  });

program
  .command("console")
  .description("run the console (web UI and REST API) only")
  .action(async () => {
    const { loadConfigOrExit } = await import("../lib/config");
    const config = loadConfigOrExit();
    // TLS refusals (bad mode, provided files) need neither a build nor a database.
    exitOnTlsRefusal(await import("../lib/console/tls-env"), config);
    ensureBuild(root);
    const { startConsole } = await import("../server");
    await startConsole(config);
  });

program
  .command("worker")
  .description("run the worker (engine and edge roles) only")
  .action(async () => {
    const { loadConfigOrExit } = await import("../lib/config");
    const { startWorker } = await import("../worker/index");
    await startWorker(loadConfigOrExit());
  });

program
  .command("migrate")
  .description("bring the database schema up to date")
  .option("--json", "print the migrations applied as JSON")
  .action(async (opts: { json?: boolean }) => {
    const { loadConfigOrExit } = await import("../lib/config");
    const { getDatabase } = await import("../lib/db");
    const { migrateToLatest } = await import("../lib/db/migrate");
    loadConfigOrExit();
    const { db, kind } = getDatabase();
    const applied = await migrateToLatest(db, kind).finally(() => db.destroy());
    if (opts.json) process.stdout.write(`${JSON.stringify({ applied })}\n`);
    else process.stdout.write(applied.length ? `applied: ${applied.join(", ")}\n` : "the database is up to date\n");
  });

addCertCommands(program);
addListenerCommands(program);
addDnsCommands(program);
addAcmeCommands(program);
addWebhookCommands(program);
addTlsCommands(program);
addEventsCommand(program);
addUserCommands(program);
addTokenCommands(program);
addBackupCommands(program);
addSecretCommands(program);

async function exitCodeFor(err: unknown): Promise<number> {
  if (err instanceof UsageError) return EXIT.usage;
  const { AppError } = await import("../lib/errors");
  if (err instanceof AppError) {
    if (err.code === "not_found") return EXIT.notFound;
    if (err.code === "forbidden" || err.code === "unauthenticated") return EXIT.denied;
    return EXIT.error;
  }
  const { ConfigError } = await import("../lib/config");
  if (err instanceof ConfigError) return EXIT.usage;
  return EXIT.error;
}

async function report(err: unknown) {
  // Commander has printed its own message (and the help, for --help) already.
  if (err instanceof CommanderError) {
    const success = err.exitCode === 0 || err.code === "commander.helpDisplayed" || err.code === "commander.version";
    process.exit(success ? EXIT.ok : EXIT.usage);
  }
  const { AppError } = await import("../lib/errors");
  const { storageFailure } = await import("../lib/db/failure");
  const storage = err instanceof AppError ? undefined : storageFailure(err);
  if (storage) err = storage;
  let message = err instanceof Error ? err.message : String(err);
  if (err instanceof AppError && err.fieldErrors) {
    message += Object.entries(err.fieldErrors).map(([field, messages]) => `\n  ${field}: ${messages.join("; ")}`).join("");
  }
  // Never a stack trace: the message is what the user can act on.
  process.stderr.write(`portcullis: ${message}\n`);
  process.exit(await exitCodeFor(err));
}

program.parseAsync(process.argv).catch(report);
