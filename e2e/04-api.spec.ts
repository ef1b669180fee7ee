import { execFileSync } from "node:child_process";
import path from "node:path";
import type { APIRequestContext, Browser, Page } from "@playwright/test";
import { ADMIN, expect, LoginPage, test, VIEWER } from "./fixtures";

test.describe.configure({ mode: "serial" });

let adminToken = "";
let viewerToken = "";

test("an admin creates an API token in Settings, shown once", async ({ page }) => {
  await new LoginPage(page).signIn(ADMIN);
  await page.goto("/settings/tokens");
  await page.getByLabel("Token name").fill("e2e script");
  await page.getByRole("button", { name: "Create token" }).click();
  adminToken = (await page.getByTestId("new-token").textContent())!.trim();
  expect(adminToken).toMatch(/^pct_/);
  await page.reload();
  await expect(page.getByTestId("new-token")).toHaveCount(0);
  await expect(page.getByRole("cell", { name: adminToken.slice(0, 10) + "…" })).toBeVisible();
});

test("the CLI creates a token for the viewer", ({ state }) => {
  const out = execFileSync(process.execPath, [path.resolve("bin/portcullis.mjs"), "token", "create", "--user", VIEWER.email, "--name", "viewer script", "--json"], {
    env: { ...process.env, PORTCULLIS_DATA_DIR: state.dataDir, DATABASE_URL: "" },
  }).toString();
  viewerToken = JSON.parse(out).token;
  expect(viewerToken).toMatch(/^pct_/);
});

const auth = (token: string) => ({ Authorization: `Bearer ${token}` });

test("the API refuses bad input with a clear message per field, and saves nothing", async ({ request }) => {
  const before = (await (await request.get("/api/v1/certificates", { headers: auth(adminToken) })).json()).total as number;
  const cases: [string, Parameters<APIRequestContext["post"]>[1], number, string | RegExp][] = [
    ["bad names and key type", { data: { source: "self_signed", domains: ["-x.com", "exa mple.com"], keyType: "dsa-1024" } }, 400, "validation_failed"],
    ["an empty list", { data: { domains: [] } }, 400, "validation_failed"],
    ["too long a validity", { data: { domains: ["ok.example.test"], validityDays: 3651 } }, 400, "validation_failed"],
    ["a source not yet available", { data: { source: "acme", domains: ["ok.example.test"] } }, 400, "validation_failed"],
    ["not an object", { data: [1, 2] }, 400, "bad_request"],
    ["malformed JSON", { headers: { "Content-Type": "application/json" }, data: "{nope" }, 400, "bad_request"],
    ["not JSON at all", { headers: { "Content-Type": "text/plain" }, data: "hello" }, 415, "unsupported_media_type"],
    ["an oversized body", { data: { domains: ["a.example.test"], padding: "x".repeat(4_000_000) } }, 413, "payload_too_large"],
  ];
  for (const [what, options, status, code] of cases) {
    const response = await request.post("/api/v1/certificates", { ...options, headers: { ...auth(adminToken), ...(options?.headers ?? {}) } });
    expect(response.status(), what).toBe(status);
    const body = await response.json();
    expect(body.error.code, what).toMatch(code);
    expect(body.error.message, what).toBeTruthy();
    expect(JSON.stringify(body), what).not.toMatch(/at .*\.(ts|js):\d+/);
  }
  const invalid = await (await request.post("/api/v1/certificates", { headers: auth(adminToken), data: { domains: ["-x.com"], keyType: "dsa-1024" } })).json();
  expect(invalid.error.fields.domains[0]).toContain("hyphen");
  expect(invalid.error.fields.keyType[0]).toContain("ecdsa-p256");
  const after = (await (await request.get("/api/v1/certificates", { headers: auth(adminToken) })).json()).total as number;
  expect(after).toBe(before);
});

