import { execFileSync } from "node:child_process";
import { Resolver } from "node:dns/promises";
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import { ADMIN, expect, LoginPage, notReloaded, test, watchBadges, watchedBadges } from "./fixtures";

// Settings → DNS → add a Cloudflare credential (the fake Cloudflare API started by the global setup),
// verify it, test a zone and watch the steps arrive; then a wildcard + apex certificate over DNS-01
// from pebble turns Active in the open page; the credential in use cannot be deleted.

test.describe.configure({ mode: "serial" });

const CREDENTIAL = "prod Cloudflare";

function pebbleIssuer(managementUrl: string, which: "roots" | "intermediates"): Promise<string> {
  return new Promise((resolve, reject) => {
    https
      .get(`${managementUrl}/${which}/0`, { rejectUnauthorized: false }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve(body));
      })
      .on("error", reject);
  });
}

test("add a Cloudflare credential: a rejected token is not saved; a good one is verified, shown as its last 4 characters", async ({ page, state }) => {
  await new LoginPage(page).signIn(ADMIN);
  await page.goto("/settings");
  await page.getByRole("link", { name: /DNS/ }).click();
  await expect(page.getByRole("heading", { name: "DNS credentials" })).toBeVisible();
  await expect(page.getByTestId("dns-resolvers")).toContainText(state.cloudflare.dnsServer);

  const form = page.getByTestId("dns-credential-form");
  await form.getByLabel("Name").fill(CREDENTIAL);
  await form.getByLabel("API token").fill("Bearer something");
  await form.getByRole("button", { name: "Verify and save" }).click();
  await expect(page.locator("#token-error")).toContainText('paste the token without "Bearer " in front of it');

  await form.getByLabel("API token").fill("e2e-revoked-token-0000000000000000000000");
  await form.getByRole("button", { name: "Verify and save" }).click();
  await expect(page.locator("#token-error")).toContainText("Cloudflare rejected the API token: it is invalid, expired or was deleted");
  await expect(form.getByTestId("form-message")).toContainText("(Cloudflare 1000: Invalid API Token (HTTP 401))");
  await expect(page.getByTestId("dns-credential")).toHaveCount(0);

  await form.getByLabel("API token").fill(state.cloudflare.token);
  await form.getByRole("button", { name: "Verify and save" }).click();
  const card = page.locator(`[data-testid=dns-credential][data-name="${CREDENTIAL}"]`);
  await expect(card).toBeVisible();
  await expect(card.getByTestId("token-hint")).toHaveText(`…${state.cloudflare.token.slice(-4)}`);
  await expect(card.getByTestId("verification")).toHaveAttribute("data-ok", "true");
  await expect(card.getByTestId("verification")).toContainText(`The token is active and may edit DNS records in 1 zone: ${state.cloudflare.zone}`);
  expect(await page.content()).not.toContain(state.cloudflare.token);

  // The API never returns the token either.
  const listed = await (await page.request.get("/api/v1/dns-credentials")).text();
  expect(listed).toContain(CREDENTIAL);
  expect(listed).not.toContain(state.cloudflare.token);

  await card.getByRole("button", { name: "Verify", exact: true }).click();
  await expect(card.getByTestId("verification")).toHaveAttribute("data-ok", "true");

  // Replacing the token: a refused one changes nothing; the same good token is accepted again.
  await card.getByRole("button", { name: "Replace token" }).click();
  const replace = card.getByTestId("replace-token-form");
  await replace.getByLabel("New API token").fill("e2e-revoked-token-1111111111111111111111");
  await replace.getByRole("button", { name: "Verify and replace" }).click();
  await expect(replace).toContainText("Cloudflare rejected the API token");
  await expect(card.getByTestId("token-hint")).toHaveText(`…${state.cloudflare.token.slice(-4)}`);
  await replace.getByLabel("New API token").fill(state.cloudflare.token);
  await replace.getByRole("button", { name: "Verify and replace" }).click();
  await expect(card.getByTestId("form-message")).toContainText("Token replaced");
  await expect(replace).toHaveCount(0);
});

test("test a zone: create, seen on the name servers, deleted, each step shown as it happens", async ({ page, state }) => {
  await new LoginPage(page).signIn(ADMIN);
  await page.goto("/settings/dns");
  const card = page.locator(`[data-testid=dns-credential][data-name="${CREDENTIAL}"]`);
  await card.getByRole("button", { name: `Test ${state.cloudflare.zone}` }).click();
  const panel = card.getByTestId("zone-test");
  await expect(panel).toHaveAttribute("data-status", "passed", { timeout: 20_000 });
  const steps = card.getByTestId("zone-test-steps");
  const fqdn = `_acme-challenge.${state.cloudflare.zone}`;
  await expect(steps).toContainText(`Created the TXT record ${fqdn} in the Cloudflare zone ${state.cloudflare.zone}`);
  await expect(steps).toContainText(`The TXT record ${fqdn} is visible on all 1 of the configured resolvers (${state.cloudflare.dnsServer})`);
  await expect(steps).toContainText(`Deleted the TXT record ${fqdn}`);
  await expect(steps).toContainText(`can publish DNS-01 answers in ${state.cloudflare.zone}`);
  const [host, port] = state.cloudflare.dnsServer.split(":");
  const resolver = new Resolver({ timeout: 500, tries: 1 });
  resolver.setServers([`${host}:${port}`]);
  expect(await resolver.resolveTxt(fqdn).catch(() => [])).toEqual([]);
});

