import { getConfig } from "../config";
import { openDatabase, type DatabaseKind, type Db } from "./connection";

export type { Db, DatabaseKind } from "./connection";
export { readSnapshot } from "./connection";

type Holder = { db: Db; kind: DatabaseKind };
const globalHolder = globalThis as unknown as { __portcullisDb?: Holder };

/** The process-wide database, opened on first use from the configuration. */
export function getDatabase(): Holder {
  globalHolder.__portcullisDb ??= openDatabase(getConfig().database);
  return globalHolder.__portcullisDb;
}

export function getDb(): Db {
  return getDatabase().db;
}

/** Tests and the CLI point the process at another database. */
export function setDatabase(holder: Holder | undefined) {
  globalHolder.__portcullisDb = holder;
}
