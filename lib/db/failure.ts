import { getConfig, type Config } from "../config";
import { AppError } from "../errors";

// When the storage under Portcullis fails (its disk is full, the database is locked, read-only or down),
// the operator gets what happened and what to do, rather than "something went wrong". Anything else is
// left to the caller's generic handling.

const PG_UNREACHABLE = new Set([
  "08000", // connection_exception
  "08001", // sqlclient_unable_to_establish_sqlconnection
  "08003", // connection_does_not_exist
  "08004", // sqlserver_rejected_establishment_of_sqlconnection
  "08006", // connection_failure
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now (starting up, or in recovery)
  "53300", // too_many_connections
]);
const CONNECT = new Set(["ECONNREFUSED", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH"]);
const LOOKUP = new Set(["ENOTFOUND", "EAI_AGAIN"]);

type Failure = { code?: unknown; message?: unknown; port?: unknown; hostname?: unknown; path?: unknown };

/** The database server's address, to tell a failed connection to it from one to anything else (a CA, say). */
function postgresAddress(database: Config["database"] | undefined): { host: string; port: number } | undefined {
  if (database?.kind !== "postgres") return undefined;
  try {
    const url = new URL(database.url);
    return { host: url.hostname, port: Number(url.port || 5432) };
  } catch {
    return undefined;
  }
}

const where = (database: Config["database"] | undefined) =>
  database?.kind === "sqlite" ? ` (${database.file})` : database?.kind === "postgres" ? " (the PostgreSQL server's data directory)" : "";

/** The failure in words for this process's own database (as configured), or undefined when err is not one. */
export function storageFailure(err: unknown, database: Config["database"] | undefined = configuredDatabase()): AppError | undefined {
  const e = (err ?? {}) as Failure;
  const code = typeof e.code === "string" ? e.code : "";
  const message = typeof e.message === "string" ? e.message : "";
  if (code === "ENOSPC") {
    // A file this process writes (a backup, a key file), which need not be on the database's disk.
    return new AppError("insufficient_storage", `there is no space left on the disk${typeof e.path === "string" ? ` that holds ${e.path}` : ""}: free some space on it, then try again`);
  }
  if (code === "SQLITE_FULL" || code === "53100" || (code.startsWith("SQLITE_IOERR") && /no space|ENOSPC|disk is full/i.test(message))) {
    return new AppError("insufficient_storage", `the disk that holds Portcullis's database${where(database)} is full, so the change could not be written: free some space on it, then try again`);
  }
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED")) {
    return new AppError("unavailable", "the database is busy: another process has held its write lock for more than 10 seconds. Try again in a moment");
  }
  if (code.startsWith("SQLITE_READONLY")) {
    return new AppError("unavailable", `the database${where(database)} is read-only for this process: check that the file and its directory are writable by the user Portcullis runs as`);
  }
  if (isDatabaseUnreachable(err, database)) {
    return new AppError("unavailable", "the database cannot be reached: check that PostgreSQL is running and that DATABASE_URL points at it, then try again");
  }
  return undefined;
}

/** Whether err says the PostgreSQL server itself could not be reached (down, starting, refusing, unknown host). */
export function isDatabaseUnreachable(err: unknown, database: Config["database"] | undefined): boolean {
  const e = (err ?? {}) as Failure;
  const code = typeof e.code === "string" ? e.code : "";
  const message = typeof e.message === "string" ? e.message : "";
  const server = postgresAddress(database);
  return (
    PG_UNREACHABLE.has(code) ||
    (server !== undefined &&
      ((CONNECT.has(code) && Number(e.port) === server.port) ||
        (LOOKUP.has(code) && e.hostname === server.host) ||
        /^Connection terminated|timeout exceeded when trying to connect/.test(message)))
  );
}

function configuredDatabase(): Config["database"] | undefined {
  try {
    return getConfig().database;
  } catch {
    return undefined; // a configuration that does not parse is reported on its own
  }
}
