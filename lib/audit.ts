import type { Db } from "./db";
import { nowIso } from "./ids";

/** Who acted: a signed-in user, a token's owner, the CLI, or the system itself. */
export type Actor = { id: string | null; label: string; role: "admin" | "viewer" | "system"; ip?: string | null };

export const SYSTEM_ACTOR: Actor = { id: null, label: "system", role: "system" };
export const CLI_ACTOR: Actor = { id: null, label: "cli", role: "system" };

export async function writeAudit(
  db: Db,
  actor: Actor,
  action: string,
  target?: { type: string; id: string | null },
  detail?: Record<string, unknown>,
) {
  await db
    .insertInto("audit_log")
    .values({
      at: nowIso(),
      actor_id: actor.id,
      actor_label: actor.label,
      action,
      target_type: target?.type ?? null,
      target_id: target?.id ?? null,
      detail: detail ? JSON.stringify(detail) : null,
      ip: actor.ip ?? null,
    })
    .execute();
}

export async function listAudit(db: Db, limit = 100) {
  return db.selectFrom("audit_log").selectAll().orderBy("id", "desc").limit(limit).execute();
}
