import { execFileSync } from "node:child_process";
import path from "node:path";
import { parseScrape, sampleOf } from "../lib/metrics/testing";
import { expect, test } from "./fixtures";

// /metrics on the running console: outside the login proxy, a plain-text 401 without a token, and a
// Prometheus scrape with an API token.

test.describe.configure({ mode: "serial" });

let token = "";

test("the CLI makes a user and an API token for Prometheus", ({ state }) => {
  const cli = (args: string[], input?: string) =>
    execFileSync(process.execPath, [path.resolve("bin/portcullis.mjs"), ...args], { input, env: { ...process.env, PORTCULLIS_DATA_DIR: state.dataDir, DATABASE_URL: "" } }).toString();
  cli(["user", "add", "--email", "prometheus@example.test", "--role", "viewer", "--json"], "prometheus password 1\n");
  token = JSON.parse(cli(["token", "create", "--user", "prometheus@example.test", "--name", "prometheus", "--json"])).token;
  expect(token).toMatch(/^pct_/);
});

test("/metrics refuses a missing or wrong token with a plain-text 401, not a login page", async ({ request }) => {
  for (const headers of [{}, { Authorization: "Bearer pct_wrong" }, { Authorization: "Basic abc" }] as Record<string, string>[]) {
    const response = await request.get("/metrics", { headers, maxRedirects: 0 });
    expect(response.status(), JSON.stringify(headers)).toBe(401);
    expect(response.headers()["content-type"]).toContain("text/plain");
    expect(await response.text()).toMatch(/Bearer/);
  }
  expect((await request.get("/metrics", { maxRedirects: 0 })).headers()["www-authenticate"]).toContain("Bearer");
});

test("/metrics answers a Prometheus scrape with an API token", async ({ request }) => {
  const response = await request.get("/metrics", { headers: { Authorization: `Bearer ${token}` } });
  expect(response.status()).toBe(200);
  expect(response.headers()["content-type"]).toMatch(/^text\/plain; version=0\.0\.4/);
  const metrics = parseScrape(await response.text());
  const listed = (await (await request.get("/api/v1/certificates?limit=1", { headers: { Authorization: `Bearer ${token}` } })).json()).total as number;
  const byStatus = metrics.get("portcullis_certificates")!.metrics.reduce((sum, m) => sum + Number(m.value), 0);
  expect(byStatus).toBe(listed);
  expect(metrics.get("portcullis_certificate_status")?.metrics ?? []).toHaveLength(listed);
  expect(sampleOf(metrics, "portcullis_renewals_attempted_total")).toBeGreaterThanOrEqual(0);
  expect(sampleOf(metrics, "process_resident_memory_bytes")).toBeGreaterThan(0);
});
