import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listAudit } from "../audit";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../db/testing";
import { populateInstallation } from "./backup-fixtures";
import { newKeyring } from "./backup-test-support";
import { openBackup } from "./backup";
import { createBackupDownload } from "./backup-download";

const kdf = { N: 1024, r: 8, p: 1 };

describe.each(TEST_ENGINES)("Settings → Backup download on %s", (kind) => {
  let t: TestDatabase;
  const keyring = newKeyring();
  let actor: { id: string; label: string; role: "admin" };
  beforeAll(async () => {
    t = await createTestDatabase(kind);
    const { admin } = await populateInstallation(t.db, keyring);
    actor = { id: admin.id, label: admin.email, role: "admin" };
  }, 60_000);
  afterAll(async () => t?.destroy());

  it("needs the admin's own password: a wrong one makes no backup and is audited", async () => {
    await expect(createBackupDownload(t.db, keyring, actor, { password: "not my password", passphrase: "a long backup passphrase" }, { kdf })).rejects.toMatchObject({
      code: "validation_failed",
      fieldErrors: { password: ["not your current password"] },
    });
    const [last] = await listAudit(t.db, 1);
    expect(last).toMatchObject({ action: "backup.password_rejected", actor_id: actor.id });
  });

  it("refuses a short passphrase and a body that is not an object, with the field named", async () => {
    await expect(createBackupDownload(t.db, keyring, actor, { password: "correct horse battery", passphrase: "short" }, { kdf })).rejects.toMatchObject({
      code: "validation_failed",
      fieldErrors: { passphrase: ["use at least 12 characters"] },
    });
    await expect(createBackupDownload(t.db, keyring, actor, ["x"], { kdf })).rejects.toMatchObject({ code: "bad_request" });
  });

  it("returns an archive that opens with the passphrase, and audits backup.created", async () => {
    const { bytes, fileName } = await createBackupDownload(t.db, keyring, actor, { password: "correct horse battery", passphrase: "a long backup passphrase" }, { kdf, now: new Date("2026-03-04T05:06:07Z") });
    expect(fileName).toBe("portcullis-backup-20260304-050607.pcbk");
    const { header, payload } = await openBackup(bytes, "a long backup passphrase");
    expect(header.engine).toBe(kind);
    expect(payload.tables.certificates.rows.length).toBe(2);
    const [last] = await listAudit(t.db, 1);
    expect(last).toMatchObject({ action: "backup.created", actor_id: actor.id, target_id: fileName });
  });

  it("locks the download after five wrong passwords in five minutes", async () => {
    const other = await t.db.selectFrom("users").select(["id", "email"]).where("email", "=", "viewer@example.test").executeTakeFirstOrThrow();
    const guesser = { id: other.id, label: other.email, role: "admin" as const };
    for (let i = 0; i < 5; i++) {
      await expect(createBackupDownload(t.db, keyring, guesser, { password: `guess ${i}`, passphrase: "a long backup passphrase" }, { kdf })).rejects.toMatchObject({ code: "validation_failed" });
    }
    await expect(createBackupDownload(t.db, keyring, guesser, { password: "viewer password 1", passphrase: "a long backup passphrase" }, { kdf })).rejects.toMatchObject({
      code: "throttled",
      message: /too many wrong passwords; try again in 5 minutes/,
    });
    // Someone else is not locked out.
    await expect(createBackupDownload(t.db, keyring, actor, { password: "correct horse battery", passphrase: "a long backup passphrase" }, { kdf })).resolves.toMatchObject({ fileName: expect.any(String) });
  });
});
