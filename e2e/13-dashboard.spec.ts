import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { APIRequestContext, Page } from "@playwright/test";
import { ADMIN, expect, LoginPage, test } from "./fixtures";

// The dashboard: certificates of known expiry land on their day of the 90-day timeline (manual ones
// marked so), the text alternative lists them, and "Needs attention" names one expiring with nothing
// to renew it and, without a reload, an ACME certificate whose order fails and the credential behind it.

test.describe.configure({ mode: "serial" });

const RUN = Date.now().toString(36);
const SOON = `dash-soon-${RUN}`;
const LATER = `dash-later-${RUN}`;
const UPLOADED = `dash-uploaded-${RUN}`;
const FAILING = `dash-failing-${RUN}`;
const CREDENTIAL = `dash-revoked-${RUN}`;
const DAY = 86_400_000;

type Created = { id: string; name: string; notAfter: string };

async function created(request: APIRequestContext, data: Record<string, unknown>): Promise<Created> {
  const response = await request.post("/api/v1/certificates", { data });
  expect(response.status(), await response.text()).toBe(201);
  return (await response.json()) as Created;
}

/** Every certificate, from the REST API's pages: what the timeline's counts must agree with. */
async function allCertificates(request: APIRequestContext) {
  const out: { notAfter: string | null; source: string }[] = [];
  let cursor: string | null = null;
  do {
    const page = (await (await request.get(`/api/v1/certificates?limit=200${cursor ? `&cursor=${cursor}` : ""}`)).json()) as { items: { notAfter: string | null; source: string }[]; nextCursor: string | null };
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor);
  return out;
}

/** When this spec runs on its own, the first admin does not exist yet: create it through the setup link. */
async function ensureAdmin(page: Page, setupUrl: string) {
  await page.goto(setupUrl);
  const create = page.getByRole("button", { name: "Create admin" });
  if (!new URL(page.url()).pathname.startsWith("/setup") || !(await create.isVisible())) return;
  await page.getByLabel("Email").fill(ADMIN.email);
  await page.getByLabel("Password", { exact: true }).fill(ADMIN.password);
  await page.getByLabel("Repeat the password").fill(ADMIN.password);
  await create.click();
  await expect(page).toHaveURL(/\/login/);
}

const shortDate = (iso: string) => new Date(`${iso.slice(0, 10)}T00:00:00Z`).toLocaleDateString("en-US", { month: "short", day: "numeric", timeZone: "UTC" });

