import crypto from "node:crypto";
import { promisify } from "node:util";
import zlib from "node:zlib";
import { sql } from "kysely";
import { Keyring, sealingKeyFromBytes } from "../crypto/seal";
import { ResealError, resealRow, TABLES_IN_ORDER, type TableName } from "../crypto/sealed-columns";
import { databaseKind, openDatabase, readSnapshot, type DatabaseKind, type Db } from "../db/connection";
import { migrateToLatest } from "../db/migrate";
import { AppError } from "../errors";
import { nowIso } from "../ids";
import { SEAL_CHECK_KEY } from "../runtime";

// Backup archive, format 1 (all integers big-endian):
//
//   "PCBK"                magic, 4 bytes
//   format version        uint16 (1)
//   header length         uint32
//   header                UTF-8 JSON: format, createdAt, engine, migrations, kdf {name: "scrypt", N, r, p,
//                         salt}, cipher "aes-256-gcm", iv, compression "gzip", keyCheck, payloadBytes
//   payload               AES-256-GCM ciphertext (payloadBytes) of gzip(JSON {tables: {name: {columns, rows}}})
//   tag                   16 bytes, the GCM tag
//
// Everything before the payload is the GCM additional data, so the header cannot be altered either.
// scrypt(passphrase, salt) gives 64 bytes: the first 32 encrypt, the last 32 are the root of the
// keyCheck (tells a wrong passphrase apart from a damaged file) and of the key every sealed value in
// the payload is re-sealed with (same per-row contexts), so that the backup needs no secret.key.

export const BACKUP_MAGIC = Buffer.from("PCBK", "ascii");
export const BACKUP_FORMAT_VERSION = 1;
export const MIN_PASSPHRASE_LENGTH = 12;
export const BACKUP_FILE_EXTENSION = ".pcbk";

const PREFIX_BYTES = 4 + 2 + 4;
const TAG_BYTES = 16;
const MAX_HEADER_BYTES = 64 * 1024;

export type KdfParams = { N: number; r: number; p: number };
/** 128 MiB of memory and about half a second per try: slow enough to make guessing a passphrase expensive. */
export const DEFAULT_KDF: KdfParams = { N: 2 ** 17, r: 8, p: 1 };

export type BackupHeader = {
  format: number;
  createdAt: string;
  engine: DatabaseKind;
  migrations: string[];
  kdf: { name: "scrypt"; N: number; r: number; p: number; salt: string };
  cipher: "aes-256-gcm";
  iv: string;
  compression: "gzip";
  keyCheck: string;
  payloadBytes: number;
};

type TableDump = { columns: string[]; rows: unknown[][] };
export type BackupPayload = { tables: Record<string, TableDump> };
export type BackupSummary = { engine: DatabaseKind; createdAt: string; migrations: string[]; tables: Record<string, number>; bytes: number };

/** A backup file refused: the message says what is wrong and what to do. Nothing was changed. */
export class BackupError extends AppError {
  constructor(
    message: string,
    readonly reason: "passphrase" | "not_backup" | "truncated" | "damaged" | "newer_format" | "newer_schema" | "not_empty" | "unreadable_secret",
  ) {
    super(reason === "not_empty" ? "conflict" : "bad_request", message);
    this.name = "BackupError";
  }
}

export function checkPassphrase(passphrase: string) {
  if (passphrase.length < MIN_PASSPHRASE_LENGTH) {
    throw new AppError("validation_failed", `the backup passphrase must be at least ${MIN_PASSPHRASE_LENGTH} characters`, {
      passphrase: [`use at least ${MIN_PASSPHRASE_LENGTH} characters`],
    });
  }
}

const scrypt = promisify(crypto.scrypt) as (password: string, salt: Buffer, keylen: number, options: crypto.ScryptOptions) => Promise<Buffer>;

type BackupKeys = { encryption: Buffer; keyCheck: string; keyring: Keyring };

async function deriveKeys(passphrase: string, salt: Buffer, kdf: KdfParams): Promise<BackupKeys> {
  const master = await scrypt(passphrase, salt, 64, { ...kdf, maxmem: 256 * kdf.N * kdf.r + 16 * 1024 * 1024 });
  const root = master.subarray(32);
  const keyCheck = crypto.createHmac("sha256", root).update("portcullis-backup-key-check").digest().subarray(0, 16).toString("base64url");
  const sealKey = Buffer.from(crypto.hkdfSync("sha256", root, salt, "portcullis-backup-seal", 32));
  return { encryption: Buffer.from(master.subarray(0, 32)), keyCheck, keyring: new Keyring(sealingKeyFromBytes(sealKey)) };
}

