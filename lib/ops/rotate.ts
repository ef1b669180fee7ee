import crypto from "node:crypto";
import fs from "node:fs";
import { sql } from "kysely";
import type { Config } from "../config";
import {
  DataDirKeySource,
  envelopeKeyId,
  Keyring,
  SealError,
  SecretKeySource,
  sealingKeyFromBytes,
  syncDirectory,
  writeKeyFile,
} from "../crypto/seal";
import { envelopesOf, ResealError, resealRow, SEALED_COLUMNS, SETTINGS_TABLE, tablesWithSealedValues, type TableName } from "../crypto/sealed-columns";
import type { Db } from "../db";
import { databaseKind } from "../db/connection";
import { SEAL_CHECK_KEY } from "../runtime";

// Sealing-key rotation. Data-directory mode (no PORTCULLIS_SECRET):
//   1. a new key is written to secret.key.next (0600) — every process opens with it from now on;
//   2. one transaction re-seals every sealed value (seal_check included) under the new key;
//   3. secret.key is copied to secret.key.previous (kept: a process that had not yet noticed the
//      rotation may still seal with it), then secret.key.next is renamed over secret.key.
// secret.key exists at every moment and every value is sealed with a key some file holds, so a kill
// anywhere leaves everything readable; run again, the command finds secret.key.next and finishes.
// PORTCULLIS_SECRET mode: the operator puts the new secret in PORTCULLIS_SECRET and the old one in
// PORTCULLIS_SECRET_PREVIOUS; the rotation re-seals everything under the new one.

/** For tests: "kill-after-rows:N" (SIGKILL inside the transaction after N re-sealed rows) or "kill-after-commit". */
const TEST_HOOK_VARIABLE = "PORTCULLIS_TEST_ROTATION_HOOK";

export type RotationResult = {
  mode: "data_dir" | "secret";
  keyId: string;
  previousKeyIds: string[];
  rows: number;
  values: number;
  resumed: boolean;
  next: string[];
};

export type ResealResult = { rows: number; values: number };

function testHook(): { killAfterRows?: number; killAfterCommit?: boolean } {
  const hook = process.env[TEST_HOOK_VARIABLE];
  if (!hook) return {};
  const rows = /^kill-after-rows:(\d+)$/.exec(hook);
  if (rows) return { killAfterRows: Number(rows[1]) };
  return { killAfterCommit: hook === "kill-after-commit" };
}

function selfKill(): never {
  process.kill(process.pid, "SIGKILL");
  // SIGKILL is not delivered synchronously everywhere; never continue past the hook.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10_000);
  throw new Error("unreachable");
}

/**
 * Re-seals every sealed value (every column of the registry, every envelope in settings) with
 * `to`, opening with `from`, in one transaction. A value that does not open aborts it: nothing changes.
 */
export async function resealDatabase(db: Db, from: Keyring, to: Keyring): Promise<ResealResult> {
  const hook = testHook();
  return db.transaction().execute(async (trx) => {
    // Take the write lock first (SQLite: a read transaction cannot always become a write one later).
    await trx.updateTable("settings").set({ key: SEAL_CHECK_KEY }).where("key", "=", SEAL_CHECK_KEY).execute();
    let rows = 0;
    let values = 0;
    for (const table of tablesWithSealedValues()) {
      const columns = [...new Set(SEALED_COLUMNS.filter((c) => c.table === table).map((c) => c.column))];
      const primaryKey = table === SETTINGS_TABLE ? ["key"] : SEALED_COLUMNS.find((c) => c.table === table)!.primaryKey;
      let query = trx.selectFrom(table as TableName).selectAll();
      if (table === SETTINGS_TABLE) query = query.where(sql.ref("value"), "like", "%pcs1.%");
      else query = query.where((eb) => eb.or(columns.map((c) => eb(sql.ref(c), "is not", null))));
      // PostgreSQL: a console saving a new value into one of these rows waits for the commit instead of being overwritten.
      if (databaseKind(trx) === "postgres") query = query.forUpdate();
      const found = (await query.execute()) as Record<string, unknown>[];
      for (const row of found) {
        const changed = resealRow(table, row, from, to);
        if (!changed.length) continue;
        let update = trx.updateTable(table as TableName).set(Object.fromEntries(changed.map((c) => [c, row[c]])) as never);
        for (const k of primaryKey) update = update.where(sql.ref(k), "=", row[k]);
        await update.execute();
        rows++;
        values += changed.length;
        if (hook.killAfterRows !== undefined && rows >= hook.killAfterRows) selfKill();
      }
    }
    return { rows, values };
  });
}

