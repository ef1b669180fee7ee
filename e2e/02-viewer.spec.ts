import { ADMIN, expect, LoginPage, test, VIEWER } from "./fixtures";

test.describe.configure({ mode: "serial" });

test("an admin adds a viewer", async ({ page }) => {
  await new LoginPage(page).signIn(ADMIN);
  await page.goto("/settings/users");
  await page.getByLabel("Email").fill(VIEWER.email);
  await page.getByLabel("Password").fill(VIEWER.password);
  await page.getByLabel("Role").selectOption("viewer");
  await page.getByRole("button", { name: "Add user" }).click();
  await expect(page.getByTestId("form-message")).toContainText(`User ${VIEWER.email} (viewer) created`);
});

test("a viewer sees certificates but cannot create or delete one, in the UI or through the API", async ({ page }) => {
  await new LoginPage(page).signIn(VIEWER);
  await page.goto("/certificates");
  await expect(page.getByRole("link", { name: "Shop" })).toBeVisible();
  await expect(page.getByRole("link", { name: "New certificate" })).toHaveCount(0);

  await page.goto("/certificates/new");
  await expect(page.getByTestId("read-only-notice")).toBeVisible();
  await expect(page.getByRole("button", { name: "Create certificate" })).toHaveCount(0);

  await page.getByRole("link", { name: "Certificates" }).first().click();
  await page.getByRole("link", { name: "Shop" }).click();
  await expect(page.getByRole("button", { name: "Delete" })).toHaveCount(0);
  await expect(page.getByText("Only admins can download it")).toBeVisible();

  // The browser's session, used against the API directly: refused by the server, not only hidden.
  const create = await page.request.post("/api/v1/certificates", { data: { source: "self_signed", domains: ["viewer.example.test"] } });
  expect(create.status()).toBe(403);
  expect((await create.json()).error.code).toBe("forbidden");
  const list = await page.request.get("/api/v1/certificates");
  expect(list.status()).toBe(200);
  const id = (await list.json()).items[0].id as string;
  expect((await page.request.delete(`/api/v1/certificates/${id}`)).status()).toBe(403);
  expect((await page.request.post(`/api/v1/certificates/${id}/private-key`, { data: { password: VIEWER.password } })).status()).toBe(403);
  expect((await page.request.get(`/api/v1/certificates/${id}`)).status()).toBe(200);
});

test("the audit log shows who did what, including the viewer's creation", async ({ page }) => {
  await new LoginPage(page).signIn(ADMIN);
  await page.goto("/settings/audit");
  const table = page.getByTestId("audit-table");
  await expect(table.getByRole("row", { name: /user\.create/ }).filter({ hasText: ADMIN.email })).toHaveCount(1);
  await expect(table.getByRole("row", { name: /certificate\.private_key_download/ })).toHaveCount(1);
  await expect(table.getByRole("row", { name: /certificate\.create/ }).first()).toContainText(ADMIN.email);
});
