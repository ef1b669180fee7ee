import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadKeyring } from "../lib/crypto/seal";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../lib/db/testing";
import { populateInstallation } from "../lib/ops/backup-fixtures";
import { snapshot } from "../lib/ops/backup-test-support";
import { runCli as run } from "./test-support";

const PASSPHRASE = "correct horse battery staple";

describe("portcullis backup create / restore", () => {
  let dir: string;
  let source: TestDatabase;
  let sourceEnv: Record<string, string>;
  let expected: Awaited<ReturnType<typeof snapshot>>;
  let archive: string;
  const targets: TestDatabase[] = [];

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-backup-cli-"));
    source = await createTestDatabase("sqlite");
    const sourceDir = path.join(dir, "source");
    sourceEnv = { PORTCULLIS_DATA_DIR: sourceDir, DATABASE_URL: `sqlite:${source.url}`, PORTCULLIS_LOG_LEVEL: "silent" };
    const { keyring } = loadKeyring({ dataDir: sourceDir });
    await populateInstallation(source.db, keyring);
    expected = await snapshot(source.db, keyring);
    archive = path.join(dir, "nightly.pcbk");
  }, 60_000);
  afterAll(async () => {
    await source?.destroy();
    for (const t of targets) await t.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("refuses a passphrase shorter than 12 characters (exit 2) and writes nothing", async () => {
    const short = await run(["backup", "create", "--out", archive], { ...sourceEnv, PORTCULLIS_BACKUP_PASSPHRASE: "too short" });
    expect(short.code).toBe(2);
    expect(short.stderr).toContain("the backup passphrase must be at least 12 characters (got 9 from PORTCULLIS_BACKUP_PASSPHRASE)");
    const none = await run(["backup", "create", "--out", archive], sourceEnv, "");
    expect(none.code).toBe(2);
    expect(fs.existsSync(archive)).toBe(false);
  });

  it("writes the archive (mode 0600, starting with PCBK), with the passphrase from the environment or standard input", async () => {
    const made = await run(["backup", "create", "--out", archive], { ...sourceEnv, PORTCULLIS_BACKUP_PASSPHRASE: PASSPHRASE });
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toMatch(/backup written to .*nightly\.pcbk \(\d+ bytes\): 2 certificates, 3 certificate versions, 1 listeners/);
    const bytes = fs.readFileSync(archive);
    expect(bytes.subarray(0, 4).toString("latin1")).toBe("PCBK");
    expect(fs.statSync(archive).mode & 0o777).toBe(0o600);

    const exists = await run(["backup", "create", "--out", archive], { ...sourceEnv, PORTCULLIS_BACKUP_PASSPHRASE: PASSPHRASE });
    expect(exists.code).toBe(1);
    expect(exists.stderr).toContain("exists; choose another file name, or add --force");

    const second = path.join(dir, "from-stdin.pcbk");
    const piped = await run(["backup", "create", "--out", second, "--json"], sourceEnv, `${PASSPHRASE}\n`);
    expect(piped.code, piped.stderr).toBe(0);
    expect(JSON.parse(piped.stdout)).toMatchObject({ file: second, engine: "sqlite", tables: { certificates: 2 } });
  }, 60_000);

  it.each(TEST_ENGINES)("restores into an empty %s database under a new data directory, then refuses a non-empty one without --force", async (kind) => {
    const t = await createTestDatabase(kind);
    targets.push(t);
    const targetDir = path.join(dir, `target-${kind}`);
    const env = { PORTCULLIS_DATA_DIR: targetDir, DATABASE_URL: kind === "sqlite" ? `sqlite:${t.url}` : t.url, PORTCULLIS_LOG_LEVEL: "silent", PORTCULLIS_BACKUP_PASSPHRASE: PASSPHRASE };
    const restored = await run(["backup", "restore", archive], env);
    expect(restored.code, restored.stderr).toBe(0);
    expect(restored.stdout).toMatch(new RegExp(`restored the backup of .* \\(made on sqlite\\) into ${kind}: \\d+ rows .*every secret is now sealed with this installation's key`));
    expect(restored.stderr).toContain("A new sealing key was generated");
    const { keyring } = loadKeyring({ dataDir: targetDir });
    expect(await snapshot(t.db, keyring)).toEqual(expected);
    // The restored installation works: the CLI opens it with its own key.
    const list = await run(["cert", "list", "--json"], env);
    expect(list.code, list.stderr).toBe(0);
    expect(JSON.parse(list.stdout).map((c: { name: string }) => c.name).sort()).toEqual(["self", "uploaded"]);

    const again = await run(["backup", "restore", archive], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("the database is not empty");
    const forced = await run(["backup", "restore", archive, "--force", "--json"], env);
    expect(forced.code, forced.stderr).toBe(0);
    expect(JSON.parse(forced.stdout)).toMatchObject({ engine: "sqlite", keyId: keyring.current.id });
  }, 60_000);

  it("refuses a wrong passphrase, a truncated or altered file, a missing file and a file that is not a backup", async () => {
    const t = await createTestDatabase("sqlite");
    targets.push(t);
    const env = { PORTCULLIS_DATA_DIR: path.join(dir, "refusals"), DATABASE_URL: `sqlite:${t.url}`, PORTCULLIS_LOG_LEVEL: "silent" };
    const wrong = await run(["backup", "restore", archive], { ...env, PORTCULLIS_BACKUP_PASSPHRASE: "not the right passphrase" });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("portcullis: the passphrase is not the one this backup was made with; nothing was changed");

    const bytes = fs.readFileSync(archive);
    const cut = path.join(dir, "cut.pcbk");
    fs.writeFileSync(cut, bytes.subarray(0, bytes.length - 10));
    const truncated = await run(["backup", "restore", cut], { ...env, PORTCULLIS_BACKUP_PASSPHRASE: PASSPHRASE });
    expect(truncated.code).toBe(1);
    expect(truncated.stderr).toMatch(/the backup file is truncated \(\d+ of \d+ bytes\)/);

    const altered = path.join(dir, "altered.pcbk");
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 40] ^= 0x80;
    fs.writeFileSync(altered, flipped);
    const tampered = await run(["backup", "restore", altered], { ...env, PORTCULLIS_BACKUP_PASSPHRASE: PASSPHRASE });
    expect(tampered.code).toBe(1);
    expect(tampered.stderr).toContain("the backup failed its integrity check");

    const missing = await run(["backup", "restore", path.join(dir, "nope.pcbk")], { ...env, PORTCULLIS_BACKUP_PASSPHRASE: PASSPHRASE });
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain("no file at");

    const notBackup = path.join(dir, "cert.pem");
    fs.writeFileSync(notBackup, "-----BEGIN CERTIFICATE-----\n");
    const refused = await run(["backup", "restore", notBackup], env);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("this file is not a Portcullis backup");

    // Nothing was written by any of them.
    const counts = await t.db.selectFrom("certificates").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow();
    expect(Number(counts.n)).toBe(0);
  }, 60_000);
});