/** The migrations applied to a database, oldest first: the backup's schema version. */
export async function appliedMigrations(db: Db): Promise<string[]> {
  const rows = await sql<{ name: string }>`select name from kysely_migration order by name`.execute(db);
  return rows.rows.map((r) => r.name);
}

/** Every table of the database with its columns (Kysely's own bookkeeping tables aside). */
async function tableColumns(db: Db): Promise<Map<string, string[]>> {
  const tables = await db.introspection.getTables();
  return new Map(tables.filter((t) => !t.isView).map((t) => [t.name, t.columns.map((c) => c.name)]));
}

function orderedTables(names: Iterable<string>): string[] {
  const all = new Set(names);
  const known = TABLES_IN_ORDER.filter((t) => all.has(t));
  // A table this list lacks still travels (sealed-columns.test.ts insists the list is complete).
  return [...known, ...[...all].filter((t) => !(TABLES_IN_ORDER as readonly string[]).includes(t)).sort()];
}

/**
 * An encrypted archive of every table. Sealed values are opened with the installation's keyring
 * and sealed again under the passphrase; a value that cannot be opened stops the backup.
 */
export async function createBackup(db: Db, keyring: Keyring, passphrase: string, opts: { kdf?: KdfParams; now?: Date } = {}): Promise<{ bytes: Buffer; summary: BackupSummary }> {
  checkPassphrase(passphrase);
  const kdf = opts.kdf ?? DEFAULT_KDF;
  const salt = crypto.randomBytes(16);
  const keys = await deriveKeys(passphrase, salt, kdf);
  const engine = databaseKind(db);
  const createdAt = nowIso(opts.now);

  // One snapshot: a consistent picture even while the console and the worker write.
  const { migrations, payload } = await readSnapshot(db, async (trx) => {
    const migrations = await appliedMigrations(trx);
    const columns = await tableColumns(trx);
    const payload: BackupPayload = { tables: {} };
    for (const table of orderedTables(columns.keys())) {
      const names = columns.get(table)!;
      const rows = (await trx.selectFrom(table as TableName).selectAll().execute()) as Record<string, unknown>[];
      for (const row of rows) resealRow(table, row, keyring, keys.keyring);
      payload.tables[table] = { columns: names, rows: rows.map((row) => names.map((n) => row[n] ?? null)) };
    }
    return { migrations, payload };
  });

  const plaintext = zlib.gzipSync(Buffer.from(JSON.stringify(payload), "utf8"));
  const iv = crypto.randomBytes(12);
  const header: BackupHeader = {
    format: BACKUP_FORMAT_VERSION,
    createdAt,
    engine,
    migrations,
    kdf: { name: "scrypt", ...kdf, salt: salt.toString("base64url") },
    cipher: "aes-256-gcm",
    iv: iv.toString("base64url"),
    compression: "gzip",
    keyCheck: keys.keyCheck,
    // GCM's ciphertext is as long as its plaintext.
    payloadBytes: plaintext.length,
  };
  const headerBytes = Buffer.from(JSON.stringify(header), "utf8");
  const prefix = Buffer.alloc(PREFIX_BYTES);
  BACKUP_MAGIC.copy(prefix, 0);
  prefix.writeUInt16BE(BACKUP_FORMAT_VERSION, 4);
  prefix.writeUInt32BE(headerBytes.length, 6);
  const aad = Buffer.concat([prefix, headerBytes]);
  const cipher = crypto.createCipheriv("aes-256-gcm", keys.encryption, iv);
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const bytes = Buffer.concat([aad, body, cipher.getAuthTag()]);
  const tables = Object.fromEntries(Object.entries(payload.tables).map(([t, d]) => [t, d.rows.length]));
  return { bytes, summary: { engine, createdAt, migrations, tables, bytes: bytes.length } };
}

