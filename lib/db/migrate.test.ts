import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { sql } from "kysely";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { openDatabase } from "./connection";
import { POSTGRES_TEST_URL, TEST_ENGINES } from "./testing";

const root = path.resolve(import.meta.dirname, "../..");

function runMigrate(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(root, "bin/portcullis.mjs"), "migrate"], {
      env: { PATH: process.env.PATH ?? "", ...env } as unknown as NodeJS.ProcessEnv,
    });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("exit", (code) => resolve({ code, output }));
  });
}

describe.each(TEST_ENGINES)("migrations on %s", (kind) => {
  it("are safe when several processes start at the same moment", async () => {
    let url: string;
    let cleanup: () => Promise<void>;
    if (kind === "sqlite") {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-migrate-"));
      url = `sqlite:${path.join(dir, "race.db")}`;
      cleanup = async () => fs.rmSync(dir, { recursive: true, force: true });
    } else {
      const name = `portcullis_race_${crypto.randomBytes(5).toString("hex")}`;
      const admin = new pg.Client({ connectionString: POSTGRES_TEST_URL });
      await admin.connect();
      await admin.query(`create database ${name}`);
      await admin.end();
      const u = new URL(POSTGRES_TEST_URL!);
      u.pathname = `/${name}`;
      url = u.toString();
      cleanup = async () => {
        const c = new pg.Client({ connectionString: POSTGRES_TEST_URL });
        await c.connect();
        await c.query(`drop database if exists ${name} with (force)`);
        await c.end();
      };
    }
    try {
      const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-migrate-data-"));
      const results = await Promise.all([1, 2, 3].map(() => runMigrate({ DATABASE_URL: url, PORTCULLIS_DATA_DIR: dataDir })));
      for (const r of results) expect(r.code, r.output).toBe(0);
      expect(results.filter((r) => r.output.includes("applied: 0001_foundation, 0002_listeners, 0003_acme, 0004_dns, 0005_operations, 0006_upstream_tls"))).toHaveLength(1);

      const { db } = openDatabase(kind === "sqlite" ? { kind, file: url.slice("sqlite:".length) } : { kind, url });
      try {
        const applied = await sql<{ name: string }>`select name from kysely_migration`.execute(db);
        expect(applied.rows.map((r) => r.name)).toEqual(["0001_foundation", "0002_listeners", "0003_acme", "0004_dns", "0005_operations", "0006_upstream_tls"]);
        for (const table of ["users", "api_tokens", "audit_log", "settings", "certificates", "certificate_versions", "events", "listeners", "certificate_mappings", "acme_challenges", "listener_checks", "dns_credentials", "dns_records", "dns_tests"] as const) {
          await expect(sql`select count(*) from ${sql.table(table)}`.execute(db)).resolves.toBeTruthy();
        }
      } finally {
        await db.destroy();
      }
      fs.rmSync(dataDir, { recursive: true, force: true });
    } finally {
      await cleanup();
    }
  }, 60_000);
});
