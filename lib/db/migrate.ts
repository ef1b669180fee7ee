import { Migrator, type Migration, type MigrationProvider } from "kysely";
import { databaseOf, type DatabaseKind, type Db } from "./connection";
import { isDatabaseUnreachable, storageFailure } from "./failure";
import { foundation } from "./migrations/0001_foundation";
import { listeners } from "./migrations/0002_listeners";
import { acme } from "./migrations/0003_acme";
import { dns } from "./migrations/0004_dns";
import { operations } from "./migrations/0005_operations";
import { upstreamTls } from "./migrations/0006_upstream_tls";

function migrationsFor(kind: DatabaseKind): Record<string, Migration> {
  return {
    "0001_foundation": foundation(kind),
    "0002_listeners": listeners(),
    "0003_acme": acme(kind),
    "0004_dns": dns(),
    "0005_operations": operations(),
    "0006_upstream_tls": upstreamTls(),
  };
}

class StaticMigrationProvider implements MigrationProvider {
  constructor(private readonly kind: DatabaseKind) {}
  async getMigrations() {
    return migrationsFor(this.kind);
  }
}

export class MigrationError extends Error {}

/**
 * Brings the schema to the latest version. Console, worker and CLI all call this at start, possibly
 * at the same moment: the loser of a race sees a lock or "already exists" error, waits, and retries,
 * after which it finds nothing left to do.
 */
export async function migrateToLatest(db: Db, kind: DatabaseKind, opts: { waitForServer?: boolean } = {}): Promise<string[]> {
  const migrator = new Migrator({ db, provider: new StaticMigrationProvider(kind) });
  const database = databaseOf(db);
  let lastError: unknown;
  for (let attempt = 0; attempt < 20; attempt++) {
    const { error, results } = await migrator.migrateToLatest();
    if (!error) return (results ?? []).filter((r) => r.status === "Success").map((r) => r.migrationName);
    lastError = error;
    // The console and the worker wait (about 20 s) for a PostgreSQL that may still be starting; a CLI
    // command says at once that it is not there.
    if (opts.waitForServer === false && isDatabaseUnreachable(error, database)) break;
    await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200 * (attempt + 1)));
  }
  const message = lastError instanceof Error ? lastError.message : String(lastError);
  // What the operator can do about it first (a server that is down, a full disk), then the driver's words.
  const storage = storageFailure(lastError, database);
  throw new MigrationError(`database migration failed: ${storage ? `${storage.message} (${message})` : message}`);
}
