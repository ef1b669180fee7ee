import type { Database } from "../db/schema";
import { type Keyring, SealError } from "./seal";

// The one list of every sealed value in the database and the context it is sealed with. Backup
// (re-seals under the passphrase), restore (re-seals under the installation's key) and key rotation
// all walk it, so a new sealed column is added here and nowhere else. sealed-columns.test.ts fails
// when a table holds an envelope that this file does not describe.

export type TableName = keyof Database & string;
type Row = Record<string, unknown>;

export type SealedColumn = {
  table: TableName;
  column: string;
  /** The columns that identify a row (for updates). */
  primaryKey: string[];
  /** The context the value is sealed with (bound as additional data: an envelope moved to another row fails to open). */
  context: (row: Row) => string;
};

const byId = (prefix: string) => (row: Row) => `${prefix}:${String(row.id)}`;

export const SEALED_COLUMNS: readonly SealedColumn[] = [
  { table: "certificates", column: "sealed_key", primaryKey: ["id"], context: byId("certificate-key") },
  { table: "certificates", column: "pending_sealed_key", primaryKey: ["id"], context: byId("certificate-pending-key") },
  // Every version of a certificate is sealed with the certificate's own context.
  { table: "certificate_versions", column: "sealed_key", primaryKey: ["id"], context: (row) => `certificate-key:${String(row.certificate_id)}` },
  { table: "acme_accounts", column: "sealed_key", primaryKey: ["id"], context: byId("acme-account-key") },
  { table: "acme_accounts", column: "sealed_eab_hmac", primaryKey: ["id"], context: byId("acme-eab") },
  { table: "acme_challenges", column: "sealed_key", primaryKey: ["id"], context: byId("acme-challenge") },
  { table: "dns_credentials", column: "sealed_token", primaryKey: ["id"], context: byId("dns-credential-token") },
  { table: "listeners", column: "fallback_sealed_key", primaryKey: ["id"], context: byId("listener-fallback") },
  { table: "webhooks", column: "sealed_secret", primaryKey: ["id"], context: byId("webhook-secret") },
];

/**
 * Settings hold JSON values with sealed fields inside (the console's local CA, its server
 * certificate, …). Every envelope found anywhere in a setting's value is re-sealed; its context is
 * the first of the setting's candidates that opens it (AES-GCM makes a successful open conclusive).
 */
export const SEALED_SETTINGS: Readonly<Record<string, readonly string[]>> = {
  seal_check: ["seal-check"],
  "tls.local_ca": ["console-local-ca-key"],
  "tls.local_server": ["console-local-server-key"],
  "tls.acme_self_signed": ["console-acme-self-signed-key"],
  "tls.provided": ["console-provided-key"],
};

/** Tables in an order where every row's references come first: restore inserts in this order and deletes in reverse. */
export const TABLES_IN_ORDER: readonly TableName[] = [
  "users",
  "api_tokens",
  "audit_log",
  "settings",
  "login_attempts",
  "certificates",
  "certificate_versions",
  "events",
  "listeners",
  "certificate_mappings",
  "listener_checks",
  "acme_accounts",
  "acme_challenges",
  "acme_rate_ledger",
  "dns_credentials",
  "dns_records",
  "dns_tests",
  "webhooks",
  "webhook_deliveries",
  "alert_problems",
  "event_cursors",
  "expiry_notices",
  "listener_counters",
];

/** A whole envelope (pcs1.<key id>.<iv>.<ciphertext>.<tag>, base64url parts). */
export const ENVELOPE = /^pcs1\.[0-9A-Za-z_-]+\.[0-9A-Za-z_-]+\.[0-9A-Za-z_-]*\.[0-9A-Za-z_-]+$/;
/** Envelopes inside a longer text (JSON): base64url needs no JSON escaping, so they appear verbatim. */
export const ENVELOPE_IN_TEXT = /pcs1\.[0-9A-Za-z_-]+\.[0-9A-Za-z_-]+\.[0-9A-Za-z_-]*\.[0-9A-Za-z_-]+/g;