test("a wildcard + apex certificate over DNS-01 turns Active without a reload, and its credential cannot be deleted", async ({ page, state }) => {
  await new LoginPage(page).signIn(ADMIN);
  const zone = state.cloudflare.zone;
  await page.goto("/certificates/new?source=acme");
  await page.getByLabel("Names", { exact: true }).fill(`*.${zone}\n${zone}`);
  await page.getByLabel("How the CA checks that you control the names").selectOption("dns-01");
  await expect(page.getByLabel("DNS credential")).toContainText(CREDENTIAL);
  // Spec 08 creates the ACME account when the whole suite runs; alone, this spec agrees to the terms itself.
  if (await page.getByTestId("agree-tos").isVisible()) await page.getByTestId("agree-tos").check();
  await page.getByRole("button", { name: "Request certificate" }).click();
  await expect(page.getByTestId("certificate-name")).toHaveText(`*.${zone}`);

  await watchBadges(page);
  await expect(page.getByTestId("status-badge").first()).toHaveText("Active", { timeout: 30_000 });
  const badges = await watchedBadges(page);
  expect(badges.at(-1)).toBe("Active");
  expect(badges.slice(0, -1).every((b) => b === "Pending" || b === "Requesting")).toBe(true);
  expect(await notReloaded(page)).toBe(true);

  await expect(page.getByRole("heading", { name: /DNS-01 via prod Cloudflare/ })).toBeVisible();
  const timeline = page.getByTestId("timeline");
  for (const step of ["acme.challenge_presented", "dns.propagation", "dns.propagated", "acme.challenge_valid", "dns.records_removed", "tls.issued"]) {
    await expect(timeline).toContainText(step);
  }
  await expect(timeline).toContainText(`DNS-01 answer for *.${zone} is published: TXT _acme-challenge.${zone} in the Cloudflare zone ${zone}`);

  const id = page.url().split("/").pop()!;
  const cert = (await (await page.request.get(`/api/v1/certificates/${id}`)).json()) as { chainPem: string; domains: string[] };
  expect(cert.domains).toEqual([`*.${zone}`, zone]);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-e2e-dns-"));
  try {
    fs.writeFileSync(path.join(dir, "root.pem"), await pebbleIssuer(state.pebble.managementUrl, "roots"));
    fs.writeFileSync(path.join(dir, "int.pem"), await pebbleIssuer(state.pebble.managementUrl, "intermediates"));
    fs.writeFileSync(path.join(dir, "leaf.pem"), `${cert.chainPem.split("-----END CERTIFICATE-----")[0]}-----END CERTIFICATE-----\n`);
    expect(execFileSync("openssl", ["verify", "-CAfile", "root.pem", "-untrusted", "int.pem", "leaf.pem"], { cwd: dir }).toString().trim()).toBe("leaf.pem: OK");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }

  await page.goto("/settings/dns");
  const card = page.locator(`[data-testid=dns-credential][data-name="${CREDENTIAL}"]`);
  await expect(card.getByTestId("credential-certificates")).toContainText(`Used by *.${zone}`);
  await card.getByRole("button", { name: "Delete" }).click();
  await card.getByRole("button", { name: "Yes, delete" }).click();
  await expect(card.getByTestId("form-message").last()).toContainText(`"${CREDENTIAL}" is used by "*.${zone}" for DNS-01; delete those certificates or move them to another credential first`);
  await page.reload();
  await expect(page.locator(`[data-testid=dns-credential][data-name="${CREDENTIAL}"]`)).toBeVisible();
});

test("the REST API: bad input gets a clear 4xx with the field, never a 500 or the token", async ({ page, state }) => {
  await new LoginPage(page).signIn(ADMIN);
  const post = (url: string, data: unknown) => page.request.post(url, { data: data as object });
  const bodyOf = async (r: Awaited<ReturnType<typeof post>>) => ({ status: r.status(), ...((await r.json()) as { error: { code: string; message: string; fields?: Record<string, string[]> } }) });

  expect(await bodyOf(await post("/api/v1/dns-credentials", []))).toMatchObject({ status: 400, error: { code: "bad_request", message: expect.stringContaining("the body must be a JSON object") } });
  const empty = await bodyOf(await post("/api/v1/dns-credentials", {}));
  expect(empty).toMatchObject({ status: 400, error: { code: "validation_failed" } });
  expect(Object.keys(empty.error.fields ?? {}).sort()).toEqual(["name", "token"]);
  const taken = await bodyOf(await post("/api/v1/dns-credentials", { name: CREDENTIAL, token: state.cloudflare.token }));
  expect(taken).toMatchObject({ status: 409, error: { message: `there is already a DNS credential named "${CREDENTIAL}"` } });
  expect(await bodyOf(await post("/api/v1/dns-credentials/dns_missing/verify", {}))).toMatchObject({ status: 404, error: { message: 'DNS credential "dns_missing" was not found' } });

  const list = (await (await page.request.get("/api/v1/dns-credentials")).json()) as { items: { id: string; name: string }[] };
  const id = list.items.find((c) => c.name === CREDENTIAL)!.id;
  const badZone = await bodyOf(await post(`/api/v1/dns-credentials/${id}/test`, { zone: "not a zone" }));
  expect(badZone).toMatchObject({ status: 400, error: { fields: { zone: ["give a DNS zone name, like example.com"] } } });
  const dnsWithout = await bodyOf(await post("/api/v1/certificates", { source: "acme", domains: ["*.api.example.test"], challenge: "dns-01" }));
  expect(dnsWithout).toMatchObject({ status: 400, error: { fields: { dnsCredentialId: ["choose the DNS credential that may edit these names' zones"] } } });
  const single = (await (await page.request.get(`/api/v1/dns-credentials/${id}`)).text());
  expect(single).not.toContain(state.cloudflare.token);
});
