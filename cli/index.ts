import { spawn } from "node:child_process";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { Command, InvalidArgumentError } from "commander";
import { requestRenewal } from "../lib/acme/certificates";
import { CLI_ACTOR } from "../lib/audit";
import { getCertificate, listCertificates } from "../lib/certificates";
import { ConfigError, loadConfigOrExit } from "../lib/config";
import { SealError } from "../lib/crypto/seal";
import { getDatabase } from "../lib/db";
import { migrateToLatest, MigrationError } from "../lib/db/migrate";
import { AppError } from "../lib/errors";
import { listListeners, listMappings } from "../lib/listeners";
import { relativeTime } from "../lib/format";
import { prepareProcess } from "../lib/runtime";
import { createApiToken } from "../lib/tokens";
import { createUser, roleSchema } from "../lib/users";
import { ensureBuild } from "./build";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const bin = path.join(root, "bin", "portcullis.mjs");

// Exit codes scripts can rely on.
export const EXIT = { ok: 0, error: 1, usage: 2, notFound: 3, denied: 4 } as const;

async function readSecretLine(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) {
    const rl = readline.createInterface({ input: process.stdin });
    for await (const line of rl) {
      rl.close();
      return line;
    }
    return "";
  }
  process.stdout.write(prompt);
  return new Promise((resolve) => {
    const stdin = process.stdin;
    stdin.setRawMode(true);
    stdin.resume();
    let value = "";
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") {
          stdin.setRawMode(false);
          stdin.pause();
          stdin.off("data", onData);
          process.stdout.write("\n");
          resolve(value);
          return;
        }
        if (ch === "\u0003") process.exit(130);
        if (ch === "\u007f") value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on("data", onData);
  });
}

async function withDatabase<T>(fn: (db: Awaited<ReturnType<typeof prepareProcess>>["db"]) => Promise<T>): Promise<T> {
  const config = loadConfigOrExit();
  const { db } = await prepareProcess(config);
  try {
    return await fn(db);
  } finally {
    await db.destroy();
  }
}

const program = new Command()
  .name("portcullis")
  .description("Portcullis: a self-hosted TLS certificate console")
  .showHelpAfterError();

program
  .command("serve")
  .description("run the console and the worker together (what `npm start` does)")
  .action(async () => {
    loadConfigOrExit();
    // Migrate once here, so that the two children find the schema ready.
    const { db, kind } = getDatabase();
    await migrateToLatest(db, kind);
    await db.destroy();
    ensureBuild(root);
    const children = ["console", "worker"].map((role) =>
      spawn(process.execPath, [bin, role], { stdio: "inherit", env: process.env }),
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
    const config = loadConfigOrExit();
    ensureBuild(root);
    const { startConsole } = await import("../server");
    await startConsole(config);
  });

program
  .command("worker")
  .description("run the worker (engine and edge roles) only")
  .action(async () => {
    const { startWorker } = await import("../worker/index");
    await startWorker(loadConfigOrExit());
  });

program
  .command("migrate")
  .description("bring the database schema up to date")
  .action(async () => {
    loadConfigOrExit();
    const { db, kind } = getDatabase();
    const applied = await migrateToLatest(db, kind);
    await db.destroy();
    console.log(applied.length ? `applied: ${applied.join(", ")}` : "the database is up to date");
  });

const user = program.command("user").description("manage users");
user
  .command("add")
  .description("create a user; the password is read from a prompt, or from standard input")
  .requiredOption("--email <email>", "the user's email address")
  .option("--role <role>", "admin or viewer", (v) => {
    const r = roleSchema.safeParse(v);
    if (!r.success) throw new InvalidArgumentError("accepted values: admin, viewer");
    return r.data;
  }, "admin")
  .option("--json", "print the result as JSON")
  .action(async (opts: { email: string; role: "admin" | "viewer"; json?: boolean }) => {
    const password = await readSecretLine("Password (10+ characters): ");
    const created = await withDatabase((db) => createUser(db, CLI_ACTOR, { email: opts.email, password, role: opts.role }));
    if (opts.json) console.log(JSON.stringify(created));
    else console.log(`created ${created.role} ${created.email} (${created.id})`);
  });

const token = program.command("token").description("manage API tokens");
token
  .command("create")
  .description("create an API token for a user; the token is printed once")
  .requiredOption("--user <email>", "the owner; the token acts with this user's role")
  .requiredOption("--name <name>", "what the token is for")
  .option("--json", "print the result as JSON")
  .action(async (opts: { user: string; name: string; json?: boolean }) => {
    const created = await withDatabase(async (db) => {
      const owner = await db.selectFrom("users").select("id").where("email", "=", opts.user.trim().toLowerCase()).executeTakeFirst();
      if (!owner) throw new AppError("not_found", `no user with the email ${opts.user}; create one with: portcullis user add --email ${opts.user}`);
      return createApiToken(db, CLI_ACTOR, { userId: owner.id, name: opts.name });
    });
    if (opts.json) console.log(JSON.stringify(created));
    else console.log(created.token);
  });

const cert = program.command("cert").description("inspect and renew certificates");
cert
  .command("list")
  .description("list certificates, newest first")
  .option("--json", "print JSON")
  .option("--limit <n>", "how many (1-200)", "200")
  .action(async (opts: { json?: boolean; limit: string }) => {
    const page = await withDatabase((db) => listCertificates(db, { limit: Number(opts.limit) }));
    if (opts.json) {
      console.log(JSON.stringify(page.items, null, 2));
      return;
    }
    if (!page.items.length) {
      console.log("no certificates");
      return;
    }
    const rows = page.items.map((c) => [c.id, c.name, c.status, c.source, relativeTime(c.notAfter), c.domains.join(",")]);
    const header = ["ID", "NAME", "STATUS", "SOURCE", "EXPIRES", "NAMES"];
    const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
    for (const r of [header, ...rows]) console.log(r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]))).join("  "));
  });
