import { execFileSync } from "node:child_process";
import fs from "node:fs";
import { ADMIN, expect, LoginPage, NewCertificatePage, test } from "./fixtures";

test.describe.configure({ mode: "serial" });

test("an anonymous visitor is sent to the login page, which points at the setup link", async ({ page }) => {
  await page.goto("/certificates");
  await expect(page).toHaveURL(/\/login/);
  await expect(page.getByText("No account exists yet")).toBeVisible();
});

test("a setup link with a wrong token is refused", async ({ page, state }) => {
  await page.goto(state.setupUrl.replace(/token=.*/, "token=not-the-token"));
  await expect(page.getByTestId("setup-invalid")).toBeVisible();
});

test("the first admin is created through the printed setup link, then signs in", async ({ page, state }) => {
  await page.goto(state.setupUrl);
  await page.getByLabel("Email").fill(ADMIN.email);
  await page.getByLabel("Password", { exact: true }).fill("short");
  await page.getByLabel("Repeat the password").fill("short");
  await page.getByRole("button", { name: "Create admin" }).click();
  await expect(page.locator("#password-error")).toContainText("at least 10 characters");

  await page.getByLabel("Email").fill(ADMIN.email);
  await page.getByLabel("Password", { exact: true }).fill(ADMIN.password);
  await page.getByLabel("Repeat the password").fill(ADMIN.password);
  await page.getByRole("button", { name: "Create admin" }).click();
  await expect(page).toHaveURL(/\/login/);

  await new LoginPage(page).signIn({ email: ADMIN.email, password: "wrong password" }, { expectSuccess: false });
  await expect(page.getByTestId("form-message")).toContainText("do not match");
  await new LoginPage(page).signIn(ADMIN);
  await expect(page.getByRole("heading", { name: "Dashboard" })).toBeVisible();
  await expect(page.getByTestId("current-user")).toContainText(ADMIN.email);

  // The setup link is spent.
  await page.goto(state.setupUrl);
  await expect(page).not.toHaveURL(/setup/);
});

test("an admin creates a self-signed certificate and the page's fingerprint matches openssl's for the download", async ({ page }) => {
  await new LoginPage(page).signIn(ADMIN);
  const form = new NewCertificatePage(page);
  await form.open();

  await form.fill({ names: "exa mple.com\n*.*.example.com", validityDays: "4000" });
  await form.submit();
  await expect(page.locator("#domains-error")).toContainText('"exa mple.com" contains a space');
  await expect(page.locator("#domains-error")).toContainText("wildcard");
  await expect(page.locator("#validityDays-error")).toContainText("between 1 and 3650");
  await expect(page.getByLabel("Names")).toHaveValue("exa mple.com\n*.*.example.com");

  await form.fill({ names: "shop.example.test\n*.shop.example.test\n192.0.2.10\n2001:db8::10", displayName: "Shop", keyType: "ecdsa-p384", validityDays: "365" });
  await form.submit();
  await expect(page.getByTestId("certificate-name")).toHaveText("Shop");
  await expect(page.getByTestId("status-badge")).toHaveText("Active");
  await expect(page.getByTestId("sans")).toContainText("*.shop.example.test");
  await expect(page.getByTestId("sans")).toContainText("2001:db8::10");
  await expect(page.getByText("ECDSA P-384")).toBeVisible();
  const shown = (await page.getByTestId("fingerprint").textContent())!.trim();
  expect(shown).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);

  const [download] = await Promise.all([page.waitForEvent("download"), page.getByTestId("download-pem").click()]);
  const pem = fs.readFileSync((await download.path())!, "utf8");
  const openssl = execFileSync("openssl", ["x509", "-noout", "-fingerprint", "-sha256"], { input: pem }).toString();
  expect(openssl.trim().split("=")[1]).toBe(shown);

  await page.goto("/certificates");
  const row = page.getByTestId("certificate-table").getByRole("row", { name: /Shop/ });
  await expect(row).toContainText("Self-signed");
  await expect(row).toContainText("in 364 days");
  await expect(row).toContainText("Active");

  await page.goto("/");
  await expect(page.getByTestId("count-active")).toHaveText("1");
});

test("the private key needs the password again, and a delete needs a confirmation", async ({ page }) => {
  await new LoginPage(page).signIn(ADMIN);
  await page.goto("/certificates");
  await page.getByRole("link", { name: "Shop" }).click();
  await page.getByRole("button", { name: "Download private key…" }).click();
  await page.getByLabel("Re-enter your password").fill("not my password");
  await page.getByRole("button", { name: "Download key" }).click();
  await expect(page.getByTestId("form-message")).toContainText("password is not right");
  await page.getByLabel("Re-enter your password").fill(ADMIN.password);
  const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download key" }).click()]);
  const key = fs.readFileSync((await download.path())!, "utf8");
  expect(key).toContain("-----BEGIN PRIVATE KEY-----");

  await page.getByRole("button", { name: "Delete" }).click();
  await page.getByRole("button", { name: "Cancel" }).click();
  await expect(page.getByTestId("certificate-name")).toHaveText("Shop");
});
