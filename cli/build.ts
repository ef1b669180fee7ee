import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";

const SOURCES = ["app", "components", "lib", "public", "auth.ts", "auth.config.ts", "proxy.ts", "next.config.ts", "package.json", "postcss.config.mjs"];

function newestMtime(target: string): number {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(target);
  } catch {
    return 0;
  }
  // Tests do not go into the build; editing one must not trigger a rebuild.
  if (!stat.isDirectory()) return /\.test\.tsx?$/.test(target) ? 0 : stat.mtimeMs;
  let newest = stat.mtimeMs;
  for (const entry of fs.readdirSync(target)) {
    if (entry === "node_modules" || entry.startsWith(".")) continue;
    newest = Math.max(newest, newestMtime(path.join(target, entry)));
  }
  return newest;
}

/** True when there is no production build, or a source file changed after it. */
export function needsBuild(root: string): boolean {
  const buildId = path.join(root, ".next", "BUILD_ID");
  if (!fs.existsSync(buildId)) return true;
  const built = fs.statSync(buildId).mtimeMs;
  return SOURCES.some((s) => newestMtime(path.join(root, s)) > built);
}

/** Builds the console with `next build` when needed; the first `npm start` pays for it once. */
export function ensureBuild(root: string) {
  // Development: several people editing one checkout run the build they made, not a fresh one.
  if (process.env.PORTCULLIS_SKIP_BUILD_CHECK === "1" && fs.existsSync(path.join(root, ".next", "BUILD_ID"))) return;
  if (!needsBuild(root)) return;
  process.stdout.write("Building the console (first start, or the sources changed)…\n");
  const nextBin = createRequire(path.join(root, "package.json")).resolve("next/dist/bin/next");
  const result = spawnSync(process.execPath, [nextBin, "build"], {
    cwd: root,
    stdio: "inherit",
    env: { ...process.env, NEXT_TELEMETRY_DISABLED: "1" },
  });
  if (result.status !== 0) {
    process.stderr.write("The console build failed; see the output above.\n");
    process.exit(result.status ?? 1);
  }
}