cert
  .command("info <idOrName>")
  .description("show one certificate")
  .option("--json", "print JSON")
  .action(async (idOrName: string, opts: { json?: boolean }) => {
    const found = await withDatabase((db) => getCertificate(db, idOrName));
    if (!found) throw new AppError("not_found", `no certificate with the id or name "${idOrName}"`);
    const { chainPem, ...rest } = found;
    if (opts.json) {
      console.log(JSON.stringify({ ...rest, chainPem }, null, 2));
      return;
    }
    const lines: [string, string][] = [
      ["ID", found.id],
      ["Name", found.name],
      ["Status", found.status],
      ["Source", found.source],
      ["Names", found.domains.join(", ")],
      ["Subject", found.subject ?? "—"],
      ["Issuer", found.issuer ?? "—"],
      ["Serial", found.serial ?? "—"],
      ["SHA-256", found.fingerprintSha256 ?? "—"],
      ["Not before", found.notBefore ?? "—"],
      ["Not after", `${found.notAfter ?? "—"} (${relativeTime(found.notAfter)})`],
      ["Key type", found.keyType],
      ["Versions", String(found.versions.length)],
      ["Renewal", found.renewAt ? `${found.renewAt}: ${found.renewReason ?? ""}` : (found.renewReason ?? "—")],
      ...(found.lastError ? ([["Last error", found.lastError], ["Next try", found.nextAttemptAt ?? "—"]] as [string, string][]) : []),
    ];
    for (const [k, v] of lines) console.log(`${k.padEnd(12)} ${v}`);
  });

cert
  .command("renew <idOrName>")
  .description("renew an ACME certificate now (or retry a failed one); the worker acts within a second")
  .option("--force", "send the order even if the Let's Encrypt rate-limit ledger refuses it")
  .option("--json", "print JSON")
  .action(async (idOrName: string, opts: { force?: boolean; json?: boolean }) => {
    const updated = await withDatabase((db) => requestRenewal(db, CLI_ACTOR, idOrName, { force: opts.force }));
    if (opts.json) console.log(JSON.stringify({ id: updated.id, status: updated.status, nextAttemptAt: updated.nextAttemptAt }));
    else console.log(`renewal of ${updated.name} (${updated.id}) requested; follow it on the certificate's page or with: portcullis cert info ${updated.id}`);
  });

const listener = program.command("listener").description("inspect listeners");
listener
  .command("list")
  .description("list listeners and their mappings")
  .option("--json", "print JSON")
  .action(async (opts: { json?: boolean }) => {
    const rows = await withDatabase(async (db) =>
      Promise.all((await listListeners(db)).map(async (l) => ({ ...l, mappings: await listMappings(db, l.id) }))),
    );
    if (opts.json) {
      console.log(JSON.stringify(rows, null, 2));
      return;
    }
    if (!rows.length) {
      console.log("no listeners");
      return;
    }
    for (const l of rows) {
      const target = l.kind === "https" ? `→ ${l.upstreamUrl}` : l.httpAction === "proxy" ? `→ ${l.upstreamUrl}` : `→ redirect to https (:${l.redirectPort})`;
      console.log(`${l.id}  ${l.name}  ${l.kind}://${l.bindAddress}:${l.port}  ${target}${l.enabled ? "" : "  (disabled)"}`);
      for (const m of l.mappings) console.log(`    ${m.hostname} → ${m.certificateName}${m.warnings.length ? `  ! ${m.warnings.join("; ")}` : ""}`);
    }
  });

function exitCodeFor(err: unknown): number {
  if (err instanceof AppError) {
    if (err.code === "not_found") return EXIT.notFound;
    if (err.code === "forbidden" || err.code === "unauthenticated") return EXIT.denied;
    return EXIT.usage;
  }
  return EXIT.error;
}

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof AppError) {
    const fields = err.fieldErrors ? Object.entries(err.fieldErrors).map(([k, v]) => `\n  ${k}: ${v.join("; ")}`).join("") : "";
    process.stderr.write(`portcullis: ${err.message}${fields}\n`);
  } else if (err instanceof ConfigError || err instanceof SealError || err instanceof MigrationError) {
    process.stderr.write(`portcullis: ${err.message}\n`);
  } else if (err instanceof Error) {
    process.stderr.write(`portcullis: ${err.message}\n`);
  } else {
    process.stderr.write(`portcullis: ${String(err)}\n`);
  }
  process.exit(exitCodeFor(err));
});
