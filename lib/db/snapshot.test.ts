import { afterEach, describe, expect, it } from "vitest";
import { latestEventId, recordEvent } from "../events";
import { openDatabase, readSnapshot, type Db } from "./connection";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "./testing";

// readSnapshot is what lets a page read a certificate's status and "the newest event id" as of one moment
// while the worker writes from another process: a write committed between the two reads is in neither.

describe.each(TEST_ENGINES)("readSnapshot on %s", (kind) => {
  let test: TestDatabase | undefined;
  let other: Db | undefined;
  afterEach(async () => {
    await other?.destroy();
    await test?.destroy();
    other = test = undefined;
  });

  async function setUp() {
    test = await createTestDatabase(kind);
    // Another connection (another process, as the worker is), on the same database.
    other = openDatabase(kind === "sqlite" ? { kind, file: test.url } : { kind, url: test.url }).db;
    await recordEvent(test.db, { type: "test.first", message: "first" });
    return { db: test.db, writer: other };
  }

  it("keeps later reads on the snapshot of the first, while another connection commits", async () => {
    const { db, writer } = await setUp();
    const before = await latestEventId(db);
    const seen = await readSnapshot(db, async (trx) => {
      const first = await latestEventId(trx);
      await recordEvent(writer, { type: "test.second", message: "committed between the two reads" });
      return { first, second: await latestEventId(trx) };
    });
    expect(seen).toEqual({ first: before, second: before });
    expect(await latestEventId(db)).toBeGreaterThan(before);
  });

  it("(the control) reads outside one see the other connection's commit", async () => {
    const { db, writer } = await setUp();
    const first = await latestEventId(db);
    await recordEvent(writer, { type: "test.second", message: "committed between the two reads" });
    expect(await latestEventId(db)).toBeGreaterThan(first);
  });
});
