import fs from "node:fs";
import path from "node:path";

export const STATE_FILE = path.resolve(import.meta.dirname, "..", ".tmp", "e2e-state.json");
fs.mkdirSync(path.dirname(STATE_FILE), { recursive: true });

export type E2EState = { baseURL: string; setupUrl: string; dataDir: string; pid: number; healthPort: number; logFile: string };

export function readState(): E2EState {
  return JSON.parse(fs.readFileSync(STATE_FILE, "utf8")) as E2EState;
}