export const SETTINGS_TABLE: TableName = "settings";

/** Which sealed columns a table has (settings aside). */
export function sealedColumnsOf(table: string): SealedColumn[] {
  return SEALED_COLUMNS.filter((c) => c.table === table);
}

export class ResealError extends SealError {
  constructor(message: string) {
    super(message);
    this.name = "ResealError";
  }
}

function describeRow(table: string, row: Row, column: string) {
  const id = row.id ?? row.key ?? "?";
  return `${table}.${column} of ${String(id)}`;
}

/** Opens one setting's envelope with the first candidate context that fits; returns [context, plaintext]. */
export function openSettingEnvelope(keyring: Keyring, settingKey: string, envelope: string): [string, Buffer] {
  const candidates = [...(SEALED_SETTINGS[settingKey] ?? []), ...Object.values(SEALED_SETTINGS).flat(), `setting:${settingKey}`];
  let lastError: unknown;
  for (const context of new Set(candidates)) {
    try {
      return [context, keyring.openBuffer(envelope, context)];
    } catch (err) {
      lastError = err;
      // A key this process lacks fails the same way for every context: no point trying the others.
      if (err instanceof SealError && /which this process does not have/.test(err.message)) break;
    }
  }
  const why = lastError instanceof Error ? lastError.message : String(lastError);
  throw new ResealError(
    `the setting "${settingKey}" holds a sealed value that cannot be opened (${why}); if it is a new kind of sealed setting, add its context to SEALED_SETTINGS in lib/crypto/sealed-columns.ts`,
  );
}

/**
 * Opens every sealed value of a row with `from` and seals it again with `to`, in place. Returns
 * the names of the columns changed (empty when the row holds nothing sealed).
 */
export function resealRow(table: string, row: Row, from: Keyring, to: Keyring): string[] {
  const changed: string[] = [];
  for (const c of sealedColumnsOf(table)) {
    const value = row[c.column];
    if (value === null || value === undefined || value === "") continue;
    if (typeof value !== "string" || !ENVELOPE.test(value)) {
      throw new ResealError(`${describeRow(table, row, c.column)} is not a sealed value; the database was altered outside Portcullis`);
    }
    const context = c.context(row);
    let plaintext: Buffer;
    try {
      plaintext = from.openBuffer(value, context);
    } catch (err) {
      throw new ResealError(`${describeRow(table, row, c.column)} cannot be opened: ${err instanceof Error ? err.message : String(err)}`);
    }
    row[c.column] = to.seal(plaintext, context);
    changed.push(c.column);
  }
  if (table === SETTINGS_TABLE && typeof row.value === "string" && row.value.includes("pcs1.")) {
    const settingKey = String(row.key);
    const next = row.value.replace(ENVELOPE_IN_TEXT, (envelope) => {
      const [context, plaintext] = openSettingEnvelope(from, settingKey, envelope);
      return to.seal(plaintext, context);
    });
    if (next !== row.value) {
      row.value = next;
      changed.push("value");
    }
  }
  return changed;
}

/** Every envelope a row holds, with its context: for checks ("does every value open?"). */
export function envelopesOf(table: string, row: Row, keyring: Keyring): { column: string; envelope: string; context: string }[] {
  const found: { column: string; envelope: string; context: string }[] = [];
  for (const c of sealedColumnsOf(table)) {
    const value = row[c.column];
    if (typeof value === "string" && value) found.push({ column: c.column, envelope: value, context: c.context(row) });
  }
  if (table === SETTINGS_TABLE && typeof row.value === "string") {
    for (const envelope of row.value.match(ENVELOPE_IN_TEXT) ?? []) {
      found.push({ column: "value", envelope, context: openSettingEnvelope(keyring, String(row.key), envelope)[0] });
    }
  }
  return found;
}

/** The tables that hold sealed values (settings included). */
export function tablesWithSealedValues(): TableName[] {
  return [...new Set([...SEALED_COLUMNS.map((c) => c.table), SETTINGS_TABLE])];
}
