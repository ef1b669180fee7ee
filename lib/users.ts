import crypto from "node:crypto";
import { z } from "zod";
import { writeAudit, type Actor } from "./audit";
import type { Db } from "./db";
import { isUniqueViolation } from "./db/connection";
import type { Role } from "./db/schema";
import { AppError } from "./errors";
import { newId, nowIso } from "./ids";
import { dummyPasswordHash, hashPassword, verifyPassword } from "./passwords";

export const emailSchema = z
  .string()
  .trim()
  .toLowerCase()
  .pipe(z.email({ error: "enter an email address, like admin@example.com" }));
export const newPasswordSchema = z
  .string()
  .min(10, "use at least 10 characters")
  .max(200, "use at most 200 characters");
export const roleSchema = z.enum(["admin", "viewer"], { error: "role must be admin or viewer" });

export type UserView = { id: string; email: string; role: Role; createdAt: string; lastLoginAt: string | null };

const toView = (u: { id: string; email: string; role: Role; created_at: string; last_login_at: string | null }): UserView => ({
  id: u.id,
  email: u.email,
  role: u.role,
  createdAt: u.created_at,
  lastLoginAt: u.last_login_at,
});

export async function countUsers(db: Db): Promise<number> {
  const row = await db.selectFrom("users").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow();
  return Number(row.n);
}

export async function getUser(db: Db, id: string): Promise<UserView | undefined> {
  const u = await db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst();
  return u ? toView(u) : undefined;
}

export async function listUsers(db: Db): Promise<UserView[]> {
  const rows = await db.selectFrom("users").selectAll().orderBy("created_at").execute();
  return rows.map(toView);
}

const emailTaken = (email: string) =>
  new AppError("conflict", `a user with the email ${email} already exists`, { email: ["a user with this email already exists"] });

export async function createUser(
  db: Db,
  actor: Actor,
  input: { email: string; password: string; role: Role },
): Promise<UserView> {
  const email = emailSchema.safeParse(input.email);
  const password = newPasswordSchema.safeParse(input.password);
  const role = roleSchema.safeParse(input.role);
  const fieldErrors: Record<string, string[]> = {};
  if (!email.success) fieldErrors.email = email.error.issues.map((i) => i.message);
  if (!password.success) fieldErrors.password = password.error.issues.map((i) => i.message);
  if (!role.success) fieldErrors.role = role.error.issues.map((i) => i.message);
  if (!email.success || !password.success || !role.success) {
    throw new AppError("validation_failed", "check the highlighted fields", fieldErrors);
  }
  const existing = await db.selectFrom("users").select("id").where("email", "=", email.data).executeTakeFirst();
  if (existing) throw emailTaken(email.data);
  const now = nowIso();
  const row = {
    id: newId("usr"),
    email: email.data,
    password_hash: await hashPassword(password.data),
    role: role.data,
    created_at: now,
    updated_at: now,
    last_login_at: null,
  };
  try {
    await db.insertInto("users").values(row).execute();
  } catch (err) {
    // Another process (console and worker start together) inserted the same email a moment ago.
    if (isUniqueViolation(err)) throw emailTaken(email.data);
    throw err;
  }
  await writeAudit(db, actor, "user.create", { type: "user", id: row.id }, { email: row.email, role: row.role });
  return toView(row);
}

// ---------------------------------------------------------------------------------------------
// Sign-in with throttling: 5 failures within a minute, for one account or one address, lock that
// account or address out for LOCKOUT_MS after the fifth.

export const THROTTLE = { failures: 5, windowMs: 60_000, lockoutMs: 5 * 60_000 };

export type SignInResult =
  | { ok: true; user: UserView }
  | { ok: false; reason: "invalid" }
  | { ok: false; reason: "throttled"; retryAfterSeconds: number };

function lockedUntil(failureTimes: number[]): number {
  let until = 0;
  for (let i = THROTTLE.failures - 1; i < failureTimes.length; i++) {
    if (failureTimes[i] - failureTimes[i - THROTTLE.failures + 1] <= THROTTLE.windowMs) {
      until = Math.max(until, failureTimes[i] + THROTTLE.lockoutMs);
    }
  }
  return until;
}

