import crypto from "node:crypto";
import type { Db } from "../db";
import { nowIso } from "../ids";

// The edge reloads when this value changes: every write that changes what a listener serves bumps it.
// Polling one indexed row is cheap on both engines and needs no LISTEN/NOTIFY connection.
export const EDGE_REVISION_KEY = "edge_revision";

export async function bumpEdgeRevision(db: Db) {
  const value = JSON.stringify(`${Date.now()}-${crypto.randomBytes(4).toString("hex")}`);
  const at = nowIso();
  await db
    .insertInto("settings")
    .values({ key: EDGE_REVISION_KEY, value, updated_at: at })
    .onConflict((oc) => oc.column("key").doUpdateSet({ value, updated_at: at }))
    .execute();
}

export async function readEdgeRevision(db: Db): Promise<string> {
  const row = await db.selectFrom("settings").select("value").where("key", "=", EDGE_REVISION_KEY).executeTakeFirst();
  return row?.value ?? "";
}
