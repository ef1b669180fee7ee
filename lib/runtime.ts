import type { Config } from "./config";
import { getDatabase, type Db } from "./db";
import { migrateToLatest } from "./db/migrate";
import { Keyring, loadKeyring, SealError, BACKUP_NOTE } from "./crypto/seal";
import { nowIso } from "./ids";
import { ensureAdminFromEnvironment } from "./users";

const holder = globalThis as unknown as { __portcullisKeyring?: Keyring };

export const SEAL_CHECK_KEY = "seal_check";
export const SEAL_CHECK_CONTEXT = "seal-check";

/** The keyring the configuration names: PORTCULLIS_SECRET (+ _PREVIOUS), or the data directory's key files. */
export function keyringFromConfig(config: Config) {
  return loadKeyring({ secret: config.secret, previousSecrets: config.previousSecrets, dataDir: config.dataDir });
}

/** The sealing keyring of this process (loaded from the configuration on first use). */
export function getKeyring(config: Config): Keyring {
  holder.__portcullisKeyring ??= keyringFromConfig(config).keyring;
  return holder.__portcullisKeyring;
}

export function setKeyring(keyring: Keyring | undefined) {
  holder.__portcullisKeyring = keyring;
}

/**
 * A sealed marker in the settings table proves that this process holds the key the database was
 * sealed with: a wrong PORTCULLIS_SECRET stops the process at start instead of failing later.
 */
export async function verifySealingKey(db: Db, keyring: Keyring) {
  const row = await db.selectFrom("settings").select("value").where("key", "=", SEAL_CHECK_KEY).executeTakeFirst();
  if (!row) {
    await db
      .insertInto("settings")
      .values({ key: SEAL_CHECK_KEY, value: JSON.stringify(keyring.seal("portcullis", SEAL_CHECK_CONTEXT)), updated_at: nowIso() })
      .onConflict((oc) => oc.column("key").doNothing())
      .execute();
    return;
  }
  try {
    keyring.open(JSON.parse(row.value) as string, SEAL_CHECK_CONTEXT);
  } catch (err) {
    const why = err instanceof SealError ? err.message : String(err);
    throw new SealError(
      `this database was sealed with a different key than the one this process has (${why}). ` +
        "Set PORTCULLIS_SECRET to the value used before, or restore secret.key into the data directory.",
    );
  }
}

export type Prepared = { db: Db; kind: "sqlite" | "postgres"; keyring: Keyring; createdKeyFile?: string };

/** What every process does before it serves: migrate, load and check the sealing key, first admin. */
export async function prepareProcess(config: Config, log: (message: string) => void = () => {}, opts: { waitForServer?: boolean } = {}): Promise<Prepared> {
  const { db, kind } = getDatabase();
  const applied = await migrateToLatest(db, kind, opts);
  if (applied.length) log(`database migrated: ${applied.join(", ")}`);
  const { keyring, source, created } = keyringFromConfig(config);
  setKeyring(keyring);
  if (created) process.stderr.write(BACKUP_NOTE(source));
  await verifySealingKey(db, keyring);
  const admin = await ensureAdminFromEnvironment(db, config.admin);
  if (admin) log(`created the first admin, ${admin.email}, from PORTCULLIS_ADMIN_EMAIL`);
  return { db, kind, keyring, createdKeyFile: created ? source : undefined };
}