async function throttledUntil(db: Db, email: string, ip: string, now: number): Promise<number> {
  const since = new Date(now - THROTTLE.lockoutMs - THROTTLE.windowMs).toISOString();
  const lastSuccess = await db
    .selectFrom("login_attempts")
    .select("at")
    .where("email", "=", email)
    .where("succeeded", "=", 1)
    .where("at", ">=", since)
    .orderBy("at", "desc")
    .executeTakeFirst();
  const accountFailures = await db
    .selectFrom("login_attempts")
    .select("at")
    .where("email", "=", email)
    .where("succeeded", "=", 0)
    .where("at", ">", lastSuccess?.at ?? since)
    .orderBy("at")
    .execute();
  const addressFailures = await db
    .selectFrom("login_attempts")
    .select("at")
    .where("ip", "=", ip)
    .where("succeeded", "=", 0)
    .where("at", ">=", since)
    .orderBy("at")
    .execute();
  const times = (rows: { at: string }[]) => rows.map((r) => Date.parse(r.at));
  return Math.max(lockedUntil(times(accountFailures)), lockedUntil(times(addressFailures)));
}

export async function signIn(
  db: Db,
  input: { email: string; password: string; ip: string },
  now: Date = new Date(),
): Promise<SignInResult> {
  const email = input.email.trim().toLowerCase().slice(0, 320);
  const ip = input.ip || "unknown";
  const until = await throttledUntil(db, email, ip, now.getTime());
  if (until > now.getTime()) {
    return { ok: false, reason: "throttled", retryAfterSeconds: Math.ceil((until - now.getTime()) / 1000) };
  }
  const user = await db.selectFrom("users").selectAll().where("email", "=", email).executeTakeFirst();
  const valid = await verifyPassword(input.password, user?.password_hash ?? (await dummyPasswordHash()));
  const succeeded = Boolean(user && valid);
  await db.insertInto("login_attempts").values({ at: nowIso(now), email, ip, succeeded: succeeded ? 1 : 0 }).execute();
  if (!user || !succeeded) return { ok: false, reason: "invalid" };
  await db.updateTable("users").set({ last_login_at: nowIso(now) }).where("id", "=", user.id).execute();
  await writeAudit(db, { id: user.id, label: user.email, role: user.role, ip }, "user.sign_in");
  return { ok: true, user: toView(user) };
}

export async function checkPassword(db: Db, userId: string, password: string): Promise<boolean> {
  const user = await db.selectFrom("users").select("password_hash").where("id", "=", userId).executeTakeFirst();
  return verifyPassword(password, user?.password_hash ?? (await dummyPasswordHash()));
}

export async function pruneLoginAttempts(db: Db, now: Date = new Date()) {
  await db.deleteFrom("login_attempts").where("at", "<", new Date(now.getTime() - 86_400_000).toISOString()).execute();
}

// ---------------------------------------------------------------------------------------------
// First admin: from the environment, or from /setup with a one-time token printed at start.

const SETUP_TOKEN_KEY = "setup_token_sha256";
const sha256 = (s: string) => crypto.createHash("sha256").update(s).digest("hex");

export async function ensureAdminFromEnvironment(db: Db, admin: { email: string; password: string } | undefined) {
  if (!admin || (await countUsers(db)) > 0) return undefined;
  try {
    return await createUser(db, { id: null, label: "environment", role: "system" }, { ...admin, role: "admin" });
  } catch (err) {
    // The worker may have created it a moment ago.
    if (err instanceof AppError && err.code === "conflict") return undefined;
    throw err;
  }
}

/** A new one-time setup token (replacing any earlier one); only its hash is stored. */
export async function issueSetupToken(db: Db): Promise<string> {
  const token = crypto.randomBytes(18).toString("base64url");
  const now = nowIso();
  await db
    .insertInto("settings")
    .values({ key: SETUP_TOKEN_KEY, value: JSON.stringify(sha256(token)), updated_at: now })
    .onConflict((oc) => oc.column("key").doUpdateSet({ value: JSON.stringify(sha256(token)), updated_at: now }))
    .execute();
  return token;
}

export async function isSetupTokenValid(db: Db, token: string): Promise<boolean> {
  const row = await db.selectFrom("settings").select("value").where("key", "=", SETUP_TOKEN_KEY).executeTakeFirst();
  if (!row || !token) return false;
  const expected = Buffer.from(JSON.parse(row.value) as string, "hex");
  const actual = Buffer.from(sha256(token), "hex");
  return expected.length === actual.length && crypto.timingSafeEqual(expected, actual);
}

export async function completeSetup(db: Db, input: { token: string; email: string; password: string; ip?: string }) {
  if (!(await isSetupTokenValid(db, input.token))) {
    throw new AppError(
      "forbidden",
      "this setup link is not valid any more; restart Portcullis to print a new one, or create the admin with `portcullis user add`",
    );
  }
  if ((await countUsers(db)) > 0) throw new AppError("conflict", "an admin already exists; sign in instead");
  const user = await createUser(db, { id: null, label: "setup", role: "system", ip: input.ip }, {
    email: input.email,
    password: input.password,
    role: "admin",
  });
  await db.deleteFrom("settings").where("key", "=", SETUP_TOKEN_KEY).execute();
  return user;
}
