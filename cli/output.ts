// Output and exit codes shared by every command. Light on purpose: nothing here loads the database
// or the PKI code, so that `portcullis --help` starts in a fraction of a second.
import { InvalidArgumentError } from "commander";

/** Exit codes scripts can rely on (also listed at the end of `portcullis --help`). */
export const EXIT = { ok: 0, error: 1, usage: 2, notFound: 3, denied: 4 } as const;

export const EXIT_CODES_HELP = `
Exit codes:
  0  success
  1  error: the input was refused (validation, conflict) or the operation failed
  2  usage: unknown command or option, a missing or bad argument, a bad environment variable
  3  not found: no certificate, listener, user, token, credential, account or webhook with that id or name
  4  denied: not allowed

With --json, standard output carries only JSON (one value, or one object per line for
\`events --follow\`); messages and warnings go to standard error.`;

/** A bad command line: exit code 2, like commander's own usage errors. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

export function printJson(value: unknown) {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

export function warn(message: string) {
  process.stderr.write(`portcullis: warning: ${message}\n`);
}

/** Columns padded to the widest cell; the last column is not padded. */
export function printTable(header: string[], rows: string[][]) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const lines = [header, ...rows].map((r) => r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i]!))).join("  ").trimEnd());
  process.stdout.write(`${lines.join("\n")}\n`);
}

/** What every `list` command prints: the rows as JSON with --json, else `empty` for none, else a table. */
export function printList<T>(rows: T[], json: boolean | undefined, empty: string, header: string[], toRow: (row: T) => string[]) {
  if (json) return printJson(rows);
  if (!rows.length) return void process.stdout.write(`${empty}\n`);
  printTable(header, rows.map(toRow));
}

/** "Label   value" lines, as `cert info` and `listener info` print them. */
export function printFields(fields: [string, string][]) {
  const width = Math.max(...fields.map(([k]) => k.length));
  process.stdout.write(`${fields.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join("\n")}\n`);
}

export function dash(value: string | number | null | undefined): string {
  return value === null || value === undefined || value === "" ? "—" : String(value);
}

/** A whole number option (`--limit 20`), checked when the command line is parsed. */
export function wholeNumber(name: string, min: number, max: number) {
  return (value: string) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${name} must be a whole number between ${min} and ${max} (got "${value}")`);
    }
    return n;
  };
}

/** Repeatable option: `--hostname a --hostname b`. */
export function collect(value: string, previous: string[] = []) {
  return [...previous, value];
}