/** The header of a backup file, checked for shape only (it is authenticated when the payload is opened). */
export function readBackupHeader(bytes: Buffer): { header: BackupHeader; headerEnd: number } {
  if (bytes.length < 4 || !bytes.subarray(0, 4).equals(BACKUP_MAGIC)) {
    throw new BackupError("this file is not a Portcullis backup (it does not start with PCBK); check the file name", "not_backup");
  }
  if (bytes.length < PREFIX_BYTES) throw truncated(bytes.length);
  const format = bytes.readUInt16BE(4);
  if (format > BACKUP_FORMAT_VERSION) {
    throw new BackupError(
      `this backup was written by a newer Portcullis (backup format ${format}; this version reads format ${BACKUP_FORMAT_VERSION}); restore it with that version or a newer one`,
      "newer_format",
    );
  }
  if (format < 1) throw new BackupError(`this backup names format ${format}, which no Portcullis writes; the file is damaged`, "damaged");
  const headerLength = bytes.readUInt32BE(6);
  if (headerLength > MAX_HEADER_BYTES) throw new BackupError("the backup's header is damaged (impossible length)", "damaged");
  const headerEnd = PREFIX_BYTES + headerLength;
  if (bytes.length < headerEnd) throw truncated(bytes.length);
  let header: BackupHeader;
  try {
    header = JSON.parse(bytes.subarray(PREFIX_BYTES, headerEnd).toString("utf8")) as BackupHeader;
  } catch {
    throw new BackupError("the backup's header is damaged (not readable)", "damaged");
  }
  const kdf = header?.kdf;
  const shapeOk =
    header &&
    header.format === format &&
    Array.isArray(header.migrations) &&
    header.migrations.every((m) => typeof m === "string") &&
    kdf?.name === "scrypt" &&
    Number.isInteger(kdf.N) &&
    kdf.N >= 1024 &&
    kdf.N <= 2 ** 20 &&
    (kdf.N & (kdf.N - 1)) === 0 &&
    Number.isInteger(kdf.r) &&
    kdf.r >= 1 &&
    kdf.r <= 32 &&
    Number.isInteger(kdf.p) &&
    kdf.p >= 1 &&
    kdf.p <= 16 &&
    typeof kdf.salt === "string" &&
    header.cipher === "aes-256-gcm" &&
    header.compression === "gzip" &&
    typeof header.iv === "string" &&
    typeof header.keyCheck === "string" &&
    Number.isSafeInteger(header.payloadBytes) &&
    header.payloadBytes >= 0;
  if (!shapeOk) throw new BackupError("the backup's header is damaged (missing or impossible values)", "damaged");
  const expected = headerEnd + header.payloadBytes + TAG_BYTES;
  if (bytes.length < expected) throw truncated(bytes.length, expected);
  if (bytes.length > expected) throw new BackupError(`the backup has ${bytes.length - expected} bytes more than its header announces; the file is damaged`, "damaged");
  return { header, headerEnd };
}

const truncated = (got: number, expected?: number) =>
  new BackupError(
    `the backup file is truncated${expected ? ` (${got} of ${expected} bytes)` : ""}: it was cut off while being written or copied; use a complete copy`,
    "truncated",
  );

/** Checks the passphrase and the file's integrity, and returns what the backup holds. */
export async function openBackup(bytes: Buffer, passphrase: string): Promise<{ header: BackupHeader; payload: BackupPayload; keyring: Keyring }> {
  const { header, headerEnd } = readBackupHeader(bytes);
  const salt = Buffer.from(header.kdf.salt, "base64url");
  const keys = await deriveKeys(passphrase, salt, { N: header.kdf.N, r: header.kdf.r, p: header.kdf.p });
  const check = Buffer.from(header.keyCheck);
  if (check.length !== keys.keyCheck.length || !crypto.timingSafeEqual(Buffer.from(keys.keyCheck), check)) {
    throw new BackupError("the passphrase is not the one this backup was made with; nothing was changed", "passphrase");
  }
  let plaintext: Buffer;
  try {
    const decipher = crypto.createDecipheriv("aes-256-gcm", keys.encryption, Buffer.from(header.iv, "base64url"));
    decipher.setAAD(bytes.subarray(0, headerEnd));
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    plaintext = Buffer.concat([decipher.update(bytes.subarray(headerEnd, bytes.length - TAG_BYTES)), decipher.final()]);
  } catch {
    throw new BackupError("the backup failed its integrity check: the file was altered or damaged after it was written; use another copy", "damaged");
  }
  let payload: BackupPayload;
  try {
    payload = JSON.parse(zlib.gunzipSync(plaintext).toString("utf8")) as BackupPayload;
  } catch {
    throw new BackupError("the backup's contents cannot be read although the file is intact; it was not written by Portcullis", "damaged");
  }
  if (!payload || typeof payload.tables !== "object") throw new BackupError("the backup holds no tables", "damaged");
  return { header, payload, keyring: keys.keyring };
}

let known: Promise<string[]> | undefined;

/** The migrations this build has: those a new, empty database gets. */
export function knownMigrations(): Promise<string[]> {
  known ??= (async () => {
    const { db } = openDatabase({ kind: "sqlite", file: ":memory:" });
    try {
      return (await migrateToLatest(db, "sqlite")).sort();
    } finally {
      await db.destroy();
    }
  })();
  return known;
}

/** Refuses a backup whose schema has migrations this build does not know. */
export async function checkBackupSchema(header: BackupHeader, knownList?: string[]) {
  const known = knownList ?? (await knownMigrations());
  const unknown = header.migrations.filter((m) => !known.includes(m));
  if (unknown.length) {
    throw new BackupError(
      `this backup comes from a newer Portcullis: its database has migrations this version lacks (${unknown.join(", ")}); upgrade Portcullis, then restore`,
      "newer_schema",
    );
  }
}

