import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { openDatabase, type DatabaseKind, type Db } from "./connection";
import { migrateToLatest } from "./migrate";

// Tests run on SQLite always, and on PostgreSQL when PORTCULLIS_TEST_POSTGRES_URL points at a
// server (npm test sets it; CI requires it). Each test database is new and migrated.

export const POSTGRES_TEST_URL = process.env.PORTCULLIS_TEST_POSTGRES_URL;

export const TEST_ENGINES: DatabaseKind[] = POSTGRES_TEST_URL ? ["sqlite", "postgres"] : ["sqlite"];

export type TestDatabase = { db: Db; kind: DatabaseKind; url: string; destroy: () => Promise<void> };

export async function createTestDatabase(kind: DatabaseKind): Promise<TestDatabase> {
  if (kind === "sqlite") {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-test-"));
    const file = path.join(dir, "test.db");
    const { db } = openDatabase({ kind: "sqlite", file });
    await migrateToLatest(db, "sqlite");
    return {
      db,
      kind,
      url: file,
      destroy: async () => {
        await db.destroy();
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  if (!POSTGRES_TEST_URL) throw new Error("PORTCULLIS_TEST_POSTGRES_URL is not set");
  const name = `portcullis_test_${crypto.randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: POSTGRES_TEST_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  await admin.end();
  const url = new URL(POSTGRES_TEST_URL);
  url.pathname = `/${name}`;
  const { db } = openDatabase({ kind: "postgres", url: url.toString() });
  await migrateToLatest(db, "postgres");
  return {
    db,
    kind,
    url: url.toString(),
    destroy: async () => {
      await db.destroy();
      const cleanup = new pg.Client({ connectionString: POSTGRES_TEST_URL });
      await cleanup.connect();
      await cleanup.query(`drop database if exists ${name} with (force)`);
      await cleanup.end();
    },
  };
}
