import path from "node:path";
import { fileURLToPath } from "node:url";

// What every benchmark reads from its environment, read one way.

/** The repository's root. */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** A whole number of at least 1 from the environment, else the fallback; anything else stops the benchmark (exit 2). */
export function positiveInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1) {
    process.stderr.write(`bench: ${name} must be a whole number of at least 1 (got "${raw}")\n`);
    process.exit(2);
  }
  return n;
}

/** A PostgreSQL role that may create databases, for the benchmarks' own throwaway databases. */
export const POSTGRES_ADMIN_URL = process.env.BENCH_POSTGRES_URL || process.env.PORTCULLIS_TEST_POSTGRES_URL || "postgres://postgres@127.0.0.1:5432/postgres";
