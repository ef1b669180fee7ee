import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "./db/testing";
import { SYSTEM_ACTOR } from "./audit";
import { AppError } from "./errors";
import { authenticateApiToken, createApiToken, listApiTokens, revokeApiToken } from "./tokens";
import { completeSetup, countUsers, createUser, ensureAdminFromEnvironment, issueSetupToken, isSetupTokenValid, signIn, THROTTLE } from "./users";

describe.each(TEST_ENGINES)("users, sign-in and tokens on %s", (kind) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it("creates the first admin through a one-time setup token, once", async () => {
    expect(await countUsers(t.db)).toBe(0);
    const token = await issueSetupToken(t.db);
    expect(await isSetupTokenValid(t.db, "wrong")).toBe(false);
    await expect(completeSetup(t.db, { token: "wrong", email: "a@example.test", password: "long enough pw" })).rejects.toMatchObject({ code: "forbidden" });
    expect(await countUsers(t.db)).toBe(0);
    const user = await completeSetup(t.db, { token, email: " Admin@Example.TEST ", password: "long enough pw" });
    expect(user).toMatchObject({ email: "admin@example.test", role: "admin" });
    expect(await isSetupTokenValid(t.db, token)).toBe(false);
    await expect(completeSetup(t.db, { token, email: "b@example.test", password: "long enough pw" })).rejects.toBeInstanceOf(AppError);
    expect(await ensureAdminFromEnvironment(t.db, { email: "env@example.test", password: "long enough pw" })).toBeUndefined();
    expect(await countUsers(t.db)).toBe(1);
  });

  it("creates the environment's admin once when processes race to do it", async () => {
    const other = await createTestDatabase(kind);
    try {
      const admin = { email: "race@example.test", password: "long enough pw" };
      const results = await Promise.all([1, 2, 3, 4].map(() => ensureAdminFromEnvironment(other.db, admin)));
      expect(results.filter(Boolean)).toHaveLength(1);
      expect(await countUsers(other.db)).toBe(1);
    } finally {
      await other.destroy();
    }
  });

  it("stores scrypt hashes, never the password", async () => {
    await createUser(t.db, SYSTEM_ACTOR, { email: "hash@example.test", password: "correct horse", role: "viewer" });
    const row = await t.db.selectFrom("users").select("password_hash").where("email", "=", "hash@example.test").executeTakeFirstOrThrow();
    expect(row.password_hash).toMatch(/^scrypt\$16384\$8\$1\$/);
    expect(row.password_hash).not.toContain("correct horse");
  });

  it("refuses bad users with per-field messages", async () => {
    const err = (await createUser(t.db, SYSTEM_ACTOR, { email: "not-an-email", password: "short", role: "root" as "admin" }).catch((e) => e)) as AppError;
    expect(Object.keys(err.fieldErrors ?? {}).sort()).toEqual(["email", "password", "role"]);
    const dup = (await createUser(t.db, SYSTEM_ACTOR, { email: "HASH@example.test", password: "long enough pw", role: "admin" }).catch((e) => e)) as AppError;
    expect(dup.code).toBe("conflict");
  });

  it("signs in with the right password only", async () => {
    await createUser(t.db, SYSTEM_ACTOR, { email: "sign@example.test", password: "right password", role: "admin" });
    expect(await signIn(t.db, { email: "sign@example.test", password: "right password", ip: "192.0.2.1" })).toMatchObject({ ok: true });
    expect(await signIn(t.db, { email: "sign@example.test", password: "wrong password", ip: "192.0.2.1" })).toEqual({ ok: false, reason: "invalid" });
    expect(await signIn(t.db, { email: "nobody@example.test", password: "x", ip: "192.0.2.1" })).toEqual({ ok: false, reason: "invalid" });
  });

  it("throttles an account after 5 failures within a minute, even with the right password, then lets it in again", async () => {
    await createUser(t.db, SYSTEM_ACTOR, { email: "victim@example.test", password: "right password", role: "viewer" });
    const start = Date.parse("2030-01-01T00:00:00Z");
    for (let i = 0; i < THROTTLE.failures; i++) {
      const r = await signIn(t.db, { email: "victim@example.test", password: "guess", ip: `198.51.100.${i}` }, new Date(start + i * 1000));
      expect(r).toEqual({ ok: false, reason: "invalid" });
    }
    const locked = await signIn(t.db, { email: "victim@example.test", password: "right password", ip: "203.0.113.9" }, new Date(start + 10_000));
    expect(locked).toMatchObject({ ok: false, reason: "throttled" });
    expect((locked as { retryAfterSeconds: number }).retryAfterSeconds).toBe(Math.ceil((THROTTLE.lockoutMs - 6_000) / 1000));
    const after = await signIn(t.db, { email: "victim@example.test", password: "right password", ip: "203.0.113.9" }, new Date(start + 4000 + THROTTLE.lockoutMs + 1000));
    expect(after).toMatchObject({ ok: true });
  });

  it("throttles an address that tries many accounts, but not slow failures", async () => {
    const start = Date.parse("2031-01-01T00:00:00Z");
    for (let i = 0; i < THROTTLE.failures; i++) {
      await signIn(t.db, { email: `u${i}@example.test`, password: "guess", ip: "192.0.2.200" }, new Date(start + i * 1000));
    }
    expect(await signIn(t.db, { email: "sign@example.test", password: "right password", ip: "192.0.2.200" }, new Date(start + 6000))).toMatchObject({ reason: "throttled" });
    expect(await signIn(t.db, { email: "sign@example.test", password: "right password", ip: "192.0.2.201" }, new Date(start + 6000))).toMatchObject({ ok: true });
    // Five failures spread over more than a minute do not lock.
    for (let i = 0; i < THROTTLE.failures; i++) {
      await signIn(t.db, { email: "slow@example.test", password: "guess", ip: "192.0.2.250" }, new Date(start + 100_000_000 + i * 20_000));
    }
    expect(await signIn(t.db, { email: "slow@example.test", password: "guess", ip: "192.0.2.250" }, new Date(start + 100_000_000 + 100_000))).toEqual({ ok: false, reason: "invalid" });
  });

  it("issues API tokens shown once, stored hashed, and revocable", async () => {
    const owner = await createUser(t.db, SYSTEM_ACTOR, { email: "tok@example.test", password: "long enough pw", role: "viewer" });
    const created = await createApiToken(t.db, SYSTEM_ACTOR, { userId: owner.id, name: "script" });
    expect(created.token).toMatch(/^pct_[A-Za-z0-9_-]{40}$/);
    const stored = await t.db.selectFrom("api_tokens").selectAll().where("id", "=", created.id).executeTakeFirstOrThrow();
    expect(JSON.stringify(stored)).not.toContain(created.token);
    expect(await authenticateApiToken(t.db, created.token)).toMatchObject({ id: owner.id, role: "viewer" });
    expect(await authenticateApiToken(t.db, `${created.token}x`)).toBeUndefined();
    expect(await authenticateApiToken(t.db, "Bearer nonsense")).toBeUndefined();
    expect((await listApiTokens(t.db, owner.id))[0]).toMatchObject({ name: "script", prefix: created.token.slice(0, 10) });
    await revokeApiToken(t.db, SYSTEM_ACTOR, created.id);
    expect(await authenticateApiToken(t.db, created.token)).toBeUndefined();
    await expect(revokeApiToken(t.db, SYSTEM_ACTOR, created.id)).rejects.toMatchObject({ code: "not_found" });
    await expect(createApiToken(t.db, SYSTEM_ACTOR, { userId: owner.id, name: "  " })).rejects.toMatchObject({ code: "validation_failed" });
  });
});
