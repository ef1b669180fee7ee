// Cleanup that runs on success, on failure and on Ctrl-C, newest first. Shared by the benchmarks.

const cleanups: { label: string; run: () => Promise<void> | void }[] = [];
let interrupted = false;

/** Registers a cleanup; the function returned runs it early, at most once either way. */
export function onCleanup(label: string, fn: () => Promise<void> | void) {
  let done: Promise<void> | undefined;
  const entry = { label, run: () => (done ??= Promise.resolve().then(fn)) };
  cleanups.push(entry);
  return async () => {
    const i = cleanups.indexOf(entry);
    if (i >= 0) cleanups.splice(i, 1);
    await entry.run();
  };
}

export async function cleanupAll() {
  while (cleanups.length) {
    const { label, run } = cleanups.pop()!;
    try {
      await run();
    } catch (err) {
      process.stderr.write(`bench: cleanup "${label}" failed: ${(err as Error).message}\n`);
    }
  }
}

/** True once Ctrl-C or SIGTERM arrived: the run is being torn down. */
export const wasInterrupted = () => interrupted;

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    interrupted = true;
    process.stderr.write(`\nbench: ${signal}, cleaning up…\n`);
    void cleanupAll().finally(() => process.exit(130));
  });
}