test("the API creates, pages, reads and deletes certificates; unknown ids are 404", async ({ request }) => {
  const created = await request.post("/api/v1/certificates", {
    headers: auth(adminToken),
    data: { source: "self_signed", name: "api-made", domains: ["api.example.test", "10.0.0.1"], keyType: "rsa-2048", validityDays: 90 },
  });
  expect(created.status()).toBe(201);
  const cert = await created.json();
  expect(cert).toMatchObject({ name: "api-made", status: "active", keyType: "rsa-2048", domains: ["api.example.test", "10.0.0.1"] });
  expect(JSON.stringify(cert)).not.toContain("PRIVATE KEY");
  expect(JSON.stringify(cert)).not.toContain("pcs1.");

  const first = await (await request.get("/api/v1/certificates?limit=1", { headers: auth(adminToken) })).json();
  expect(first.items).toHaveLength(1);
  expect(first.items[0].id).toBe(cert.id);
  const second = await (await request.get(`/api/v1/certificates?limit=1&cursor=${first.nextCursor}`, { headers: auth(adminToken) })).json();
  expect(second.items[0].id).not.toBe(cert.id);
  expect((await request.get("/api/v1/certificates?limit=0", { headers: auth(adminToken) })).status()).toBe(400);
  expect((await request.get("/api/v1/certificates?limit=abc", { headers: auth(adminToken) })).status()).toBe(400);

  const pem = await request.get(`/api/v1/certificates/${cert.id}/pem`, { headers: auth(viewerToken) });
  expect(pem.status()).toBe(200);
  expect(await pem.text()).toContain("-----BEGIN CERTIFICATE-----");
  expect((await request.get("/api/v1/certificates/crt_unknown", { headers: auth(adminToken) })).status()).toBe(404);

  const events = await (await request.get("/api/v1/events?after=0", { headers: auth(viewerToken) })).json();
  expect(events.items.some((e: { type: string; certificateId: string }) => e.type === "tls.issued" && e.certificateId === cert.id)).toBe(true);

  expect((await request.delete(`/api/v1/certificates/${cert.id}`, { headers: auth(viewerToken) })).status()).toBe(403);
  expect((await request.delete(`/api/v1/certificates/${cert.id}`, { headers: auth(adminToken) })).status()).toBe(200);
  expect((await request.delete(`/api/v1/certificates/${cert.id}`, { headers: auth(adminToken) })).status()).toBe(404);
});

test("wrong, malformed and viewer tokens are refused with the right status", async ({ request }) => {
  for (const header of ["Bearer pct_not-a-real-token", "Basic abc", "Bearer"]) {
    const r = await request.get("/api/v1/certificates", { headers: { Authorization: header } });
    expect(r.status(), header).toBe(401);
  }
  const viewerCreate = await request.post("/api/v1/certificates", { headers: auth(viewerToken), data: { domains: ["v.example.test"] } });
  expect(viewerCreate.status()).toBe(403);
});

async function signedInPage(browser: Browser, user: { email: string; password: string }, baseURL: string): Promise<Page> {
  const page = await browser.newPage({ baseURL });
  await new LoginPage(page).signIn(user);
  return page;
}

// Server actions are endpoints too. The admin's own form, submitted without JavaScript from a
// viewer's session, must be refused by the action itself; the same submission by the admin works,
// which proves the replay reaches the action at all.
test("the create action refuses a viewer's session even when the form is replayed", async ({ browser, state, request }) => {
  const admin = await signedInPage(browser, ADMIN, state.baseURL);
  await admin.goto("/certificates/new");
  const formHtml = await admin.locator("main form").evaluate((f) => f.outerHTML);

  async function replay(page: Page, name: string) {
    await page.goto("/certificates/new");
    await page.evaluate((html) => {
      document.body.innerHTML = html;
    }, formHtml);
    await page.locator("textarea[name=domains]").fill(`${name}.example.test`);
    await page.locator("input[name=name]").fill(name);
    await Promise.all([page.waitForLoadState("load"), page.locator("form button[type=submit]").click()]);
  }
  const exists = async (name: string) =>
    ((await (await request.get("/api/v1/certificates?limit=200", { headers: auth(adminToken) })).json()).items as { name: string }[]).some((c) => c.name === name);

  await replay(admin, "replayed-by-admin");
  await expect.poll(() => exists("replayed-by-admin")).toBe(true);

  const viewer = await signedInPage(browser, VIEWER, state.baseURL);
  await replay(viewer, "replayed-by-viewer");
  await viewer.waitForTimeout(1000);
  expect(await exists("replayed-by-viewer")).toBe(false);
});
