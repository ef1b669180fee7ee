// Helpers for the CLI tests: run the real `portcullis` binary against a test database.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Keyring, sealingKeyFromSecret } from "../lib/crypto/seal";
import { createTestDatabase, type TestDatabase } from "../lib/db/testing";
import type { DatabaseKind } from "../lib/db";

const root = path.resolve(import.meta.dirname, "..");
export const bin = path.join(root, "bin/portcullis.mjs");

export type Run = { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string };

export function runCli(args: string[], env: Record<string, string>, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawnCli(args, env);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d));
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    child.on("exit", (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.end(input ?? "");
  });
}

export function spawnCli(args: string[], env: Record<string, string>): ChildProcessWithoutNullStreams {
  return spawn(process.execPath, [bin, ...args], { env: { PATH: process.env.PATH ?? "", ...env } as unknown as NodeJS.ProcessEnv });
}

export type CliWorld = {
  t: TestDatabase;
  env: Record<string, string>;
  keyring: Keyring;
  dir: string;
  destroy: () => Promise<void>;
};

/** A migrated test database of this engine, and the environment that points the CLI at it. */
export async function createCliWorld(kind: DatabaseKind): Promise<CliWorld> {
  const t = await createTestDatabase(kind);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-cli-"));
  const secret = "cli-test-secret-".padEnd(48, "x");
  const env = { PORTCULLIS_DATA_DIR: dir, DATABASE_URL: kind === "sqlite" ? `sqlite:${t.url}` : t.url, PORTCULLIS_SECRET: secret, PORTCULLIS_LOG_LEVEL: "info" };
  const keyring = new Keyring(sealingKeyFromSecret(secret));
  return {
    t,
    env,
    keyring,
    dir,
    destroy: async () => {
      await t.destroy();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Collects a child's stdout by line; `next` waits for the next line (after the last one returned) that matches. */
export function lineReader(child: ChildProcessWithoutNullStreams) {
  const lines: string[] = [];
  let partial = "";
  let position = 0;
  const waiters = new Set<() => void>();
  child.stdout.on("data", (d: Buffer) => {
    const parts = (partial + d.toString("utf8")).split("\n");
    partial = parts.pop() ?? "";
    lines.push(...parts);
    for (const wake of [...waiters]) wake();
  });
  return {
    lines,
    next(match: (line: string) => boolean, timeoutMs = 10_000): Promise<string> {
      return new Promise((resolve, reject) => {
        const scan = () => {
          while (position < lines.length) {
            const line = lines[position++]!;
            if (match(line)) {
              waiters.delete(scan);
              clearTimeout(timer);
              resolve(line);
              return;
            }
          }
        };
        const timer = setTimeout(() => {
          waiters.delete(scan);
          reject(new Error(`no matching line within ${timeoutMs} ms; stdout so far:\n${lines.join("\n").slice(-3000)}`));
        }, timeoutMs);
        waiters.add(scan);
        scan();
      });
    },
  };
}
