import fs from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { logToStandardError, readSecretLine, withDatabase } from "./context";
import { printJson, UsageError } from "./output";

// `portcullis backup create|restore` and `portcullis secret rotate`. The library is imported inside
// each action, like the other commands, so that --help stays fast.

const PASSPHRASE_VARIABLE = "PORTCULLIS_BACKUP_PASSPHRASE";

async function readPassphrase(confirmNew: boolean): Promise<string> {
  const { MIN_PASSPHRASE_LENGTH } = await import("../lib/ops/backup");
  const fromEnv = process.env[PASSPHRASE_VARIABLE];
  let passphrase = fromEnv;
  if (!passphrase) {
    passphrase = await readSecretLine(`Backup passphrase (${MIN_PASSPHRASE_LENGTH}+ characters): `);
    if (confirmNew && process.stdin.isTTY && passphrase.length >= MIN_PASSPHRASE_LENGTH) {
      const again = await readSecretLine("Repeat the passphrase: ");
      if (again !== passphrase) throw new UsageError("the two passphrases differ; nothing was written");
    }
  }
  if (!passphrase) throw new UsageError(`give the backup passphrase in ${PASSPHRASE_VARIABLE}, or type it at the prompt (standard input)`);
  if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
    throw new UsageError(`the backup passphrase must be at least ${MIN_PASSPHRASE_LENGTH} characters (got ${passphrase.length}${fromEnv ? ` from ${PASSPHRASE_VARIABLE}` : ""})`);
  }
  return passphrase;
}

