import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeCloudflare, type FakeCloudflare } from "../../tests/support/fake-cloudflare";
import { findFreePort } from "../net";
import { CloudflareProvider } from "./cloudflare";
import { runVerification, tokenProblem } from "./credentials";
import { DnsProblem } from "./provider";

// The real `cloudflare` SDK against the local fake API: envelopes, pagination and Cloudflare's
// error codes turned into plain words with the raw code beside them.

const GOOD = "good-token-aaaaaaaaaaaaaaaaaaaaaaaaaaaa1234";
const READ_ONLY = "read-only-token-bbbbbbbbbbbbbbbbbbbbbbbb";
const NO_ZONES = "no-zones-token-cccccccccccccccccccccccccc";
const EXPIRED = "expired-token-dddddddddddddddddddddddddddd";
const SILENT = "no-permission-list-eeeeeeeeeeeeeeeeeeeeeee";

async function problemOf(p: Promise<unknown>): Promise<DnsProblem> {
  try {
    await p;
  } catch (err) {
    if (err instanceof DnsProblem) return err;
    throw err;
  }
  throw new Error("expected a DnsProblem");
}

describe("Cloudflare through the SDK against the fake API", () => {
  let fake: FakeCloudflare;
  const cf = (token = GOOD) => new CloudflareProvider(token, { apiUrl: fake.url });

  beforeAll(async () => {
    fake = await startFakeCloudflare({
      zones: [{ name: "example.test" }, { name: "other.test" }, { name: "pending.test", status: "pending" }, ...Array.from({ length: 118 }, (_, i) => ({ name: `zone${String(i).padStart(3, "0")}.test` }))],
      tokens: {
        [GOOD]: { read: "all", edit: "all" },
        [READ_ONLY]: { read: ["example.test", "other.test"], edit: [] },
        [NO_ZONES]: { read: [], edit: [] },
        [EXPIRED]: { status: "expired", expiresOn: "2024-01-01T00:00:00Z" },
        [SILENT]: { read: ["example.test"], edit: ["example.test"], reportPermissions: false },
      },
    });
  });
  afterAll(() => fake?.stop());

  it("verifies an active token and lists every zone across pages (the SDK stops at an empty page)", async () => {
    const before = fake.requests.length;
    const v = await runVerification(cf());
    expect(v.ok).toBe(true);
    expect(v.tokenStatus).toBe("active");
    expect(v.zones).toHaveLength(121);
    expect(v.zones.find((z) => z.name === "example.test")).toMatchObject({ canEditDns: true, status: "active" });
    expect(v.summary).toMatch(/^The token is active and may edit DNS records in 121 zones: example\.test, other\.test, pending\.test/);
    expect(v.problems.join(" ")).toContain("pending.test is not active at Cloudflare (pending)");
    const zonePages = fake.requests.slice(before).filter((r) => r.path === "/zones");
    expect(zonePages.map((r) => new URLSearchParams(r.query).get("page") ?? "1")).toEqual(["1", "2", "3", "4"]);
  });

  it("says what is missing: a read-only token, a token with no zones, an expired token", async () => {
    const readOnly = await runVerification(cf(READ_ONLY));
    expect(readOnly.ok).toBe(false);
    expect(readOnly.summary).toBe("The token is active and can read 2 zones, but may edit DNS records in none");
    expect(readOnly.problems[0]).toContain("Zone → DNS → Edit");

    const none = await runVerification(cf(NO_ZONES));
    expect(none).toMatchObject({ ok: false, summary: "The token is active, but it can read no zones" });
    expect(none.problems[0]).toContain("Zone → Zone → Read and Zone → DNS → Edit");

    const expired = await runVerification(cf(EXPIRED));
    expect(expired).toMatchObject({ ok: false, tokenStatus: "expired", summary: "The Cloudflare token has expired (on 2024-01-01)" });

    const silent = await runVerification(cf(SILENT));
    expect(silent.ok).toBe(true);
    expect(silent.zones).toEqual([expect.objectContaining({ name: "example.test", canEditDns: null })]);
    expect(silent.problems[0]).toContain("press Test on a zone");
  });

  it("a token Cloudflare rejects: plain words, the raw code beside them", async () => {
    const v = await runVerification(cf("unknown-token-ffffffffffffffffffffffffff"));
    expect(v).toMatchObject({ ok: false, tokenStatus: "rejected", transient: false, summary: "Cloudflare rejected the API token: it is invalid, expired or was deleted", raw: "Cloudflare 1000: Invalid API Token (HTTP 401)" });
    expect(v.problems[0]).toContain("Zone → Zone → Read and Zone → DNS → Edit");
    const p = await problemOf(cf("unknown-token-ffffffffffffffffffffffffff").listZones());
    expect(p.code).toBe("token_invalid");
    expect(p.raw).toBe("Cloudflare 9109: Invalid access token (HTTP 401)");
    // A token that is not even well-formed: 6003 with 6111 in its chain.
    const bad = await problemOf(cf("bad token with spaces but long enough").verifyToken());
    expect(bad.code).toBe("token_invalid");
    expect(bad.summary).toBe("Cloudflare did not accept the API token's format");
    expect(bad.raw).toBe("Cloudflare 6003: Invalid request headers; 6111: Invalid format for Authorization header (HTTP 400)");
  });

  it("creates, finds, shares and deletes TXT records; an identical record is 81058", async () => {
    const zone = (await cf().findZone("example.test"))!;
    expect(zone.name).toBe("example.test");
    expect(await cf().findZone("nowhere.test")).toBeUndefined();
    const id = await cf().createTxt(zone, "_acme-challenge.www.example.test", "value-1");
    const again = await problemOf(cf().createTxt(zone, "_acme-challenge.www.example.test", "value-1"));
    expect(again.code).toBe("record_exists");
    expect(again.raw).toBe("Cloudflare 81058: An identical record already exists. (HTTP 400)");
    expect(await cf().findTxt(zone, "_acme-challenge.www.example.test", "value-1")).toEqual([id]);
    expect(await cf().findTxt(zone, "_acme-challenge.www.example.test", "value-2")).toEqual([]);
    await cf().deleteTxt(zone, id);
    await cf().deleteTxt(zone, id); // already gone: not an error
    expect(fake.records()).toEqual([]);
  });

  it("a token without DNS:Edit: 403 10000 names the permission and the zone", async () => {
    const zone = (await cf(READ_ONLY).findZone("example.test"))!;
    const p = await problemOf(cf(READ_ONLY).createTxt(zone, "_acme-challenge.example.test", "v"));
    expect(p.code).toBe("permission");
    expect(p.summary).toBe("the Cloudflare token is not allowed to do this in the zone example.test (creating the TXT record _acme-challenge.example.test in the zone example.test)");
    expect(p.fix).toContain("Zone → DNS → Edit for example.test");
    expect(p.raw).toBe("Cloudflare 10000: Authentication error (HTTP 403)");
  });

  it("429 and 5xx are retryable, with Retry-After; an unreachable API says where", async () => {
    fake.failNext(1, { status: 429, retryAfter: "30" });
    const limited = await problemOf(cf().findZone("example.test"));
    expect(limited.code).toBe("rate_limited");
    expect(limited.retryable).toBe(true);
    expect(limited.opts.retryAfter!.getTime()).toBeGreaterThan(Date.now() + 25_000);
    expect(limited.raw).toBe("Cloudflare 10013: Rate limited. Please wait and consider throttling your request speed (HTTP 429)");
    expect(limited.summary).toMatch(/^Cloudflare rate limited the requests while looking up the zone example\.test until \d\d:\d\d:\d\d UTC$/);

    fake.failNext(1, { status: 503, code: 10000, message: "Service unavailable" });
    const outage = await problemOf(cf().listZones());
    expect(outage).toMatchObject({ code: "provider_error", summary: "Cloudflare had an internal error (HTTP 503) while listing the zones the token can read" });
    expect(outage.retryable).toBe(true);

    const closed = await findFreePort();
    const unreachable = await problemOf(new CloudflareProvider(GOOD, { apiUrl: `http://127.0.0.1:${closed}/client/v4` }).verifyToken());
    expect(unreachable.code).toBe("unreachable");
    expect(unreachable.summary).toBe(`could not reach the Cloudflare API at 127.0.0.1:${closed} while checking the API token: connection refused`);
  });

  it("never puts the token in a message", async () => {
    const secret = "unknown-token-9999999999999999999999secret";
    const p = await problemOf(cf(secret).listZones());
    expect(JSON.stringify({ m: p.message, s: p.summary, f: p.fix, r: p.raw })).not.toContain(secret);
  });
});

describe("a pasted token's form", () => {
  it.each([
    ["", /empty/],
    ["Bearer abcdefghijklmnopqrstuvwxyz0123456789ABCD", /without "Bearer "/],
    ["abcdefghij klmnopqrstuvwxyz0123456789ABCD", /spaces or line breaks/],
    ["0123456789abcdef0123456789abcdef01234", /Global API Key/],
    ["v1.0-abcdefabcdefabcdefabcdef-abcdef", /Origin CA key/],
    ["short", /too short \(5 characters\)/],
    ["abcdefghijklmnopqrstuvwxyz0123456789ABC!", /characters an API token does not have/],
  ])("%j is refused before anyone is asked", (token, message) => {
    expect(tokenProblem(token)).toMatch(message);
  });
  it("a real-looking token passes", () => {
    expect(tokenProblem("Zx9_aB3-cD4eF5gH6iJ7kL8mN9oP0qR1sT2uV3wX")).toBeUndefined();
  });
});
