import fs from "node:fs";
import { ADMIN, expect, LoginPage, test, VIEWER } from "./fixtures";

// Settings → Backup: the download needs the admin's password again (a wrong one makes no file), the
// file is an encrypted Portcullis backup, and both the refusal and the download are in the audit log.
// Viewers are told backups are for admins, and the API refuses them.

test.describe.configure({ mode: "serial" });

test("an admin downloads a backup after typing the password again; a wrong password downloads nothing", async ({ page }) => {
  await new LoginPage(page).signIn(ADMIN);
  await page.goto("/settings");
  await page.getByRole("link", { name: /Backup/ }).click();
  await expect(page.getByRole("heading", { name: "Backup", exact: true })).toBeVisible();
  await expect(page.getByText("portcullis backup restore")).toBeVisible();

  const form = page.getByTestId("backup-form");
  let downloads = 0;
  page.on("download", () => downloads++);

  await form.getByLabel("Your password").fill("not my password");
  await form.getByLabel("Backup passphrase", { exact: true }).fill("a long backup passphrase");
  await form.getByLabel("Repeat the backup passphrase").fill("a long backup passphrase");
  await form.getByRole("button", { name: "Download backup" }).click();
  await expect(page.locator("#password-error")).toContainText("not your current password");
  await expect(form.getByTestId("form-message")).toContainText("that is not your password; no backup was made");

  await form.getByLabel("Backup passphrase", { exact: true }).fill("short");
  await form.getByRole("button", { name: "Download backup" }).click();
  await expect(page.locator("#passphrase-error")).toContainText("use at least 12 characters");
  expect(downloads).toBe(0);

  await form.getByLabel("Your password").fill(ADMIN.password);
  await form.getByLabel("Backup passphrase", { exact: true }).fill("a long backup passphrase");
  await form.getByLabel("Repeat the backup passphrase").fill("a long backup passphrase");
  const [download] = await Promise.all([page.waitForEvent("download"), form.getByRole("button", { name: "Download backup" }).click()]);
  expect(download.suggestedFilename()).toMatch(/^portcullis-backup-\d{8}-\d{6}\.pcbk$/);
  const file = await download.path();
  const bytes = fs.readFileSync(file);
  expect(bytes.subarray(0, 4).toString("latin1")).toBe("PCBK");
  // Encrypted: no private key or email address in the clear.
  expect(bytes.includes(Buffer.from("PRIVATE KEY"))).toBe(false);
  expect(bytes.includes(Buffer.from(ADMIN.email))).toBe(false);
  await expect(page.getByTestId("form-message")).toContainText("Backup downloaded: portcullis-backup-");
  expect(downloads).toBe(1);

  await page.goto("/settings/audit");
  const table = page.getByTestId("audit-table");
  await expect(table.getByRole("row", { name: /backup\.created/ }).first()).toContainText(ADMIN.email);
  await expect(table.getByRole("row", { name: /backup\.password_rejected/ }).first()).toContainText(ADMIN.email);
});

test("a viewer is told backups are for admins, and the API refuses them", async ({ page }) => {
  await new LoginPage(page).signIn(VIEWER);
  await page.goto("/settings/backup");
  await expect(page.getByTestId("backup-admins-only")).toContainText("only admins can download them");
  await expect(page.getByTestId("backup-form")).toHaveCount(0);
  const response = await page.request.post("/api/v1/backup", { data: { password: VIEWER.password, passphrase: "a long backup passphrase" } });
  expect(response.status()).toBe(403);
  expect((await response.json()).error.code).toBe("forbidden");
});