async function isEmpty(db: Db, tables: string[]): Promise<string[]> {
  const nonEmpty: string[] = [];
  for (const table of tables) {
    // Every process seals a marker at start; it says nothing about the data.
    const filter = table === "settings" ? sql` where ${sql.ref("key")} <> ${SEAL_CHECK_KEY}` : sql``;
    const { rows } = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(table)}${filter}`.execute(db);
    if (Number(rows[0]?.n ?? 0) > 0) nonEmpty.push(table);
  }
  return nonEmpty;
}

/**
 * Restores a backup into `db` (migrated to the latest schema first), re-sealing every secret under
 * `keyring`, in one transaction. Refuses a non-empty database unless `force` (which replaces its data).
 */
export async function restoreBackup(
  db: Db,
  keyring: Keyring,
  bytes: Buffer,
  passphrase: string,
  opts: { force?: boolean; migrate?: (db: Db) => Promise<unknown> } = {},
): Promise<BackupSummary> {
  const { header, payload, keyring: backupKeyring } = await openBackup(bytes, passphrase);
  await checkBackupSchema(header);

  // Re-seal in memory first: a value that does not open stops the restore before anything is written.
  const tables = new Map<string, Record<string, unknown>[]>();
  for (const [table, dump] of Object.entries(payload.tables)) {
    if (!Array.isArray(dump?.columns) || !Array.isArray(dump.rows)) throw new BackupError(`the backup's table ${table} is damaged`, "damaged");
    const rows = dump.rows.map((values) => Object.fromEntries(dump.columns.map((c, i) => [c, values[i]])));
    try {
      for (const row of rows) resealRow(table, row, backupKeyring, keyring);
    } catch (err) {
      if (err instanceof ResealError) throw new BackupError(`the backup holds a sealed value that does not open: ${err.message}`, "unreadable_secret");
      throw err;
    }
    tables.set(table, rows);
  }

  if (opts.migrate) await opts.migrate(db);
  const targetColumns = await tableColumns(db);
  for (const [table, rows] of tables) {
    const columns = targetColumns.get(table);
    if (!columns) throw new BackupError(`the backup has a table this database lacks (${table}); upgrade Portcullis, then restore`, "newer_schema");
    const missing = payload.tables[table].columns.filter((c) => !columns.includes(c));
    if (missing.length && rows.length) {
      throw new BackupError(`the backup's table ${table} has columns this database lacks (${missing.join(", ")}); upgrade Portcullis, then restore`, "newer_schema");
    }
  }

  const order = orderedTables(targetColumns.keys());
  const kind = databaseKind(db);
  await db.transaction().execute(async (trx) => {
    const nonEmpty = await isEmpty(trx, order);
    if (nonEmpty.length && !opts.force) {
      throw new BackupError(
        `the database is not empty (it has rows in ${nonEmpty.join(", ")}); restore into a new database, or add --force to replace everything in it`,
        "not_empty",
      );
    }
    for (const table of [...order].reverse()) await trx.deleteFrom(table as TableName).execute();
    for (const table of order) {
      const rows = tables.get(table);
      if (!rows?.length) continue;
      const width = Object.keys(rows[0]).length || 1;
      // Both engines cap the parameters of one statement (PostgreSQL 65535, SQLite 32766).
      const batch = Math.max(1, Math.floor(30000 / width));
      for (let i = 0; i < rows.length; i += batch) {
        await trx
          .insertInto(table as TableName)
          .values(rows.slice(i, i + batch) as never)
          .execute();
      }
    }
    if (kind === "postgres") await resetSequences(trx, order, targetColumns);
  });

  return {
    engine: header.engine,
    createdAt: header.createdAt,
    migrations: header.migrations,
    tables: Object.fromEntries([...tables].map(([t, rows]) => [t, rows.length])),
    bytes: bytes.length,
  };
}

/** Rows were inserted with their ids: move each id sequence past the highest, or the next insert collides. */
async function resetSequences(db: Db, tables: string[], columns: Map<string, string[]>) {
  for (const table of tables) {
    if (!columns.get(table)?.includes("id")) continue;
    const { rows } = await sql<{ seq: string | null }>`select pg_get_serial_sequence(${table}, 'id') as seq`.execute(db);
    const seq = rows[0]?.seq;
    if (!seq) continue;
    await sql`select setval(${seq}::regclass, coalesce((select max(id) from ${sql.table(table)}), 0) + 1, false)`.execute(db);
  }
}

/** A file name for a download: portcullis-backup-20260101-120000.pcbk */
export function backupFileName(at: Date = new Date()): string {
  const stamp = at.toISOString().replace(/[-:]/g, "").replace("T", "-").slice(0, 15);
  return `portcullis-backup-${stamp}${BACKUP_FILE_EXTENSION}`;
}
