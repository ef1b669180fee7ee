import fs from "node:fs";
import path from "node:path";
import SQLite from "better-sqlite3";
import { Kysely, PostgresAdapter, PostgresDialect, SqliteDialect, SqliteDriver, type DatabaseConnection } from "kysely";
import pg from "pg";
import type { Config } from "../config";
import type { Database } from "./schema";

export type DatabaseKind = "sqlite" | "postgres";
export type Db = Kysely<Database>;

// Which engine and server a Db talks to, for code that must differ (LISTEN/NOTIFY). Keyed by the
// dialect adapter, which a Kysely instance shares with its transactions; on globalThis so that
// Next's bundle and the server/worker sources, which load this module separately, agree.
const registry = ((globalThis as { __portcullisDbRegistry?: WeakMap<object, Config["database"]> }).__portcullisDbRegistry ??= new WeakMap());
const registered = (db: Db) => registry.get(db.getExecutor().adapter);

/** The engine of a database or of a transaction on one. */
export function databaseKind(db: Db): DatabaseKind {
  const known = registered(db);
  if (known) return known.kind;
  return db.getExecutor().adapter instanceof PostgresAdapter ? "postgres" : "sqlite";
}

/** Where a database opened by openDatabase lives (the SQLite file, or the PostgreSQL URL). */
export const databaseOf = (db: Db): Config["database"] | undefined => registered(db);

/** Where a PostgreSQL database opened by openDatabase lives, for a dedicated (LISTEN) connection. */
export function postgresUrl(db: Db): string | undefined {
  const known = registered(db);
  return known?.kind === "postgres" ? known.url : undefined;
}

export function openDatabase(database: Config["database"]): { db: Db; kind: DatabaseKind } {
  if (database.kind === "postgres") {
    const pool = new pg.Pool({ connectionString: database.url, max: 10, connectionTimeoutMillis: 5000 });
    // A client losing its server must not crash the process: idle ones report to the pool, and a
    // checked-out one between two queries reports to itself. The query in flight still fails, the
    // broken client is discarded on release, and the next query reconnects.
    pool.on("error", () => {});
    pool.on("connect", (client) => client.on("error", () => {}));
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    registry.set(db.getExecutor().adapter, database);
    return { db, kind: "postgres" };
  }
  fs.mkdirSync(path.dirname(database.file), { recursive: true });
  const sqlite = new SQLite(database.file, { timeout: 10_000 });
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("foreign_keys = ON");
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("busy_timeout = 10000");
  const db = new Kysely<Database>({ dialect: new SqliteDialectWithAutoRollback(sqlite) });
  registry.set(db.getExecutor().adapter, database);
  return { db, kind: "sqlite" };
}

/**
 * SQLite rolls a transaction back by itself when a statement in it fails with SQLITE_FULL, SQLITE_IOERR,
 * SQLITE_BUSY or SQLITE_NOMEM. Kysely then sends ROLLBACK anyway, which fails with "no transaction is
 * active" and is thrown in place of the real error: a full disk would read as a bug. Here ROLLBACK (and
 * ROLLBACK TO a savepoint) is skipped when SQLite has already ended the transaction.
 */
class SqliteDialectWithAutoRollback extends SqliteDialect {
  constructor(private readonly sqlite: SQLite.Database) {
    super({ database: sqlite });
  }

  override createDriver() {
    const sqlite = this.sqlite;
    return new (class extends SqliteDriver {
      override async rollbackTransaction(connection: DatabaseConnection) {
        if (sqlite.inTransaction) await super.rollbackTransaction(connection);
      }
      override async rollbackToSavepoint(...args: Parameters<SqliteDriver["rollbackToSavepoint"]>) {
        if (sqlite.inTransaction) await super.rollbackToSavepoint(...args);
      }
    })({ database: sqlite });
  }
}

/** A friendly description of where the data lives, for start-up logs (never the password). */
export function describeDatabase(database: Config["database"]): string {
  if (database.kind === "sqlite") return `SQLite ${database.file}`;
  try {
    const url = new URL(database.url);
    return `PostgreSQL ${url.hostname}:${url.port || 5432}${url.pathname}`;
  } catch {
    return "PostgreSQL";
  }
}

/** A unique-constraint violation, on either engine: the loser of a race to insert the same row. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string } | null;
  return e?.code === "23505" || e?.code === "SQLITE_CONSTRAINT_UNIQUE" || e?.code === "SQLITE_CONSTRAINT_PRIMARYKEY";
}

/**
 * Runs reads that must agree with each other in one snapshot of the database, even while other processes
 * write: PostgreSQL at repeatable read (read committed takes a new snapshot for every statement), SQLite in
 * one transaction (WAL keeps a reader on the snapshot of its first read).
 */
export function readSnapshot<T>(db: Db, read: (trx: Db) => Promise<T>): Promise<T> {
  const transaction = databaseKind(db) === "postgres" ? db.transaction().setIsolationLevel("repeatable read") : db.transaction();
  return transaction.execute(read);
}
