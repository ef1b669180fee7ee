import crypto from "node:crypto";
import { sql } from "kysely";
import pg from "pg";
import type { Db } from "../db";
import { databaseKind, postgresUrl } from "../db/connection";
import { nowIso } from "../ids";

// The edge reloads when this value changes: every write that changes what a listener serves bumps it.
// On PostgreSQL the bump is also a NOTIFY on EDGE_CHANNEL, delivered at commit, which wakes every edge
// at once; polling the row (one indexed read) stays as the fallback, and is all there is on SQLite.
export const EDGE_REVISION_KEY = "edge_revision";
export const EDGE_CHANNEL = "portcullis_edge";

export async function bumpEdgeRevision(db: Db) {
  const value = JSON.stringify(`${Date.now()}-${crypto.randomBytes(4).toString("hex")}`);
  const at = nowIso();
  await db
    .insertInto("settings")
    .values({ key: EDGE_REVISION_KEY, value, updated_at: at })
    .onConflict((oc) => oc.column("key").doUpdateSet({ value, updated_at: at }))
    .execute();
  if (databaseKind(db) === "postgres") await sql`select pg_notify(${EDGE_CHANNEL}, ${value})`.execute(db);
}

export async function readEdgeRevision(db: Db): Promise<string> {
  const row = await db.selectFrom("settings").select("value").where("key", "=", EDGE_REVISION_KEY).executeTakeFirst();
  return row?.value ?? "";
}

const RECONNECT_MIN_MS = 250;
const RECONNECT_MAX_MS = 10_000;

export type RevisionListener = { listening: () => boolean; stop: () => void };

/**
 * PostgreSQL only: calls onChange on every bump of the edge revision, from any process, and once each time
 * the LISTEN connection is (re)established, since bumps made while it was down were not heard. While it is
 * down it reconnects with backoff; `listening()` says whether it is up, so that the caller can poll meanwhile.
 * Returns undefined on SQLite.
 */
export function listenForEdgeRevisions(db: Db, onChange: () => void): RevisionListener | undefined {
  const url = databaseKind(db) === "postgres" ? postgresUrl(db) : undefined;
  if (!url) return undefined;
  let client: pg.Client | undefined;
  let up = false;
  let stopped = false;
  let delay = RECONNECT_MIN_MS;
  let retry: NodeJS.Timeout | undefined;

  const connect = async () => {
    const current = new pg.Client({ connectionString: url, keepAlive: true, connectionTimeoutMillis: 5000 });
    client = current;
    const dropped = () => {
      if (client !== current) return;
      client = undefined;
      up = false;
      current.end().catch(() => {});
      if (stopped) return;
      retry = setTimeout(() => void connect(), delay);
      retry.unref();
      delay = Math.min(delay * 2, RECONNECT_MAX_MS);
    };
    current.on("error", dropped);
    current.on("end", dropped);
    current.on("notification", (message) => {
      if (message.channel === EDGE_CHANNEL && client === current) onChange();
    });
    try {
      await current.connect();
      await current.query(`LISTEN ${EDGE_CHANNEL}`);
    } catch {
      dropped();
      return;
    }
    if (stopped || client !== current) {
      current.end().catch(() => {});
      return;
    }
    up = true;
    delay = RECONNECT_MIN_MS;
    onChange();
  };
  void connect();
  return {
    listening: () => up,
    stop: () => {
      stopped = true;
      up = false;
      clearTimeout(retry);
      const current = client;
      client = undefined;
      current?.end().catch(() => {});
    },
  };
}
