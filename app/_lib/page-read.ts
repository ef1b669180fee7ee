import "server-only";
import { storageFailure } from "@/lib/db/failure";
import { logger } from "@/lib/log";

export type PageRead<T> = { ok: true; value: T } | { ok: false; message: string };

/**
 * A page's database reads. When the database itself fails (PostgreSQL down, SQLite locked), the
 * page shows what happened and what to do instead of Next's generic error page; anything else,
 * including Next's redirects, is thrown as before.
 */
export async function readForPage<T>(what: string, read: () => Promise<T>): Promise<PageRead<T>> {
  try {
    return { ok: true, value: await read() };
  } catch (err) {
    const failure = storageFailure(err);
    if (!failure) throw err;
    logger().error({ err }, `${what} could not be read: ${failure.message}`);
    return { ok: false, message: failure.message };
  }
}
