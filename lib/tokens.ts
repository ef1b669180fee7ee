import crypto from "node:crypto";
import { z } from "zod";
import { writeAudit, type Actor } from "./audit";
import type { Db } from "./db";
import type { Role } from "./db/schema";
import { AppError, notFound } from "./errors";
import { newId, nowIso } from "./ids";

// Tokens look like pct_<40 random chars>; only their SHA-256 is stored.
const TOKEN_PREFIX = "pct_";
const hashToken = (token: string) => crypto.createHash("sha256").update(token).digest("hex");

export const tokenNameSchema = z
  .string()
  .trim()
  .min(1, "give the token a name, like 'backup script'")
  .max(100, "use at most 100 characters");

export type TokenView = {
  id: string;
  name: string;
  prefix: string;
  userId: string;
  userEmail: string;
  createdAt: string;
  lastUsedAt: string | null;
  revokedAt: string | null;
};

export async function createApiToken(db: Db, actor: Actor, input: { userId: string; name: string }) {
  const name = tokenNameSchema.safeParse(input.name);
  if (!name.success) {
    throw new AppError("validation_failed", "check the token's name", { name: name.error.issues.map((i) => i.message) });
  }
  const user = await db.selectFrom("users").select(["id", "email"]).where("id", "=", input.userId).executeTakeFirst();
  if (!user) throw notFound("that user");
  const secret = TOKEN_PREFIX + crypto.randomBytes(30).toString("base64url");
  const row = {
    id: newId("tok"),
    user_id: user.id,
    name: name.data,
    token_hash: hashToken(secret),
    prefix: secret.slice(0, 10),
    created_at: nowIso(),
    last_used_at: null,
    revoked_at: null,
  };
  await db.insertInto("api_tokens").values(row).execute();
  await writeAudit(db, actor, "token.create", { type: "api_token", id: row.id }, { name: row.name, for: user.email });
  return { id: row.id, token: secret, name: row.name };
}

export async function listApiTokens(db: Db, userId?: string): Promise<TokenView[]> {
  let q = db
    .selectFrom("api_tokens")
    .innerJoin("users", "users.id", "api_tokens.user_id")
    .select([
      "api_tokens.id",
      "api_tokens.name",
      "api_tokens.prefix",
      "api_tokens.user_id",
      "users.email",
      "api_tokens.created_at",
      "api_tokens.last_used_at",
      "api_tokens.revoked_at",
    ]);
  if (userId) q = q.where("api_tokens.user_id", "=", userId);
  const rows = await q.orderBy("api_tokens.created_at", "desc").execute();
  return rows.map((r) => ({
    id: r.id,
    name: r.name,
    prefix: r.prefix,
    userId: r.user_id,
    userEmail: r.email,
    createdAt: r.created_at,
    lastUsedAt: r.last_used_at,
    revokedAt: r.revoked_at,
  }));
}

export async function revokeApiToken(db: Db, actor: Actor, id: string) {
  const result = await db
    .updateTable("api_tokens")
    .set({ revoked_at: nowIso() })
    .where("id", "=", id)
    .where("revoked_at", "is", null)
    .executeTakeFirst();
  if (Number(result.numUpdatedRows) === 0) throw notFound("that token (or it was already revoked)");
  await writeAudit(db, actor, "token.revoke", { type: "api_token", id });
}

/** Whether a token (by id) is still valid: long-lived connections check it again now and then. */
export async function isApiTokenActive(db: Db, tokenId: string): Promise<boolean> {
  const row = await db.selectFrom("api_tokens").select("id").where("id", "=", tokenId).where("revoked_at", "is", null).executeTakeFirst();
  return Boolean(row);
}

/** The user behind a bearer token, or undefined for an unknown or revoked one. */
export async function authenticateApiToken(
  db: Db,
  token: string,
): Promise<{ id: string; email: string; role: Role; tokenId: string } | undefined> {
  if (!token.startsWith(TOKEN_PREFIX) || token.length > 200) return undefined;
  const row = await db
    .selectFrom("api_tokens")
    .innerJoin("users", "users.id", "api_tokens.user_id")
    .select(["api_tokens.id as tokenId", "api_tokens.last_used_at", "users.id", "users.email", "users.role"])
    .where("api_tokens.token_hash", "=", hashToken(token))
    .where("api_tokens.revoked_at", "is", null)
    .executeTakeFirst();
  if (!row) return undefined;
  const now = Date.now();
  // Record use at most once a minute: a busy script must not turn every read into a write.
  if (!row.last_used_at || now - Date.parse(row.last_used_at) > 60_000) {
    await db.updateTable("api_tokens").set({ last_used_at: nowIso() }).where("id", "=", row.tokenId).execute();
  }
  return { id: row.id, email: row.email, role: row.role, tokenId: row.tokenId };
}
