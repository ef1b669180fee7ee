import type { Keyring } from "../crypto/seal";
import type { Db } from "../db";
import { nowIso } from "../ids";
import { inspectCertificatePem } from "../pki/inspect";
import { createLocalCa, type PemPair } from "../pki/local-ca";

// The console's TLS material in the settings table: it lives in the database, so backups and
// restores keep it and clients that pinned the local CA keep trusting it. Private keys are sealed.

export const TLS_MODE_KEY = "tls.mode";
export const LOCAL_CA_KEY = "tls.local_ca";
export const LOCAL_SERVER_KEY = "tls.local_server";
export const ACME_KEY = "tls.acme";
export const ACME_SELF_SIGNED_KEY = "tls.acme_self_signed";
export const PROVIDED_KEY = "tls.provided";

export const LOCAL_CA_KEY_CONTEXT = "console-local-ca-key";
export const LOCAL_SERVER_KEY_CONTEXT = "console-local-server-key";
export const ACME_SELF_SIGNED_KEY_CONTEXT = "console-acme-self-signed-key";
export const PROVIDED_KEY_CONTEXT = "console-provided-key";

export type StoredPair = { certificatePem: string; sealedKey: string };
export type StoredLocalServer = StoredPair & { names: string[] };
export type StoredAcmeFallback = StoredPair & { domain: string };
export type AcmeSettings = { enabled: boolean; domain: string | null; email: string | null; certificateId: string | null; challenge?: "http-01" | "tls-alpn-01" };

export async function readSetting<T>(db: Db, key: string): Promise<T | undefined> {
  const row = await db.selectFrom("settings").select("value").where("key", "=", key).executeTakeFirst();
  if (!row) return undefined;
  try {
    return JSON.parse(row.value) as T;
  } catch {
    return undefined;
  }
}

export async function writeSetting(db: Db, key: string, value: unknown): Promise<void> {
  const now = nowIso();
  const text = JSON.stringify(value);
  await db
    .insertInto("settings")
    .values({ key, value: text, updated_at: now })
    .onConflict((oc) => oc.column("key").doUpdateSet({ value: text, updated_at: now }))
    .execute();
}

/** Inserts only when the key is absent (another process may have created it a moment ago). */
async function insertSettingOnce(db: Db, key: string, value: unknown): Promise<void> {
  await db
    .insertInto("settings")
    .values({ key, value: JSON.stringify(value), updated_at: nowIso() })
    .onConflict((oc) => oc.column("key").doNothing())
    .execute();
}

export const readAcmeSettings = (db: Db) => readSetting<AcmeSettings>(db, ACME_KEY);
export const readProvidedUpload = (db: Db) => readSetting<StoredPair>(db, PROVIDED_KEY);

export type LocalCaView = StoredPair & { facts: { subject: string; fingerprintSha256: string; notAfter: string } };

export async function readLocalCa(db: Db): Promise<LocalCaView | undefined> {
  const stored = await readSetting<StoredPair>(db, LOCAL_CA_KEY);
  if (!stored?.certificatePem) return undefined;
  const facts = inspectCertificatePem(stored.certificatePem);
  return { ...stored, facts: { subject: facts.subject, fingerprintSha256: facts.fingerprintSha256, notAfter: facts.notAfter.toISOString() } };
}

/** The local CA, created on first use. */
export async function loadOrCreateLocalCa(db: Db, keyring: Keyring): Promise<PemPair> {
  let stored = await readSetting<StoredPair>(db, LOCAL_CA_KEY);
  if (!stored) {
    const ca = await createLocalCa();
    await insertSettingOnce(db, LOCAL_CA_KEY, { certificatePem: ca.certificatePem, sealedKey: keyring.seal(ca.privateKeyPem, LOCAL_CA_KEY_CONTEXT) });
    stored = (await readSetting<StoredPair>(db, LOCAL_CA_KEY))!;
  }
  return { certificatePem: stored.certificatePem, privateKeyPem: keyring.open(stored.sealedKey, LOCAL_CA_KEY_CONTEXT) };
}

export function openPair(keyring: Keyring, stored: StoredPair, context: string): PemPair {
  return { certificatePem: stored.certificatePem, privateKeyPem: keyring.open(stored.sealedKey, context) };
}

export function sealPair(keyring: Keyring, pair: PemPair, context: string): StoredPair {
  return { certificatePem: pair.certificatePem, sealedKey: keyring.seal(pair.privateKeyPem, context) };
}
