import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import SQLite from "better-sqlite3";
import { sql } from "kysely";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { POST } from "../app/api/v1/certificates/route";
import { SYSTEM_ACTOR } from "../lib/audit";
import { setDatabase } from "../lib/db";
import { storageFailure } from "../lib/db/failure";
import { createTestDatabase, POSTGRES_TEST_URL, type TestDatabase } from "../lib/db/testing";
import { findFreePort } from "../lib/net";
import { createApiToken } from "../lib/tokens";
import { createUser } from "../lib/users";

// The storage under Portcullis failing is not the user's fault, but it is the operator's to fix: a full disk,
// a locked or read-only SQLite file, a PostgreSQL server that is down each get words that say so (never
// "something went wrong", never a stack), and nothing half-written is left behind.

const root = path.resolve(import.meta.dirname, "..");

/** The error fn throws (undefined if it does not). */
function thrown(fn: () => unknown): (Error & { code?: string; path?: string }) | undefined {
  try {
    fn();
  } catch (err) {
    return err as Error & { code?: string; path?: string };
  }
  return undefined;
}
let dataDir: string;

beforeAll(() => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-storage-"));
  process.env.PORTCULLIS_DATA_DIR = dataDir;
  process.env.PORTCULLIS_SECRET = "storage failure test secret, 32+ characters";
  process.env.PORTCULLIS_LOG_LEVEL = "silent";
});
afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

describe("a full disk under SQLite", () => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase("sqlite");
    setDatabase({ db: t.db, kind: "sqlite" });
  });
  afterAll(async () => {
    setDatabase(undefined);
    await t.destroy();
  });

  it("answers POST /api/v1/certificates with 507 and what to do, saves nothing, and works again once there is room", async () => {
    const admin = await createUser(t.db, SYSTEM_ACTOR, { email: "ops@example.test", password: "a long password", role: "admin" });
    const { token } = await createApiToken(t.db, SYSTEM_ACTOR, { userId: admin.id, name: "disk" });
    const create = (name: string) =>
      POST(
        new Request("https://console.test/api/v1/certificates", {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          // 90 names: the row outgrows any page's free space, so it needs pages the disk no longer has.
          body: JSON.stringify({ source: "self_signed", name, domains: Array.from({ length: 90 }, (_, i) => `host-${i}.${name}.example.test`) }),
        }),
        { params: Promise.resolve({}) },
      );
    const rows = async () => ({
      certificates: Number((await t.db.selectFrom("certificates").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow()).n),
      versions: Number((await t.db.selectFrom("certificate_versions").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow()).n),
    });
    expect((await create("first")).status).toBe(201);
    const before = await rows();

    // The disk is full: SQLite may not grow the file past the pages it has (SQLITE_FULL, as on a full disk).
    await sql`pragma max_page_count = 1`.execute(t.db);
    const full = await create("second");
    expect(full.status).toBe(507);
    const { error } = await full.json();
    expect(error.code).toBe("insufficient_storage");
    expect(error.message).toMatch(/^the disk that holds Portcullis's database \(.+\) is full, so the change could not be written: free some space on it, then try again$/);
    expect(await rows()).toEqual(before);

    await sql`pragma max_page_count = 1073741823`.execute(t.db);
    expect((await create("second")).status).toBe(201);
    expect((await rows()).certificates).toBe(before.certificates + 1);
  });
});