test("certificates of known expiry appear on their day, manual ones marked, and in the table", async ({ page, state }) => {
  await ensureAdmin(page, state.setupUrl);
  await new LoginPage(page).signIn(ADMIN);
  const soon = await created(page.request, { source: "self_signed", name: SOON, domains: [`${SOON}.example.test`], validityDays: 5 });
  const later = await created(page.request, { source: "self_signed", name: LATER, domains: [`${LATER}.example.test`], validityDays: 40 });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-e2e-dashboard-"));
  try {
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-days", "20", "-subj", `/CN=${UPLOADED}.example.test`, "-addext", `subjectAltName=DNS:${UPLOADED}.example.test`], { cwd: dir, stdio: "ignore" });
    const uploaded = await created(page.request, { source: "upload", name: UPLOADED, certificatePem: fs.readFileSync(path.join(dir, "cert.pem"), "utf8"), keyPem: fs.readFileSync(path.join(dir, "key.pem"), "utf8") });
    expect(Date.parse(uploaded.notAfter) - Date.now()).toBeGreaterThan(19 * DAY);

    await page.goto("/");
    await page.setViewportSize({ width: 1280, height: 900 });
    const timeline = page.getByTestId("expiry-timeline");
    await expect(timeline.getByRole("heading", { name: "Expiry timeline" })).toBeVisible();

    // Each lands on its own day; hovering the day names it and links to it.
    for (const cert of [soon, later, uploaded]) {
      const column = page.getByTestId(`timeline-day-${cert.notAfter.slice(0, 10)}`);
      await expect(column).toHaveAttribute("data-count", /^[1-9]\d*$/);
      await column.hover();
      const link = column.getByRole("tooltip").getByRole("link", { name: cert.name });
      await expect(link).toBeVisible();
      await expect(link).toHaveAttribute("href", `/certificates/${cert.id}`);
    }
    // Keyboard focus opens the same popup, and says "manual" for what nothing renews.
    await page.mouse.move(0, 0);
    const soonColumn = page.getByTestId(`timeline-day-${soon.notAfter.slice(0, 10)}`);
    await soonColumn.getByRole("button").focus();
    await expect(soonColumn.getByRole("tooltip")).toBeVisible();
    await expect(soonColumn.getByRole("tooltip").locator("li", { hasText: SOON })).toContainText("expires — manual");

    // The sentence agrees with the certificates the API lists.
    const certificates = await allCertificates(page.request);
    const start = new Date(new Date().toISOString().slice(0, 10)).getTime();
    const inWindow = certificates.filter((c) => c.notAfter && Date.parse(c.notAfter) >= Date.now() && Date.parse(c.notAfter) < start + 90 * DAY);
    const manual = inWindow.filter((c) => c.source !== "acme").length;
    await expect(page.getByTestId("timeline-summary")).toContainText(
      `Next 90 days: ${inWindow.length} ${inWindow.length === 1 ? "expiry" : "expiries"}${manual ? ` (${manual} manual)` : ""},`,
    );

    // The text alternative: a table behind a disclosure, each row dated and linked.
    await page.getByText("Show the timeline as a table").click();
    const table = page.getByTestId("timeline-table");
    await expect(table).toBeVisible();
    for (const cert of [soon, later, uploaded]) {
      const row = table.getByRole("row").filter({ has: page.getByRole("link", { name: cert.name, exact: true }) });
      await expect(row).toHaveCount(1);
      await expect(row.getByRole("cell").first()).toHaveText(shortDate(cert.notAfter));
      await expect(row).toContainText(`Expires at ${cert.notAfter.slice(11, 16)} — manual: nothing renews it`);
    }

    // Five days left and nothing renews it: named in Needs attention, urgent, with a link to it.
    const item = page.getByTestId("attention-item").filter({ hasText: SOON });
    await expect(item).toHaveAttribute("data-kind", "expiring_unrenewed");
    await expect(item).toHaveAttribute("data-severity", "critical");
    await expect(item).toContainText("nothing will renew it: self-signed certificates are not renewed automatically");
    await expect(item.getByRole("link")).toHaveAttribute("href", `/certificates/${soon.id}`);
    await expect(page.getByTestId("attention-item").filter({ hasText: LATER })).toHaveCount(0);

    // Narrow screens get weeks instead of days.
    await page.setViewportSize({ width: 420, height: 900 });
    await expect(page.getByTestId("timeline-weeks")).toBeVisible();
    await expect(page.getByTestId("timeline-days")).toBeHidden();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("a failing ACME order and its revoked DNS credential show up in Needs attention without a reload", async ({ page }) => {
  await new LoginPage(page).signIn(ADMIN);
  await page.goto("/");
  await expect(page.getByTestId("live-status")).toHaveAttribute("data-state", "live");
  await expect(page.getByTestId("attention-item").filter({ hasText: FAILING })).toHaveCount(0);

  // A token the DNS provider does not know, saved without asking it: the order's TXT record cannot be made.
  const credential = await page.request.post("/api/v1/dns-credentials", { data: { name: CREDENTIAL, token: `revoked-token-${RUN}-abcdefghijklmnop`, verify: false } });
  expect(credential.status(), await credential.text()).toBe(201);
  const { id: credentialId } = (await credential.json()) as { id: string };
  const cert = await created(page.request, { source: "acme", name: FAILING, domains: [`${FAILING}.example.test`], challenge: "dns-01", dnsCredentialId: credentialId, agreeTos: true });

  const failing = page.getByTestId("attention-item").filter({ hasText: FAILING });
  await expect(failing).toHaveAttribute("data-kind", "renewal_failed", { timeout: 45_000 });
  await expect(failing).toContainText("Issuance failed");
  await expect(failing.getByRole("link")).toHaveAttribute("href", `/certificates/${cert.id}`);

  // Verifying the credential records that the provider refuses it: now named too, with where to fix it.
  const verified = await page.request.post(`/api/v1/dns-credentials/${credentialId}/verify`, { data: {} });
  expect(verified.status(), await verified.text()).toBeLessThan(300);
  const revoked = page.getByTestId("attention-item").filter({ hasText: `DNS credential "${CREDENTIAL}"` });
  await expect(revoked).toHaveAttribute("data-kind", "dns_credential", { timeout: 20_000 });
  await expect(revoked).toContainText("1 certificate renews with it over DNS-01");
  await expect(revoked.getByRole("link")).toHaveAttribute("href", "/settings/dns");
});
