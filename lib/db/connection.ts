import fs from "node:fs";
import path from "node:path";
import SQLite from "better-sqlite3";
import { Kysely, PostgresDialect, SqliteDialect } from "kysely";
import pg from "pg";
import type { Config } from "../config";
import type { Database } from "./schema";

export type DatabaseKind = "sqlite" | "postgres";
export type Db = Kysely<Database>;

export function openDatabase(database: Config["database"]): { db: Db; kind: DatabaseKind } {
  if (database.kind === "postgres") {
    const pool = new pg.Pool({ connectionString: database.url, max: 10, connectionTimeoutMillis: 5000 });
    // An idle client losing its server must not crash the process; the next query reconnects.
    pool.on("error", () => {});
    return { db: new Kysely<Database>({ dialect: new PostgresDialect({ pool }) }), kind: "postgres" };
  }
  fs.mkdirSync(path.dirname(database.file), { recursive: true });
  const sqlite = new SQLite(database.file, { timeout: 10_000 });
  sqlite.pragma("journal_mode = WAL");
  sqlite.pragma("foreign_keys = ON");
  sqlite.pragma("synchronous = NORMAL");
  sqlite.pragma("busy_timeout = 10000");
  return { db: new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) }), kind: "sqlite" };
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