/** Writes next to the target, then renames: a crash never leaves half a backup under the real name. */
function writeFileAtomically(file: string, bytes: Buffer) {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  const fd = fs.openSync(tmp, "w", 0o600);
  try {
    try {
      fs.writeSync(fd, bytes);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch (err) {
    // No half-written file left behind (a full disk, most likely: the message names where it is).
    fs.rmSync(tmp, { force: true });
    const e = err as NodeJS.ErrnoException;
    if (e.code === "ENOSPC" && !e.path) e.path = file;
    throw err;
  }
  fs.renameSync(tmp, file);
}

function describeTables(tables: Record<string, number>): string {
  const pick = ["certificates", "certificate_versions", "listeners", "certificate_mappings", "acme_accounts", "dns_credentials", "users", "events"];
  return pick.filter((t) => t in tables).map((t) => `${tables[t]} ${t.replace(/_/g, " ")}`).join(", ");
}

export function addBackupCommands(program: Command) {
  const backup = program.command("backup").description("encrypted backups of the whole database, restorable on either engine");

  backup
    .command("create")
    .description(`write an encrypted backup of every table (sealed secrets re-sealed under the passphrase, so secret.key is not needed to restore); the passphrase comes from ${PASSPHRASE_VARIABLE} or a prompt`)
    .requiredOption("--out <file>", "where to write the backup (e.g. portcullis.pcbk); written with mode 0600")
    .option("--force", "overwrite the file if it exists")
    .option("--json", "print a JSON summary")
    .action(async (opts: { out: string; force?: boolean; json?: boolean }) => {
      const out = path.resolve(opts.out);
      const { AppError } = await import("../lib/errors");
      if (!fs.existsSync(path.dirname(out))) throw new UsageError(`the directory ${path.dirname(out)} does not exist`);
      if (fs.existsSync(out) && !opts.force) throw new AppError("conflict", `${out} exists; choose another file name, or add --force to overwrite it`);
      const passphrase = await readPassphrase(true);
      const { createBackup } = await import("../lib/ops/backup");
      const { CLI_ACTOR, writeAudit } = await import("../lib/audit");
      const { bytes, summary } = await withDatabase(async ({ db, keyring }) => {
        const made = await createBackup(db, keyring, passphrase);
        await writeAudit(db, CLI_ACTOR, "backup.created", { type: "backup", id: null }, { file: out, bytes: made.bytes.length, tables: made.summary.tables });
        return made;
      });
      writeFileAtomically(out, bytes);
      if (opts.json) printJson({ file: out, ...summary });
      else process.stdout.write(`backup written to ${out} (${bytes.length} bytes): ${describeTables(summary.tables)}\nrestore it with: portcullis backup restore ${out}\n`);
    });

  backup
    .command("restore <file>")
    .description(`restore a backup into this installation's database (migrated first), re-sealing every secret under this installation's key, in one transaction; the passphrase comes from ${PASSPHRASE_VARIABLE} or a prompt`)
    .option("--force", "replace the data of a database that is not empty")
    .option("--json", "print a JSON summary")
    .action(async (file: string, opts: { force?: boolean; json?: boolean }) => {
      const { AppError } = await import("../lib/errors");
      const source = path.resolve(file);
      let bytes: Buffer;
      try {
        bytes = fs.readFileSync(source);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT") throw new AppError("not_found", `no file at ${source}`);
        if (code === "EISDIR") throw new UsageError(`${source} is a directory; give the backup file`);
        throw new AppError("bad_request", `cannot read ${source}: ${(err as Error).message}`);
      }
      const { readBackupHeader, restoreBackup } = await import("../lib/ops/backup");
      // A file that is not a backup (or is cut off) is refused before asking for the passphrase.
      readBackupHeader(bytes);
      const passphrase = await readPassphrase(false);
      await logToStandardError();
      const { loadConfigOrExit } = await import("../lib/config");
      const { getDatabase } = await import("../lib/db");
      const { migrateToLatest } = await import("../lib/db/migrate");
      const { keyringFromConfig } = await import("../lib/runtime");
      const { BACKUP_NOTE } = await import("../lib/crypto/seal");
      const config = loadConfigOrExit();
      const { db, kind } = getDatabase();
      try {
        const { keyring, source: keySource, created } = keyringFromConfig(config);
        const summary = await restoreBackup(db, keyring, bytes, passphrase, { force: opts.force, migrate: (d) => migrateToLatest(d, kind, { waitForServer: false }) });
        if (created) process.stderr.write(BACKUP_NOTE(keySource));
        const total = Object.values(summary.tables).reduce((a, b) => a + b, 0);
        if (opts.json) printJson({ file: source, keyId: keyring.current.id, ...summary });
        else {
          process.stdout.write(
            `restored the backup of ${summary.createdAt} (made on ${summary.engine}) into ${kind}: ${total} rows (${describeTables(summary.tables)}); every secret is now sealed with this installation's key (${keyring.current.id})\nstart (or restart) the console and the worker to serve it\n`,
          );
        }
      } finally {
        await db.destroy();
      }
    });
}

export function addSecretCommands(program: Command) {
  const secret = program.command("secret").description("the sealing key that encrypts private keys and tokens in the database");
  secret
    .command("rotate")
    .description(
      "re-seal every secret under a new key in one transaction. Without PORTCULLIS_SECRET: a new data-directory key (secret.key.next, then secret.key; the old one is kept as secret.key.previous). With PORTCULLIS_SECRET: set the new secret in PORTCULLIS_SECRET and the old one in PORTCULLIS_SECRET_PREVIOUS first. An interrupted rotation is finished by running this again.",
    )
    .option("--json", "print a JSON summary")
    .action(async (opts: { json?: boolean }) => {
      const { loadConfigOrExit } = await import("../lib/config");
      const { rotateSealingKey } = await import("../lib/ops/rotate");
      const config = loadConfigOrExit();
      const result = await withDatabase(async ({ db }) => {
        const rotated = await rotateSealingKey(db, config);
        const { CLI_ACTOR, writeAudit } = await import("../lib/audit");
        await writeAudit(db, CLI_ACTOR, "secret.rotated", { type: "sealing_key", id: rotated.keyId }, { mode: rotated.mode, values: rotated.values, resumed: rotated.resumed });
        return rotated;
      });
      if (opts.json) {
        printJson(result);
        return;
      }
      process.stdout.write(
        `${result.resumed ? "finished the interrupted rotation: " : ""}re-sealed ${result.values} secret${result.values === 1 ? "" : "s"} in ${result.rows} row${result.rows === 1 ? "" : "s"} under key ${result.keyId}${result.previousKeyIds.length ? ` (was ${result.previousKeyIds.join(", ")})` : ""}\n${result.next.map((l) => `next: ${l}`).join("\n")}\n`,
      );
    });
}
