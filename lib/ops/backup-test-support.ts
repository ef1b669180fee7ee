import crypto from "node:crypto";
import { Keyring, sealingKeyFromBytes } from "../crypto/seal";
import { resealRow, TABLES_IN_ORDER, type TableName } from "../crypto/sealed-columns";
import type { Db } from "../db";

// Test support: compare two databases table by table, with every sealed value replaced by what it
// opens to (envelopes differ after a re-seal; their plaintext must not).

export const newKeyring = () => new Keyring(sealingKeyFromBytes(crypto.randomBytes(32)));

/** A stand-in "keyring" whose seal() writes the plaintext: resealRow with it opens every value of a row. */
const plaintextWriter = {
  seal: (plaintext: string | Buffer) => `opened:${Buffer.from(plaintext).toString("base64")}`,
} as unknown as Keyring;

/** Every table's rows with sealed values opened, sorted, for toEqual. */
export async function snapshot(db: Db, keyring: Keyring): Promise<Record<string, Record<string, unknown>[]>> {
  const out: Record<string, Record<string, unknown>[]> = {};
  for (const table of TABLES_IN_ORDER) {
    const rows = (await db.selectFrom(table as TableName).selectAll().execute()) as Record<string, unknown>[];
    for (const row of rows) resealRow(table, row, keyring, plaintextWriter);
    out[table] = rows.sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
  }
  return out;
}

/** Every envelope in the database, with its table and column. */
export async function allEnvelopes(db: Db): Promise<{ table: string; column: string; envelope: string }[]> {
  const found: { table: string; column: string; envelope: string }[] = [];
  for (const table of TABLES_IN_ORDER) {
    const rows = (await db.selectFrom(table as TableName).selectAll().execute()) as Record<string, unknown>[];
    for (const row of rows) {
      for (const [column, value] of Object.entries(row)) {
        if (typeof value !== "string") continue;
        for (const envelope of value.match(/pcs1\.[0-9A-Za-z_-]+\.[0-9A-Za-z_-]+\.[0-9A-Za-z_-]*\.[0-9A-Za-z_-]+/g) ?? []) found.push({ table, column, envelope });
      }
    }
  }
  return found;
}

export async function rowCounts(db: Db): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  for (const table of TABLES_IN_ORDER) {
    const row = await db.selectFrom(table as TableName).select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow();
    counts[table] = Number(row.n);
  }
  return counts;
}
