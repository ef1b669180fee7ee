import type { Command } from "commander";
import type { EventView } from "../lib/events";
import type { Db } from "../lib/db";
import type { EventListQuery } from "../lib/events/query";

type EventQueryFilter = Pick<EventListQuery, "type" | "severity" | "certificate" | "listener">;
import { logToStandardError } from "./context";
import { UsageError, wholeNumber } from "./output";

type EventsOptions = {
  type?: string;
  severity?: string;
  certificate?: string;
  listener?: string;
  limit?: number;
  after?: number;
  follow?: boolean;
  json?: boolean;
};

// Without --follow: the newest 50 (or --limit) matching events; with --follow: the newest 10, then live.
const DEFAULT_LIMIT = 50;
const DEFAULT_FOLLOW_HISTORY = 10;

function humanLine(e: EventView): string {
  const at = e.at.replace("T", " ").replace(/\.\d+Z$/, "Z");
  const subject = e.certificateName ?? e.certificateId ?? e.listenerName ?? e.listenerId ?? "-";
  return `${String(e.id).padStart(6)}  ${at}  ${e.severity.padEnd(7)}  ${e.type.padEnd(24)}  ${subject}  ${e.message}`;
}

/** --listener takes a name too: the library filters by id. */
async function resolveListener(db: Db, query: EventQueryFilter): Promise<EventQueryFilter> {
  if (!query.listener) return query;
  const { getListener, listListeners } = await import("../lib/listeners");
  if (await getListener(db, query.listener)) return query;
  const byName = (await listListeners(db)).find((l) => l.name === query.listener);
  // An unknown value is taken as the id of a deleted listener, whose events remain (as --certificate does).
  return byName ? { ...query, listener: byName.id } : query;
}

/** Writes one line; resolves once the line is handed to the OS, so that a slow reader slows the feed. */
function writeLine(line: string): Promise<void> {
  return new Promise((resolve) => {
    if (process.stdout.write(`${line}\n`)) resolve();
    else process.stdout.once("drain", resolve);
  });
}

export function addEventsCommand(program: Command) {
  program
    .command("events")
    .description("list recent events, oldest first; --follow keeps printing new ones as they happen until Ctrl-C")
    .option("--type <type>", "only this type, like tls.issued or tls.renewal_failed")
    .option("--severity <severity>", "only info, warning or error")
    .option("--certificate <idOrName>", "only events of this certificate")
    .option("--listener <idOrName>", "only events of this listener")
    .option("--limit <n>", `how many of the newest to show (1-500; default ${DEFAULT_LIMIT}, ${DEFAULT_FOLLOW_HISTORY} with --follow)`, wholeNumber("--limit", 1, 500))
    .option("--after <id>", "every event after this event id instead (oldest first, up to --limit)", wholeNumber("--after", 0, Number.MAX_SAFE_INTEGER))
    .option("-f, --follow", "keep printing new events as they are recorded (any process, SQLite or PostgreSQL) until interrupted")
    .option("--json", "print JSON: an array, or with --follow one JSON object per line (NDJSON)")
    .addHelpText("after", "\nExamples:\n  portcullis events --severity error --limit 20\n  portcullis events --follow --json | jq -c 'select(.type == \"tls.renewal_failed\")'\n  portcullis events --after 1200 --json   # resume from the last id you saw")
    .action(async (opts: EventsOptions) => {
      await logToStandardError();
      const { eventFilterSchema } = await import("../lib/events/query");
      const filter = eventFilterSchema.safeParse({ type: opts.type, severity: opts.severity, certificate: opts.certificate, listener: opts.listener });
      if (!filter.success) {
        throw new UsageError(filter.error.issues.map((i) => `--${String(i.path[0])}: ${i.message}`).join("; "));
      }
      if (opts.follow) return follow(opts, filter.data);
      const { withDatabase } = await import("./context");
      const { listEventPage } = await import("../lib/events/query");
      const items = await withDatabase(async ({ db }) => {
        const limit = opts.limit ?? DEFAULT_LIMIT;
        const query = await resolveListener(db, filter.data);
        if (opts.after !== undefined) return (await listEventPage(db, { ...query, after: opts.after, limit })).items;
        return (await listEventPage(db, { ...query, order: "newest", limit })).items.reverse();
      });
      if (opts.json) return void process.stdout.write(`${JSON.stringify(items, null, 2)}\n`);
      if (!items.length) return void process.stdout.write("no events\n");
      process.stdout.write(`${items.map(humanLine).join("\n")}\n`);
    });
}

async function follow(opts: EventsOptions, given: EventQueryFilter) {
  const [{ loadConfigOrExit }, { prepareProcess }, { followEvents, latestEventId }, { listEventPage, resolveEventFilter }] = await Promise.all([
    import("../lib/config"),
    import("../lib/runtime"),
    import("../lib/events/feed"),
    import("../lib/events/query"),
  ]);
  const { db } = await prepareProcess(loadConfigOrExit(), undefined, { waitForServer: false });
  const print = (e: EventView) => writeLine(opts.json ? JSON.stringify(e) : humanLine(e));

  let stop: (() => void) | undefined;
  let finished = false;
  const finish = async (code: number, message?: string) => {
    if (finished) return;
    finished = true;
    stop?.();
    if (message) process.stderr.write(`portcullis: ${message}\n`);
    await db.destroy().catch(() => {});
    process.exit(code);
  };
  // Interrupted on purpose: a normal end, exit code 0.
  process.once("SIGINT", () => void finish(0));
  process.once("SIGTERM", () => void finish(0));
  // The reader went away (`| head -1`): stop quietly.
  process.stdout.on("error", (err: NodeJS.ErrnoException) => void finish(err.code === "EPIPE" ? 0 : 1));

  const query = await resolveListener(db, given);
  const filter = await resolveEventFilter(db, query);
  let after = opts.after;
  if (after === undefined) {
    // Start at the newest event now; show the last few matching ones before it, as `tail -f` does.
    after = await latestEventId(db);
    const history = await listEventPage(db, { ...query, before: after + 1, order: "newest", limit: opts.limit ?? DEFAULT_FOLLOW_HISTORY });
    for (const e of history.items.reverse()) await print(e);
  }
  if (!opts.json) process.stderr.write("portcullis: following new events; press Ctrl-C to stop\n");
  stop = followEvents(db, {
    after,
    filter,
    onEvents: async (events) => {
      for (const e of events) await print(e);
    },
    onError: (err) => process.stderr.write(`portcullis: reading events failed, retrying on the next change: ${err instanceof Error ? err.message : String(err)}\n`),
    onClose: () => void finish(0),
  });
  // followEvents' timers do not hold the process open; this does, until a signal ends it.
  setInterval(() => {}, 1 << 30);
}
