import fs from "node:fs";
import { STATE_FILE, type E2EState } from "./state";

export default async function globalTeardown() {
  if (!fs.existsSync(STATE_FILE)) return;
  const state = JSON.parse(fs.readFileSync(STATE_FILE, "utf8")) as E2EState;
  try {
    // The whole process group: `serve` and its console and worker children, as Ctrl-C would.
    process.kill(-state.pid, "SIGTERM");
  } catch {
    // already gone
  }
  for (let i = 0; i < 50; i++) {
    try {
      process.kill(state.pid, 0);
      await new Promise((r) => setTimeout(r, 100));
    } catch {
      break;
    }
  }
  if (!process.env.PORTCULLIS_E2E_KEEP) fs.rmSync(state.dataDir, { recursive: true, force: true });
  fs.rmSync(STATE_FILE, { force: true });
}
