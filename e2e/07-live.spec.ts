import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { Page } from "@playwright/test";
import { openDatabase, type Db } from "../lib/db/connection";
import { recordEvent } from "../lib/events";
import { nowIso } from "../lib/ids";
import type { CertificateStatus } from "../lib/db/schema";
import { ADMIN, expect, LoginPage, test } from "./fixtures";
import { readState } from "./state";

// The console shows changes as they happen: the page stays (no reload), the stream delivers the
// event, the queries and server components refresh. Changes come from the REST API, and, standing
// in for the ACME engine (another process), from writes straight into the database.

test.describe.configure({ mode: "serial" });

let dir: string;
let db: Db;

test.beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-e2e-live-"));
  db = openDatabase({ kind: "sqlite", file: path.join(readState().dataDir, "portcullis.db") }).db;
});

test.afterAll(async () => {
  await db?.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
});

function selfSignedPem(name: string, prefix: string) {
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`, "-days", "90", "-keyout", `${prefix}.key`, "-out", `${prefix}.pem`], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  const read = (f: string) => fs.readFileSync(path.join(dir, f), "utf8");
  const fingerprint = execFileSync("openssl", ["x509", "-noout", "-fingerprint", "-sha256"], { input: read(`${prefix}.pem`) }).toString().trim().split("=")[1];
  return { certificatePem: read(`${prefix}.pem`), keyPem: read(`${prefix}.key`), fingerprint };
}

/** What the engine does on a status change: the row and its event, in one transaction. */
async function engineStatusChange(certificateId: string, status: CertificateStatus, type: string, message: string) {
  await db.transaction().execute(async (trx) => {
    await trx.updateTable("certificates").set({ status, updated_at: nowIso() }).where("id", "=", certificateId).execute();
    await recordEvent(trx, { type, certificateId, status, severity: status === "failed" ? "error" : "info", message });
  });
}

async function openLive(page: Page, url: string) {
  await page.goto(url);
  await expect(page.getByTestId("live-status")).toHaveAttribute("data-state", "live");
  // Survives client-side refreshes, not a reload or a navigation.
  await page.evaluate(() => ((window as unknown as { __portcullisMarker: string }).__portcullisMarker = "still the same page"));
}

const marker = (page: Page) => page.evaluate(() => (window as unknown as { __portcullisMarker?: string }).__portcullisMarker);

test("a certificate's page shows a new version, its event and status changes as they happen, without a reload", async ({ page }) => {
  await new LoginPage(page).signIn(ADMIN);
  const first = selfSignedPem("live.example.test", "v1");
  const created = await page.request.post("/api/v1/certificates", { data: { source: "upload", name: "Live upload", certificatePem: first.certificatePem, keyPem: first.keyPem } });
  expect(created.status()).toBe(201);
  const cert = (await created.json()) as { id: string };

  await openLive(page, `/certificates/${cert.id}`);
  await expect(page.getByTestId("status-badge")).toHaveText("Active");
  const timeline = page.getByTestId("timeline");
  await expect(timeline).toContainText("certificate.imported");

  // Through the REST API, as a script would: a new version.
  const second = selfSignedPem("live.example.test", "v2");
  const uploaded = await page.request.post(`/api/v1/certificates/${cert.id}/upload`, { data: { certificatePem: second.certificatePem, keyPem: second.keyPem } });
  expect(uploaded.status()).toBe(201);
  await expect(timeline.locator("li").first()).toContainText("certificate.new_version", { timeout: 2000 });
  await expect(page.getByTestId("fingerprint")).toHaveText(second.fingerprint, { timeout: 2000 });

  // Another process (the engine) changes the status; the page is watched at every frame to time it.
  const started = Date.now();
  await engineStatusChange(cert.id, "renewing", "tls.renewing", "renewal started (e2e)");
  await page.waitForFunction(() => document.querySelector("[data-testid=status-badge]")?.textContent === "Renewing", null, { polling: "raf", timeout: 2000 });
  console.log(`status change written by another process shown on the page after ${Date.now() - started} ms`);
  await expect(timeline.locator("li").first()).toContainText("renewal started (e2e)", { timeout: 2000 });
  await engineStatusChange(cert.id, "active", "tls.renewed", "renewed (e2e)");
  await expect(page.getByTestId("status-badge")).toHaveText("Active", { timeout: 2000 });
  await expect(timeline.locator("li").first()).toContainText("renewed (e2e)", { timeout: 2000 });

  expect(await marker(page)).toBe("still the same page");
});

test("the events page: new events appear live, filters live in the address, rows link to their certificate, older pages load", async ({ page }) => {
  await new LoginPage(page).signIn(ADMIN);
  await openLive(page, "/events");
  const list = page.getByTestId("events");

  const created = await page.request.post("/api/v1/certificates", { data: { source: "self_signed", name: "live-made", domains: ["live-made.example.test"] } });
  expect(created.status()).toBe(201);
  const cert = (await created.json()) as { id: string };
  const row = list.locator("li").first();
  await expect(row).toContainText("tls.issued", { timeout: 2000 });
  await expect(row.getByRole("link", { name: "live-made" })).toHaveAttribute("href", `/certificates/${cert.id}`);
  expect(await marker(page)).toBe("still the same page");

  // Filters: the address carries them, so a link can point at the same view.
  await page.getByLabel("Type").selectOption("tls.issued");
  await expect(page).toHaveURL(/\/events\?type=tls\.issued$/);
  await expect(list.locator("li").first()).toContainText("tls.issued");
  expect(await list.locator("li").evaluateAll((rows) => rows.every((r) => r.textContent?.includes("tls.issued")))).toBe(true);
  await page.getByLabel("Certificate (name or id)").fill("live-made");
  await page.getByRole("button", { name: "Filter" }).click();
  await expect(page).toHaveURL(/certificate=live-made/);
  await expect(list.locator("li")).toHaveCount(1);
  await expect(page.getByText("Events of certificate live-made")).toBeVisible();

  // A filtered view is live too: a matching event appears, one that does not match stays out.
  await engineStatusChange(cert.id, "failed", "tls.renewal_failed", "not this type (e2e)");
  await recordEvent(db, { type: "tls.issued", certificateId: cert.id, message: "issued again (e2e)" });
  await expect(list.locator("li").first()).toContainText("issued again (e2e)", { timeout: 2000 });
  await expect(list).not.toContainText("not this type (e2e)");

  await page.goto(`/events?certificate=${cert.id}&severity=error`);
  await expect(list.locator("li")).toHaveCount(1);
  await expect(list.locator("li").first()).toContainText("not this type (e2e)");
  await expect(page.getByLabel("Severity")).toHaveValue("error");

  await page.goto("/events?severity=loud");
  await expect(page.getByTestId("filter-problem")).toContainText("severity must be one of info, warning, error");

  // Older pages: 60 events of one type, 50 at first.
  for (let i = 1; i <= 60; i++) await recordEvent(db, { type: "e2e.bulk", message: `bulk ${i}` });
  await page.goto("/events?type=e2e.bulk");
  await expect(list.locator("li")).toHaveCount(50);
  await expect(list.locator("li").first()).toContainText("bulk 60");
  await page.getByRole("button", { name: "Load older events" }).click();
  await expect(list.locator("li")).toHaveCount(60);
  await expect(list.locator("li").last()).toContainText("bulk 1");
  await expect(page.getByRole("button", { name: "Load older events" })).toHaveCount(0);
});

test("when the stream is cut, the page says so and polls; when it is back, changes are live again", async ({ page }) => {
  await new LoginPage(page).signIn(ADMIN);
  const created = await page.request.post("/api/v1/certificates", { data: { source: "self_signed", name: "live-fallback", domains: ["live-fallback.example.test"] } });
  const cert = (await created.json()) as { id: string };

  await page.route("**/api/v1/events/stream**", (route) => route.abort());
  await page.goto(`/certificates/${cert.id}`);
  await page.evaluate(() => ((window as unknown as { __portcullisMarker: string }).__portcullisMarker = "still the same page"));
  await expect(page.getByTestId("live-status")).toHaveAttribute("data-state", "paused");
  await expect(page.getByText("Live updates paused — retrying")).toBeVisible();

  await engineStatusChange(cert.id, "renewing", "tls.renewing", "while the stream is down (e2e)");
  // Polling every 5 s instead of the stream.
  await expect(page.getByTestId("status-badge")).toHaveText("Renewing", { timeout: 8000 });
  await expect(page.getByTestId("timeline")).toContainText("while the stream is down (e2e)", { timeout: 8000 });

  await page.unroute("**/api/v1/events/stream**");
  await expect(page.getByTestId("live-status")).toHaveAttribute("data-state", "live", { timeout: 35_000 });
  await expect(page.getByText("Live updates paused — retrying")).toHaveCount(0);
  await engineStatusChange(cert.id, "active", "tls.renewed", "after the stream is back (e2e)");
  await expect(page.getByTestId("status-badge")).toHaveText("Active", { timeout: 2000 });
  await expect(page.getByTestId("timeline")).toContainText("after the stream is back (e2e)", { timeout: 2000 });
  expect(await marker(page)).toBe("still the same page");
});
