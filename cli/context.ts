import readline from "node:readline";
import type { Prepared } from "../lib/runtime";

// What a command that works on the database needs: the configuration, a migrated database, the sealing
// keyring. Loaded lazily, so that commands that never touch the database (and --help) start fast.

/** Opens the configured database (migrating it and checking the sealing key), runs fn, closes it. */
export async function withDatabase<T>(fn: (prepared: Prepared) => Promise<T>): Promise<T> {
  await logToStandardError();
  const [{ loadConfigOrExit }, { prepareProcess }] = await Promise.all([import("../lib/config"), import("../lib/runtime")]);
  const config = loadConfigOrExit();
  const prepared = await prepareProcess(config, undefined, { waitForServer: false });
  try {
    return await fn(prepared);
  } finally {
    await prepared.db.destroy();
  }
}

/** Anything the libraries log goes to standard error: standard output is for results (and --json). */
export async function logToStandardError() {
  const holder = globalThis as unknown as { __portcullisLogger?: unknown };
  if (holder.__portcullisLogger) return;
  const { default: pino } = await import("pino");
  holder.__portcullisLogger = pino({ name: "portcullis-cli", level: process.env.PORTCULLIS_LOG_LEVEL || "warn" }, pino.destination(2));
}

/** One line from a prompt without echo (a terminal), or the first line of standard input (a script). */
export async function readSecretLine(prompt: string): Promise<string> {
  if (!process.stdin.isTTY) {
    const rl = readline.createInterface({ input: process.stdin });
    for await (const line of rl) {
      rl.close();
      return line;
    }
    return "";
  }
  process.stderr.write(prompt);
  return new Promise((resolve) => {
    const stdin = process.stdin;
    stdin.setRawMode(true);
    stdin.resume();
    let value = "";
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString("utf8")) {
        if (ch === "\r" || ch === "\n") {
          stdin.setRawMode(false);
          stdin.pause();
          stdin.off("data", onData);
          process.stderr.write("\n");
          resolve(value);
          return;
        }
        if (ch === "\u0003") process.exit(130);
        if (ch === "\u007f") value = value.slice(0, -1);
        else value += ch;
      }
    };
    stdin.on("data", onData);
  });
}

/** Asks yes/no on a terminal; false when there is no terminal to ask on. */
export async function confirm(question: string): Promise<boolean> {
  if (!process.stdin.isTTY) return false;
  const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
  const answer = await new Promise<string>((resolve) => rl.question(`${question} [y/N] `, resolve));
  rl.close();
  return /^y(es)?$/i.test(answer.trim());
}
