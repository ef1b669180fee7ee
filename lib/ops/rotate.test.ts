import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { envelopeKeyId, Keyring, loadKeyring, sealingKeyFromBytes, sealingKeyFromSecret } from "../crypto/seal";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../db/testing";
import { verifySealingKey } from "../runtime";
import { populateInstallation } from "./backup-fixtures";
import { allEnvelopes, snapshot } from "./backup-test-support";
import { rotateSealingKey } from "./rotate";
import { runCli } from "../../cli/test-support";

const keyIdOfFile = (file: string) => sealingKeyFromBytes(Buffer.from(fs.readFileSync(file, "utf8").trim(), "base64")).id;
const mode = (file: string) => fs.statSync(file).mode & 0o777;

/** The database's rows with sealed values opened, without the audit entries the CLI adds. */
async function opened(t: TestDatabase, keyring: Keyring) {
  const rows = await snapshot(t.db, keyring);
  rows.audit_log = rows.audit_log.filter((r) => r.action !== "secret.rotated");
  return rows;
}

async function keyIdsInUse(t: TestDatabase): Promise<string[]> {
  return [...new Set((await allEnvelopes(t.db)).map((e) => envelopeKeyId(e.envelope)!))];
}

describe.each(TEST_ENGINES)("sealing-key rotation on %s", (kind) => {
  let t: TestDatabase;
  let dataDir: string;
  let env: Record<string, string>;
  let keyring: Keyring;
  let expected: Awaited<ReturnType<typeof snapshot>>;
  const file = (name: string) => path.join(dataDir, name);

  beforeEach(async () => {
    t = await createTestDatabase(kind);
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-rotate-"));
    env = { PORTCULLIS_DATA_DIR: dataDir, DATABASE_URL: kind === "sqlite" ? `sqlite:${t.url}` : t.url, PORTCULLIS_LOG_LEVEL: "silent" };
    keyring = loadKeyring({ dataDir }).keyring;
    await populateInstallation(t.db, keyring);
    expected = await snapshot(t.db, keyring);
  }, 60_000);
  afterEach(async () => {
    await t.destroy();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("re-seals everything under a new key file, keeps the old one, and a process started before follows by itself", async () => {
    const oldId = keyIdOfFile(file("secret.key"));
    const oldOnly = new Keyring(keyring.current);
    const result = await rotateSealingKey(t.db, { dataDir });
    const newId = keyIdOfFile(file("secret.key"));
    expect(newId).not.toBe(oldId);
    expect(result).toMatchObject({ mode: "data_dir", keyId: newId, previousKeyIds: [oldId], resumed: false });
    expect(result.rows).toBeGreaterThanOrEqual(12);
    expect(fs.existsSync(file("secret.key.next"))).toBe(false);
    expect(keyIdOfFile(file("secret.key.previous"))).toBe(oldId);
    expect(mode(file("secret.key"))).toBe(0o600);
    expect(mode(file("secret.key.previous"))).toBe(0o600);
    expect(await keyIdsInUse(t)).toEqual([newId]);
    // The old key alone opens nothing any more: the values really were re-sealed.
    const [first] = await allEnvelopes(t.db);
    expect(() => oldOnly.open(first.envelope, "x")).toThrow(/does not have/);

    // `keyring` was loaded before the rotation (a running console): it reads the new key lazily.
    expect(keyring.current.id).toBe(oldId);
    expect(await opened(t, keyring)).toEqual(expected);
    expect(envelopeKeyId(keyring.seal("new value", "c"))).toBe(newId);
    // A process started now has the new key and the previous one.
    const fresh = loadKeyring({ dataDir }).keyring;
    expect(fresh.current.id).toBe(newId);
    expect(fresh.keyIds()).toEqual([newId, oldId]);
    await verifySealingKey(t.db, fresh);
  });

  it("killed inside the transaction: nothing changed, everything opens, and running it again finishes", async () => {
    const oldId = keyIdOfFile(file("secret.key"));
    const killed = await runCli(["secret", "rotate"], { ...env, PORTCULLIS_TEST_ROTATION_HOOK: "kill-after-rows:3" });
    expect(killed.signal, killed.stderr).toBe("SIGKILL");
    const nextId = keyIdOfFile(file("secret.key.next"));
    expect(keyIdOfFile(file("secret.key"))).toBe(oldId);
    expect(await keyIdsInUse(t)).toEqual([oldId]);
    const fresh = loadKeyring({ dataDir }).keyring;
    expect(await opened(t, fresh)).toEqual(expected);
    await verifySealingKey(t.db, fresh);

    const again = await runCli(["secret", "rotate"], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/finished the interrupted rotation: re-sealed \d+ secrets in \d+ rows under key/);
    expect(keyIdOfFile(file("secret.key"))).toBe(nextId);
    expect(keyIdOfFile(file("secret.key.previous"))).toBe(oldId);
    expect(fs.existsSync(file("secret.key.next"))).toBe(false);
    expect(await keyIdsInUse(t)).toEqual([nextId]);
    expect(await opened(t, loadKeyring({ dataDir }).keyring)).toEqual(expected);
  }, 60_000);

  it("killed after the commit, before the key files are renamed: everything opens, and running it again finishes", async () => {
    const oldId = keyIdOfFile(file("secret.key"));
    const killed = await runCli(["secret", "rotate"], { ...env, PORTCULLIS_TEST_ROTATION_HOOK: "kill-after-commit" });
    expect(killed.signal, killed.stderr).toBe("SIGKILL");
    const nextId = keyIdOfFile(file("secret.key.next"));
    expect(keyIdOfFile(file("secret.key"))).toBe(oldId);
    expect(await keyIdsInUse(t)).toEqual([nextId]);
    const fresh = loadKeyring({ dataDir }).keyring;
    expect(await opened(t, fresh)).toEqual(expected);
    await verifySealingKey(t.db, fresh);
    // A console started in between still seals with secret.key; the next run re-seals that too.
    await t.db.updateTable("dns_credentials").set({ sealed_token: fresh.seal("cf-token-0123456789abcdefghijklmnopqrstuv", `dns-credential-token:${String(expected.dns_credentials[0].id)}`) }).execute();
    expect(await keyIdsInUse(t)).toEqual(expect.arrayContaining([oldId, nextId]));

    const again = await runCli(["secret", "rotate", "--json"], env);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ mode: "data_dir", keyId: nextId, resumed: true });
    expect(keyIdOfFile(file("secret.key"))).toBe(nextId);
    expect(await keyIdsInUse(t)).toEqual([nextId]);
    expect(await opened(t, loadKeyring({ dataDir }).keyring)).toEqual(expected);
  }, 60_000);
});

