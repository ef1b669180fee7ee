import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_ACTOR } from "../audit";
import { ConfigError, parseConfig } from "../config";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../db/testing";
import { createApiToken, revokeApiToken } from "../tokens";
import { createUser } from "../users";
import { authorizeMetricsRequest, isAllowedAddress } from "./auth";

const METRICS_TOKEN = "metrics-token-0123456789abcdef";

describe.each(TEST_ENGINES)("who may read /metrics, on %s", (kind) => {
  let t: TestDatabase;
  let viewerToken: string;
  let revokedToken: string;

  beforeAll(async () => {
    t = await createTestDatabase(kind);
    const viewer = await createUser(t.db, SYSTEM_ACTOR, { email: "viewer@example.test", password: "correct horse battery", role: "viewer" });
    viewerToken = (await createApiToken(t.db, SYSTEM_ACTOR, { userId: viewer.id, name: "prometheus" })).token;
    const revoked = await createApiToken(t.db, SYSTEM_ACTOR, { userId: viewer.id, name: "old" });
    await revokeApiToken(t.db, SYSTEM_ACTOR, revoked.id);
    revokedToken = revoked.token;
  });
  afterAll(() => t?.destroy());

  const ask = (settings: { token?: string; allow: string[] }, authorization: string | null, clientIp: string | null = "203.0.113.9") =>
    authorizeMetricsRequest(t.db, settings, { authorization, clientIp });

  it("without settings, asks for an API token (401), and accepts one, a viewer's included", async () => {
    const none = await ask({ allow: [] }, null);
    expect(none).toMatchObject({ ok: false, status: 401 });
    expect(!none.ok && none.reason).toContain("Authorization: Bearer");
    expect(await ask({ allow: [] }, `Bearer ${viewerToken}`)).toEqual({ ok: true, via: "api_token" });
    expect(await ask({ allow: [] }, `bearer  ${viewerToken} `)).toEqual({ ok: true, via: "api_token" });
  });

  it("refuses wrong, revoked and malformed tokens with 401 and a reason", async () => {
    for (const header of ["Bearer pct_not-a-real-token", `Bearer ${revokedToken}`, `Bearer ${METRICS_TOKEN}`, "Basic dXNlcjpwYXNz", `Bearer ${viewerToken} extra`]) {
      const result = await ask({ allow: [] }, header);
      expect(result, header).toMatchObject({ ok: false, status: 401 });
      expect(!result.ok && result.reason, header).toMatch(/not valid|must be: Bearer/);
    }
    const wrong = await ask({ token: METRICS_TOKEN, allow: [] }, `Bearer ${METRICS_TOKEN}x`);
    expect(wrong).toMatchObject({ ok: false, status: 401 });
    expect(!wrong.ok && wrong.reason).toContain("PORTCULLIS_METRICS_TOKEN");
    expect(!wrong.ok && wrong.reason).not.toContain(METRICS_TOKEN);
  });

  it("accepts PORTCULLIS_METRICS_TOKEN, and still any API token, when it is set", async () => {
    const settings = { token: METRICS_TOKEN, allow: [] };
    expect(await ask(settings, `Bearer ${METRICS_TOKEN}`)).toEqual({ ok: true, via: "metrics_token" });
    expect(await ask(settings, `Bearer ${viewerToken}`)).toEqual({ ok: true, via: "api_token" });
    expect(await ask(settings, null)).toMatchObject({ ok: false, status: 401 });
  });

  it("lets allowed addresses in without a token, and refuses others without one with 403", async () => {
    const settings = { allow: ["10.0.0.0/8", "192.0.2.7", "fd00::/8", "::1"] };
    for (const ip of ["10.1.2.3", "::ffff:10.9.9.9", "192.0.2.7", "fd00::1234", "::1"]) expect(await ask(settings, null, ip), ip).toEqual({ ok: true, via: "address" });
    // An allowed address is not turned away for a stale header either.
    expect(await ask(settings, "Bearer pct_stale", "10.1.2.3")).toEqual({ ok: true, via: "address" });
    for (const ip of ["192.0.2.8", "11.0.0.1", "fe80::1", null, "not-an-address"]) {
      const result = await ask(settings, null, ip);
      expect(result, String(ip)).toMatchObject({ ok: false, status: 403 });
      expect(!result.ok && result.reason).toContain("PORTCULLIS_METRICS_ALLOW");
    }
    expect(await ask(settings, `Bearer ${viewerToken}`, "192.0.2.8")).toEqual({ ok: true, via: "api_token" });
    expect(isAllowedAddress([], "127.0.0.1")).toBe(false);
  });
});

describe("metrics settings in the environment", () => {
  it("reads the token and the allow list", () => {
    const config = parseConfig({ PORTCULLIS_METRICS_TOKEN: METRICS_TOKEN, PORTCULLIS_METRICS_ALLOW: "127.0.0.1, 10.0.0.0/8,::1,fd00::/8" });
    expect(config.metrics).toEqual({ token: METRICS_TOKEN, allow: ["127.0.0.1", "10.0.0.0/8", "::1", "fd00::/8"] });
    expect(parseConfig({}).metrics).toEqual({ token: undefined, allow: [] });
  });

  it("names a bad value, and never echoes the token", () => {
    for (const [name, value, words] of [
      ["PORTCULLIS_METRICS_ALLOW", "10.0.0.0/33", "CIDR"],
      ["PORTCULLIS_METRICS_ALLOW", "example.com", "CIDR"],
      ["PORTCULLIS_METRICS_TOKEN", "short-secret", "16 characters"],
    ]) {
      let problems: string[] = [];
      try {
        parseConfig({ [name]: value });
      } catch (err) {
        problems = (err as ConfigError).problems;
      }
      expect(problems, value).toHaveLength(1);
      expect(problems[0]).toContain(name);
      expect(problems[0]).toContain(words);
      if (name === "PORTCULLIS_METRICS_TOKEN") expect(problems[0]).not.toContain(value);
    }
  });
});
