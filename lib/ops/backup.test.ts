import { sql } from "kysely";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelopeKeyId } from "../crypto/seal";
import { createTestDatabase, POSTGRES_TEST_URL, TEST_ENGINES, type TestDatabase } from "../db/testing";
import { recordEvent } from "../events";
import { writeAudit, SYSTEM_ACTOR } from "../audit";
import { populateInstallation } from "./backup-fixtures";
import { allEnvelopes, newKeyring, rowCounts, snapshot } from "./backup-test-support";
import { BACKUP_MAGIC, BackupError, createBackup, readBackupHeader, restoreBackup, type KdfParams } from "./backup";

// A cheap KDF keeps the suite fast; the default parameters are exercised by the CLI tests.
const kdf: KdfParams = { N: 1024, r: 8, p: 1 };
const PASSPHRASE = "a long backup passphrase";

describe("backup and restore", () => {
  let source: TestDatabase;
  const sourceKeyring = newKeyring();
  let archive: Buffer;
  let expected: Awaited<ReturnType<typeof snapshot>>;
  const targets: TestDatabase[] = [];

  beforeAll(async () => {
    source = await createTestDatabase("sqlite");
    await populateInstallation(source.db, sourceKeyring);
    ({ bytes: archive } = await createBackup(source.db, sourceKeyring, PASSPHRASE, { kdf }));
    expected = await snapshot(source.db, sourceKeyring);
  }, 60_000);
  afterAll(async () => {
    await source?.destroy();
    for (const t of targets) await t.destroy();
  });

  async function target(kind: "sqlite" | "postgres") {
    const t = await createTestDatabase(kind);
    targets.push(t);
    return t;
  }

  it("writes a self-describing archive with no secret in the clear", () => {
    expect(archive.subarray(0, 4).equals(BACKUP_MAGIC)).toBe(true);
    const { header } = readBackupHeader(archive);
    expect(header).toMatchObject({ format: 1, engine: "sqlite", cipher: "aes-256-gcm", compression: "gzip", kdf: { name: "scrypt", N: 1024, r: 8, p: 1 } });
    expect(header.migrations).toContain("0001_foundation");
    expect(header.migrations).toContain("0005_operations");
    expect(archive.includes(Buffer.from("PRIVATE KEY"))).toBe(false);
    expect(archive.includes(Buffer.from("admin@example.test"))).toBe(false);
    expect(expected.certificate_versions.length).toBe(3);
    expect(expected.settings.some((s) => s.key === "tls.local_ca" && String(s.value).includes("opened:"))).toBe(true);
  });

  it.each(TEST_ENGINES)("restores a SQLite backup into %s: every row equal, every sealed value opens to the same plaintext under the new key", async (kind) => {
    const t = await target(kind);
    const keyring = newKeyring();
    const summary = await restoreBackup(t.db, keyring, archive, PASSPHRASE);
    expect(summary.tables.certificates).toBe(2);
    expect(await snapshot(t.db, keyring)).toEqual(expected);
    const envelopes = await allEnvelopes(t.db);
    expect(envelopes.length).toBeGreaterThanOrEqual(12);
    for (const e of envelopes) expect(envelopeKeyId(e.envelope), `${e.table}.${e.column}`).toBe(keyring.current.id);
    // Ids that the database generates carry on after the restored ones (PostgreSQL sequences were moved).
    const lastEvent = Math.max(...expected.events.map((e) => Number(e.id)));
    expect(await recordEvent(t.db, { type: "after.restore", message: "new" })).toBeGreaterThan(lastEvent);
    await writeAudit(t.db, SYSTEM_ACTOR, "after.restore");
  });

  it.runIf(POSTGRES_TEST_URL)("restores a PostgreSQL backup into SQLite", async () => {
    const pg = await target("postgres");
    const pgKeyring = newKeyring();
    await restoreBackup(pg.db, pgKeyring, archive, PASSPHRASE);
    const { bytes, summary } = await createBackup(pg.db, pgKeyring, "another passphrase!", { kdf });
    expect(summary.engine).toBe("postgres");
    const back = await target("sqlite");
    const keyring = newKeyring();
    await restoreBackup(back.db, keyring, bytes, "another passphrase!");
    expect(await snapshot(back.db, keyring)).toEqual(expected);
  });

  describe("refusals change nothing", () => {
    let t: TestDatabase;
    const keyring = newKeyring();
    beforeAll(async () => {
      t = await target("sqlite");
    });

    async function refused(bytes: Buffer, passphrase: string, reason: string, message: RegExp) {
      const before = await rowCounts(t.db);
      const err = await restoreBackup(t.db, keyring, bytes, passphrase).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BackupError);
      expect((err as BackupError).reason).toBe(reason);
      expect((err as BackupError).message).toMatch(message);
      expect(await rowCounts(t.db)).toEqual(before);
    }

    it("a wrong passphrase", () => refused(archive, "not the passphrase", "passphrase", /passphrase is not the one this backup was made with/));

    it("a truncated file", async () => {
      await refused(archive.subarray(0, archive.length - 100), PASSPHRASE, "truncated", /truncated \(\d+ of \d+ bytes\)/);
      await refused(archive.subarray(0, 8), PASSPHRASE, "truncated", /truncated/);
    });

    it("a flipped byte in the payload, in the tag and in the header", async () => {
      for (const at of [archive.length - 200, archive.length - 1]) {
        const bytes = Buffer.from(archive);
        bytes[at] ^= 0x01;
        await refused(bytes, PASSPHRASE, "damaged", /integrity check/);
      }
      // The header is authenticated too: "engine":"sqlite" → "engine":"sqlitf".
      const text = archive.toString("latin1").replace('"engine":"sqlite"', '"engine":"sqlitf"');
      await refused(Buffer.from(text, "latin1"), PASSPHRASE, "damaged", /integrity check/);
    });

    it("a file that is not a backup", () => refused(Buffer.from("-----BEGIN CERTIFICATE-----\n"), PASSPHRASE, "not_backup", /not a Portcullis backup/));

    it("a newer format version", async () => {
      const bytes = Buffer.from(archive);
      bytes.writeUInt16BE(2, 4);
      await refused(bytes, PASSPHRASE, "newer_format", /newer Portcullis \(backup format 2; this version reads format 1\)/);
    });

    it("a backup from a newer schema", async () => {
      const future = await target("sqlite");
      await sql`insert into kysely_migration (name, timestamp) values ('9999_future', '2030-01-01T00:00:00.000Z')`.execute(future.db);
      const { bytes } = await createBackup(future.db, keyring, PASSPHRASE, { kdf });
      await refused(bytes, PASSPHRASE, "newer_schema", /migrations this version lacks \(9999_future\)/);
    });

    it("a non-empty database without force; with force its data is replaced", async () => {
      await restoreBackup(t.db, keyring, archive, PASSPHRASE);
      await recordEvent(t.db, { type: "local.only", message: "written after the restore" });
      await refused(archive, PASSPHRASE, "not_empty", /the database is not empty \(it has rows in users, api_tokens/);
      await restoreBackup(t.db, keyring, archive, PASSPHRASE, { force: true });
      expect(await snapshot(t.db, keyring)).toEqual(expected);
    });
  });

  it("refuses a passphrase shorter than 12 characters", async () => {
    await expect(createBackup(source.db, sourceKeyring, "short", { kdf })).rejects.toMatchObject({ code: "validation_failed", message: /at least 12 characters/ });
  });

  it("stops when a sealed value of the installation does not open (wrong key)", async () => {
    await expect(createBackup(source.db, newKeyring(), PASSPHRASE, { kdf })).rejects.toThrow(/cannot be opened|does not have/);
  });
});