describe.each(TEST_ENGINES)("PORTCULLIS_SECRET rotation on %s", (kind) => {
  it("re-seals under the new PORTCULLIS_SECRET with the old one in PORTCULLIS_SECRET_PREVIOUS", async () => {
    const t = await createTestDatabase(kind);
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-rotate-"));
    try {
      const oldSecret = "the old secret is at least 32 characters long";
      const newSecret = "the new secret is at least 32 characters long";
      const before = loadKeyring({ secret: oldSecret, dataDir }).keyring;
      await populateInstallation(t.db, before);
      const expected = await opened(t, before);
      const env = { PORTCULLIS_DATA_DIR: dataDir, DATABASE_URL: kind === "sqlite" ? `sqlite:${t.url}` : t.url, PORTCULLIS_LOG_LEVEL: "silent" };

      // The new secret alone cannot start: the database is sealed with the old one.
      const refused = await runCli(["secret", "rotate"], { ...env, PORTCULLIS_SECRET: newSecret });
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain("sealed with a different key");

      const rotated = await runCli(["secret", "rotate"], { ...env, PORTCULLIS_SECRET: newSecret, PORTCULLIS_SECRET_PREVIOUS: oldSecret });
      expect(rotated.code, rotated.stderr).toBe(0);
      expect(rotated.stdout).toContain("Remove PORTCULLIS_SECRET_PREVIOUS");
      const after = new Keyring(sealingKeyFromSecret(newSecret));
      expect(await keyIdsInUse(t)).toEqual([after.current.id]);
      expect(await opened(t, after)).toEqual(expected);
      expect(fs.existsSync(path.join(dataDir, "secret.key"))).toBe(false);
    } finally {
      await t.destroy();
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
