import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Db } from "../db/connection";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../db/testing";
import { eventFeedStats, followEvents, subscribeEvents } from "./feed";
import { EVENTS_CHANNEL, latestEventId, listEvents, recordEvent, type EventView } from "./index";
import { eventStream } from "./stream";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(fn: () => T | Promise<T>, ok: (v: T) => boolean, timeoutMs = 3000): Promise<T> {
  const start = Date.now();
  for (;;) {
    const value = await fn();
    if (ok(value)) return value;
    if (Date.now() - start > timeoutMs) throw new Error(`condition not met within ${timeoutMs} ms; last: ${JSON.stringify(value)}`);
    await sleep(10);
  }
}

/** A follower that collects what it is given. */
function collect(db: Db, after: number, filter?: Parameters<typeof followEvents>[1]["filter"]) {
  const seen: EventView[] = [];
  const stop = followEvents(db, { after, filter, onEvents: (events) => void seen.push(...events) });
  return { seen, stop };
}

const percentile = (values: number[], p: number) => [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor((values.length * p) / 100))];

describe.each(TEST_ENGINES)("the change feed on %s", (kind) => {
  let t: TestDatabase;
  /** A second, independent connection (pool) to the same database: "another process". */
  let other: Db;

  beforeAll(async () => {
    t = await createTestDatabase(kind);
    other = openDatabase(kind === "sqlite" ? { kind, file: t.url } : { kind, url: t.url }).db;
  });
  afterAll(async () => {
    await other?.destroy();
    await t?.destroy();
  });

  const ready = () => waitFor(() => eventFeedStats(t.db).mode, (m) => m === (kind === "postgres" ? "listen" : "poll"));

  it("wakes a subscriber within a second of an event recorded through another connection", async () => {
    const { seen, stop } = collect(t.db, await latestEventId(t.db));
    try {
      await ready();
      const latencies: number[] = [];
      for (let i = 0; i < 12; i++) {
        const started = performance.now();
        const id = await recordEvent(other, { type: "test.latency", message: `event ${i}` });
        await waitFor(() => seen.some((e) => e.id === id), Boolean, 2000);
        latencies.push(performance.now() - started);
        await sleep(Math.random() * 200); // not in step with the poller
      }
      console.log(`${kind}: feed latency over ${latencies.length} events: median ${percentile(latencies, 50).toFixed(1)} ms, p90 ${percentile(latencies, 90).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms`);
      expect(Math.max(...latencies)).toBeLessThan(1000);
      expect(seen.map((e) => e.message)).toEqual(Array.from({ length: 12 }, (_, i) => `event ${i}`));
    } finally {
      stop();
    }
  });

  it("stops polling and listening when the last subscriber leaves, and starts again for the next", async () => {
    const wakes: number[] = [];
    const first = subscribeEvents(t.db, () => wakes.push(1));
    const second = subscribeEvents(t.db, () => {});
    await ready();
    expect(eventFeedStats(t.db).subscribers).toBe(2);
    first();
    first(); // twice is harmless
    expect(eventFeedStats(t.db)).toMatchObject({ subscribers: 1 });
    second();
    expect(eventFeedStats(t.db)).toMatchObject({ mode: "idle", subscribers: 0 });
    const polls = eventFeedStats(t.db).polls;
    const woken = wakes.length;
    await recordEvent(other, { type: "test.unheard", message: "nobody listens" });
    await sleep(600);
    expect(eventFeedStats(t.db).polls).toBe(polls);
    expect(wakes.length).toBe(woken);
    if (kind === "postgres") {
      const admin = new pg.Client({ connectionString: t.url });
      await admin.connect();
      try {
        const listening = await waitFor(
          async () => (await admin.query("select count(*)::int as n from pg_stat_activity where datname = current_database() and query ilike 'LISTEN%' and state <> 'disabled'")).rows[0].n as number,
          (n) => n === 0,
        );
        expect(listening).toBe(0);
      } finally {
        await admin.end();
      }
    }
    const { seen, stop } = collect(t.db, await latestEventId(t.db));
    try {
      await ready();
      const id = await recordEvent(other, { type: "test.heard", message: "heard again" });
      await waitFor(() => seen.some((e) => e.id === id), Boolean, 1000);
    } finally {
      stop();
    }
  });

  it("delivers only what the filter asks for, resumes after a cursor, and catches up at start", async () => {
    const before = await latestEventId(t.db);
    await recordEvent(other, { type: "test.before", certificateId: "crt_a", message: "recorded before the follower started" });
    const all = collect(t.db, before);
    const onlyA = collect(t.db, before, { certificateId: "crt_a", severity: "error" });
    try {
      await waitFor(() => all.seen.length, (n) => n === 1);
      await recordEvent(other, { type: "test.filtered", certificateId: "crt_b", severity: "error", message: "b" });
      await recordEvent(other, { type: "test.filtered", certificateId: "crt_a", severity: "info", message: "a info" });
      await recordEvent(other, { type: "test.filtered", certificateId: "crt_a", severity: "error", message: "a error", status: "failed" });
      await waitFor(() => all.seen.length, (n) => n === 4, 2000);
      await waitFor(() => onlyA.seen.length, (n) => n === 1, 2000);
      expect(onlyA.seen[0]).toMatchObject({ message: "a error", certificateId: "crt_a", detail: { status: "failed" } });
      await sleep(300);
      expect(onlyA.seen).toHaveLength(1);
      expect(all.seen.map((e) => e.id)).toEqual([...all.seen.map((e) => e.id)].sort((a, b) => a - b));
    } finally {
      all.stop();
      onlyA.stop();
    }
  });

  it("streams Server-Sent Events: retry, a ready cursor, one message per event, heartbeats, and stops on abort", async () => {
    const after = await latestEventId(t.db);
    const abort = new AbortController();
    const stream = eventStream(t.db, { after, filter: { type: "test.sse" }, signal: abort.signal, heartbeatMs: 100 });
    const reader = stream.getReader();
    const decoder = new TextDecoder();
    let text = "";
    const readUntil = async (pattern: RegExp) => {
      const started = Date.now();
      while (!pattern.test(text)) {
        if (Date.now() - started > 3000) throw new Error(`stream did not show ${pattern} within 3 s:\n${text}`);
        const { value, done } = await reader.read();
        if (done) throw new Error(`stream ended before ${pattern}:\n${text}`);
        text += decoder.decode(value, { stream: true });
      }
    };
    await readUntil(/event: ready/);
    expect(text).toContain("retry: 2000\n\n");
    expect(text).toContain(`id: ${after}\nevent: ready\ndata: {"cursor":${after}}\n\n`);
    await recordEvent(other, { type: "test.other", message: "not for this stream" });
    const id = await recordEvent(other, { type: "test.sse", certificateId: "crt_sse", message: 'line one\nline two "quoted"' });
    await readUntil(/event: event\n/);
    const message = text.slice(text.indexOf(`id: ${id}\n`));
    expect(message).toMatch(new RegExp(`^id: ${id}\\nevent: event\\ndata: [^\\n]+\\n\\n`));
    const data = JSON.parse(message.split("\n")[2].slice("data: ".length)) as EventView;
    expect(data).toMatchObject({ id, type: "test.sse", certificateId: "crt_sse", message: 'line one\nline two "quoted"' });
    expect(text).not.toContain("not for this stream");
    await readUntil(/: heartbeat\n\n/);
    expect(eventFeedStats(t.db).subscribers).toBe(1);
    abort.abort();
    await waitFor(async () => (await reader.read()).done, Boolean);
    expect(eventFeedStats(t.db)).toMatchObject({ mode: "idle", subscribers: 0 });
  });

  it("ends the stream when the caller loses access", async () => {
    let allowed = true;
    const stream = eventStream(t.db, { after: 0, signal: new AbortController().signal, heartbeatMs: 50, stillAllowed: async () => allowed });
    const reader = stream.getReader();
    await reader.read();
    allowed = false;
    await waitFor(async () => (await reader.read()).done, Boolean);
    expect(eventFeedStats(t.db).subscribers).toBe(0);
  });

  if (kind === "postgres") {
    it("survives its LISTEN connection being killed: polls meanwhile, reconnects, and still delivers", async () => {
      const { seen, stop } = collect(t.db, await latestEventId(t.db));
      const admin = new pg.Client({ connectionString: t.url });
      await admin.connect();
      try {
        await ready();
        const connects = eventFeedStats(t.db).connects;
        const killed = await admin.query(
          "select pg_terminate_backend(pid) as killed from pg_stat_activity where datname = current_database() and query = $1 and pid <> pg_backend_pid()",
          [`LISTEN ${EVENTS_CHANNEL}`],
        );
        expect(killed.rows).toEqual([{ killed: true }]);
        const started = performance.now();
        const during = await recordEvent(other, { type: "test.during", message: "recorded right after the kill" });
        await waitFor(() => seen.some((e) => e.id === during), Boolean, 1000);
        console.log(`postgres: event after the LISTEN connection was killed delivered in ${(performance.now() - started).toFixed(1)} ms`);
        await waitFor(() => eventFeedStats(t.db), (s) => s.mode === "listen" && s.connects === connects + 1, 5000);
        const after = await recordEvent(other, { type: "test.after", message: "recorded after the reconnect" });
        await waitFor(() => seen.some((e) => e.id === after), Boolean, 1000);
      } finally {
        await admin.end();
        stop();
      }
    });

    it("delivers an event whose transaction commits after a newer one (ids out of commit order)", async () => {
      const { seen, stop } = collect(t.db, await latestEventId(t.db));
      const trx = await other.startTransaction().execute();
      try {
        await ready();
        const late = await recordEvent(trx, { type: "test.late", message: "committed last" });
        const early = await recordEvent(t.db, { type: "test.early", message: "committed first" });
        expect(early).toBeGreaterThan(late);
        await waitFor(() => seen.some((e) => e.id === early), Boolean, 1000);
        expect(seen.some((e) => e.id === late)).toBe(false);
        await trx.commit().execute();
        await waitFor(() => seen.some((e) => e.id === late), Boolean, 1000);
        expect(seen.filter((e) => e.id === late)).toHaveLength(1);
      } finally {
        stop();
      }
    });
  }

  it("lists newest first with before-paging, and filters by type, severity and certificate", async () => {
    const rows = await listEvents(t.db, { newestFirst: true, limit: 3 });
    expect(rows.map((r) => r.id)).toEqual([...rows.map((r) => r.id)].sort((a, b) => b - a));
    const older = await listEvents(t.db, { newestFirst: true, before: rows[2].id, limit: 3 });
    expect(older[0].id).toBeLessThan(rows[2].id);
    expect((await listEvents(t.db, { type: "test.filtered" })).map((e) => e.message)).toEqual(["b", "a info", "a error"]);
    expect((await listEvents(t.db, { type: "test.filtered", severity: "error", certificateId: "crt_a" })).map((e) => e.message)).toEqual(["a error"]);
  });
});
