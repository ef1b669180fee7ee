import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../db/testing";
import { AppError } from "../errors";
import { nowIso } from "../ids";
import { listEventTypes, recordEvent } from "./index";
import { checkEventListQuery, listEventPage, parseEventListQuery, parseLastEventId } from "./query";

describe("the events query string", () => {
  it("accepts filters and paging, and treats empty values as absent", () => {
    const query = parseEventListQuery(new URLSearchParams("type=tls.issued&severity=error&certificate=Shop&before=10&limit=20&after="));
    expect(query).toMatchObject({ type: "tls.issued", severity: "error", certificate: "Shop", before: 10, limit: 20 });
    expect(query.after).toBeUndefined();
    expect(parseEventListQuery(new URLSearchParams("")).limit).toBe(100);
  });

  it("refuses bad values with a message that names each one", () => {
    const bad = checkEventListQuery(new URLSearchParams("severity=loud&before=-1&after=abc&limit=501&type=tls issued"));
    expect(bad.ok).toBe(false);
    const message = (bad as { message: string }).message;
    expect(message).toContain("severity: severity must be one of info, warning, error");
    expect(message).toContain("before: before must be 0 or more");
    expect(message).toContain("after: after must be an event id");
    expect(message).toContain("limit: limit must be between 1 and 500");
    expect(message).toContain("type: type may only contain");
    expect(() => parseEventListQuery(new URLSearchParams("order=sideways"))).toThrow(AppError);
    expect(() => parseLastEventId("12abc")).toThrow("Last-Event-ID must be an event id");
    expect(parseLastEventId(" 42 ")).toBe(42);
    expect(parseLastEventId(null)).toBeUndefined();
  });
});

describe.each(TEST_ENGINES)("event pages on %s", (kind) => {
  let t: TestDatabase;
  const certificateId = "crt_pagetest";

  beforeAll(async () => {
    t = await createTestDatabase(kind);
    const at = nowIso();
    await t.db
      .insertInto("certificates")
      .values({ id: certificateId, name: "Paged", source: "upload", status: "active", domains: "[]", key_type: "ecdsa-p256", validity_days: null, chain_pem: null, sealed_key: null, subject: null, issuer: null, serial: null, fingerprint_sha256: null, not_before: null, not_after: null, renew_at: null, renew_reason: null, next_attempt_at: null, attempts: 0, last_error: null, lease_owner: null, lease_expires_at: null, created_by: null, created_at: at, updated_at: at })
      .execute();
    for (let i = 1; i <= 7; i++) {
      await recordEvent(t.db, { type: i % 2 ? "test.odd" : "test.even", certificateId: i <= 5 ? certificateId : "crt_gone", severity: i === 3 ? "error" : "info", message: `event ${i}` });
    }
  });
  afterAll(() => t?.destroy());

  it("pages newest first with nextBefore until the oldest, and follows oldest first with a cursor", async () => {
    const first = await listEventPage(t.db, { order: "newest", limit: 3 });
    expect(first.items.map((e) => e.message)).toEqual(["event 7", "event 6", "event 5"]);
    expect(first.cursor).toBe(first.items[0].id);
    const second = await listEventPage(t.db, { before: first.nextBefore!, limit: 3 });
    expect(second.items.map((e) => e.message)).toEqual(["event 4", "event 3", "event 2"]);
    const last = await listEventPage(t.db, { before: second.nextBefore!, limit: 3 });
    expect(last.items.map((e) => e.message)).toEqual(["event 1"]);
    expect(last.nextBefore).toBeNull();

    const follow = await listEventPage(t.db, { after: first.items[1].id, limit: 100 });
    expect(follow.items.map((e) => e.message)).toEqual(["event 7"]);
    expect(follow.cursor).toBe(first.items[0].id);
    const nothingNew = await listEventPage(t.db, { after: follow.cursor!, limit: 100 });
    expect(nothingNew).toMatchObject({ items: [], cursor: follow.cursor });
  });

  it("filters by certificate name or id, type and severity, and names the certificate", async () => {
    const byName = await listEventPage(t.db, { certificate: "Paged", order: "newest", limit: 50 });
    expect(byName.items.map((e) => e.message)).toEqual(["event 5", "event 4", "event 3", "event 2", "event 1"]);
    expect(byName.items[0]).toMatchObject({ certificateId, certificateName: "Paged" });
    const byId = await listEventPage(t.db, { certificate: certificateId, type: "test.odd", limit: 50 });
    expect(byId.items.map((e) => e.message)).toEqual(["event 1", "event 3", "event 5"]);
    const deleted = await listEventPage(t.db, { certificate: "crt_gone", limit: 50 });
    expect(deleted.items.map((e) => [e.message, e.certificateName])).toEqual([["event 6", null], ["event 7", null]]);
    expect((await listEventPage(t.db, { severity: "error", limit: 50 })).items.map((e) => e.message)).toEqual(["event 3"]);
    expect(await listEventTypes(t.db)).toEqual(["test.even", "test.odd"]);
  });
});