describe("storageFailure", () => {
  it("says a locked SQLite database is busy, and a read-only one is read-only", async () => {
    const file = path.join(dataDir, "locked.db");
    const holder = new SQLite(file);
    holder.exec("create table t (x)");
    const other = new SQLite(file, { timeout: 0 });
    const readonly = new SQLite(file, { readonly: true });
    holder.exec("begin immediate");
    const busy = thrown(() => other.exec("insert into t values (1)"));
    holder.exec("rollback");
    expect(busy?.code).toMatch(/^SQLITE_BUSY/);
    expect(storageFailure(busy)).toMatchObject({ code: "unavailable", status: 503, message: expect.stringContaining("the database is busy") });
    const denied = thrown(() => readonly.exec("insert into t values (1)"));
    expect(denied?.code).toMatch(/^SQLITE_READONLY/);
    expect(storageFailure(denied, { kind: "sqlite", file })?.message).toBe(
      `the database (${file}) is read-only for this process: check that the file and its directory are writable by the user Portcullis runs as`,
    );
    for (const db of [holder, other, readonly]) db.close();
  });

  it("says PostgreSQL cannot be reached when the connection to DATABASE_URL is refused, and only then", async () => {
    const port = await findFreePort();
    const database = { kind: "postgres" as const, url: `postgres://postgres@127.0.0.1:${port}/portcullis` };
    const client = new pg.Client({ connectionString: database.url });
    const refused = await client.connect().then(
      () => undefined,
      (err: unknown) => err,
    );
    expect((refused as { code?: string }).code).toBe("ECONNREFUSED");
    expect(storageFailure(refused, database)).toMatchObject({ code: "unavailable", message: expect.stringContaining("the database cannot be reached") });
    // The same refusal from anything else (a CA, a webhook's receiver) is not the database's.
    expect(storageFailure(refused, { kind: "postgres", url: `postgres://postgres@127.0.0.1:${port + 1}/portcullis` })).toBeUndefined();
    expect(storageFailure(refused, { kind: "sqlite", file: "/tmp/x.db" })).toBeUndefined();
    // PostgreSQL's own codes for a full disk (disk_full) and a server shutting down.
    expect(storageFailure(Object.assign(new Error("could not extend file: No space left on device"), { code: "53100" }), database)?.status).toBe(507);
    expect(storageFailure(Object.assign(new Error("terminating connection due to administrator command"), { code: "57P01" }), database)?.status).toBe(503);
    expect(storageFailure(new Error("duplicate key value"), database)).toBeUndefined();
  });

  it("says the disk is full when a write of this process's own (a backup, say) finds it so, naming the file when it is known", async () => {
    // /dev/full answers every write with ENOSPC, as a full disk does (written through a descriptor: never replaced).
    const fd = fs.openSync("/dev/full", "w");
    const full = thrown(() => fs.writeSync(fd, "backup bytes"));
    fs.closeSync(fd);
    expect(full?.code).toBe("ENOSPC");
    expect(storageFailure(full)).toMatchObject({ status: 507, message: "there is no space left on the disk: free some space on it, then try again" });
    full!.path = "/backups/portcullis.pcbk"; // what the backup command adds before it reports the error
    expect(storageFailure(full)?.message).toBe("there is no space left on the disk that holds /backups/portcullis.pcbk: free some space on it, then try again");
  });

  it.skipIf(!POSTGRES_TEST_URL)("turns PostgreSQL's refusal of a missing database into nothing: that is a configuration error with its own words", async () => {
    const url = new URL(POSTGRES_TEST_URL!);
    url.pathname = "/portcullis_no_such_database";
    const client = new pg.Client({ connectionString: url.toString() });
    const err = await client.connect().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as { code?: string }).code).toBe("3D000");
    expect(storageFailure(err, { kind: "postgres", url: url.toString() })).toBeUndefined();
  });
});

describe("the CLI with PostgreSQL down", () => {
  it("says at once that the database cannot be reached and what to check, with exit code 1 and no stack", async () => {
    const port = await findFreePort();
    const started = Date.now();
    const result = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, [path.join(root, "bin/portcullis.mjs"), "cert", "list"], {
        env: { PATH: process.env.PATH ?? "", DATABASE_URL: `postgres://postgres@127.0.0.1:${port}/portcullis`, PORTCULLIS_SECRET: "storage failure test secret, 32+ characters", PORTCULLIS_LOG_LEVEL: "silent" } as unknown as NodeJS.ProcessEnv,
      });
      let stderr = "";
      child.stderr.on("data", (d) => (stderr += d));
      child.on("exit", (code) => resolve({ code, stderr }));
    });
    // Not the console's and the worker's wait (about 20 s) for a server that may be starting.
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `portcullis: database migration failed: the database cannot be reached: check that PostgreSQL is running and that DATABASE_URL points at it, then try again (connect ECONNREFUSED 127.0.0.1:${port})\n`,
    );
  }, 60_000);
});