/** How many sealed values each key id seals (for `secret status` style reports and for checks). */
export async function countSealedByKey(db: Db, keyring: Keyring): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of tablesWithSealedValues()) {
    const rows = (await db.selectFrom(table as TableName).selectAll().execute()) as Record<string, unknown>[];
    for (const row of rows) {
      for (const { envelope } of envelopesOf(table, row, keyring)) {
        const id = envelopeKeyId(envelope) ?? "not-an-envelope";
        counts[id] = (counts[id] ?? 0) + 1;
      }
    }
  }
  return counts;
}

function wrapResealError(err: unknown): never {
  if (err instanceof ResealError) throw new SealError(`the rotation stopped and changed nothing: ${err.message}`);
  throw err;
}

/** Rotates the sealing key of the installation `config` describes (see the comment at the top). */
export async function rotateSealingKey(db: Db, config: Pick<Config, "secret" | "previousSecrets" | "dataDir">): Promise<RotationResult> {
  if (config.secret) {
    const source = new SecretKeySource(config.secret, config.previousSecrets ?? []);
    const { current, older } = source.load();
    const keyring = new Keyring(current, older);
    const result = await resealDatabase(db, keyring, keyring).catch(wrapResealError);
    return {
      mode: "secret",
      keyId: current.id,
      previousKeyIds: older.map((k) => k.id),
      ...result,
      resumed: false,
      next: older.length
        ? ["Every sealed value now uses the key from PORTCULLIS_SECRET.", "Remove PORTCULLIS_SECRET_PREVIOUS from the environment of every console and worker, and restart them."]
        : ["Every sealed value was re-sealed with the key from PORTCULLIS_SECRET.", "To rotate to a new secret: set PORTCULLIS_SECRET to the new one and PORTCULLIS_SECRET_PREVIOUS to the old one for every process, restart them, then run this again."],
    };
  }

  const source = new DataDirKeySource(config.dataDir);
  const files = source.files();
  const resumed = fs.existsSync(files.next);
  if (!resumed) writeKeyFile(files.next, crypto.randomBytes(32));
  const nextBytes = readKeyBytes(files.next);
  if (!nextBytes) throw new SealError(`${files.next} does not hold a 32-byte base64 key; delete it (nothing is sealed with it yet unless a rotation committed: then restore it from a backup) and run again`);
  const nextKey = sealingKeyFromBytes(nextBytes);
  const { current, older } = source.load();
  const opener = new Keyring(current, [...older, nextKey].filter((k) => k.id !== current.id));
  const sealer = new Keyring(nextKey);
  const result = await resealDatabase(db, opener, sealer).catch(wrapResealError);
  if (testHook().killAfterCommit) selfKill();

  const oldKey = readKeyBytes(files.current);
  if (oldKey && sealingKeyFromBytes(oldKey).id !== nextKey.id) writeKeyFile(files.previous, oldKey);
  fs.renameSync(files.next, files.current);
  syncDirectory(config.dataDir);
  return {
    mode: "data_dir",
    keyId: nextKey.id,
    previousKeyIds: oldKey ? [sealingKeyFromBytes(oldKey).id] : [],
    ...result,
    resumed,
    next: [
      `${files.current} holds the new key; the old one is kept in ${files.previous} until the next rotation.`,
      "Running consoles and workers pick the new key up by themselves. Back up the new secret.key now (or take a new backup with: portcullis backup create).",
    ],
  };
}

function readKeyBytes(file: string): Buffer | undefined {
  try {
    const bytes = Buffer.from(fs.readFileSync(file, "utf8").trim(), "base64");
    return bytes.length === 32 ? bytes : undefined;
  } catch {
    return undefined;
  }
}

