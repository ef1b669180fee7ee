import http from "node:http";
import tls from "node:tls";
import { findFreePort } from "../lib/net";
import { ADMIN, expect, LoginPage, test } from "./fixtures";

// Certificates → New → Let's Encrypt against a real ACME CA (pebble, started by the global setup):
// the badge turns Requesting, then Active, in the open page; the timeline shows each step; one click
// serves it on a listener, and a real handshake gets it.

test.describe.configure({ mode: "serial" });

const HOST = "acme-e2e.example.test";
let upstream: http.Server;

test.beforeAll(async () => {
  upstream = http.createServer((_req, res) => res.end("hello from the acme upstream"));
  const upstreamPort = await findFreePort();
  await new Promise<void>((r) => upstream.listen(upstreamPort, "127.0.0.1", r));
  process.env.PORTCULLIS_E2E_ACME_UPSTREAM = String(upstreamPort);
});

test.afterAll(() => upstream?.close());

function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername: HOST, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()!.fingerprint256);
      socket.end();
    });
    socket.once("error", reject);
  });
}

test("request a certificate from the CA and watch it turn Active without a reload", async ({ page, state }) => {
  await new LoginPage(page).signIn(ADMIN);
  // The CA's validation reaches these listeners, as it would reach ports 80 and 443.
  for (const data of [
    { name: "acme http", kind: "http", bindAddress: "127.0.0.1", port: state.pebble.httpPort, httpAction: "redirect" },
    { name: "acme https", kind: "https", bindAddress: "127.0.0.1", port: state.pebble.tlsPort, upstreamUrl: `http://127.0.0.1:${process.env.PORTCULLIS_E2E_ACME_UPSTREAM}` },
  ]) {
    expect((await page.request.post("/api/v1/listeners", { data })).status()).toBe(201);
  }

  await page.goto("/certificates/new?source=acme");
  await page.getByLabel("Names", { exact: true }).fill(`*.${HOST}`);
  await page.getByRole("button", { name: "Request certificate" }).click();
  await expect(page.locator("#domains-error")).toContainText("DNS-01");
  await expect(page.getByTestId("agree-tos")).toBeVisible();

  await page.getByLabel("Names", { exact: true }).fill(HOST);
  await page.getByRole("button", { name: "Request certificate" }).click();
  await expect(page.getByText(/terms of service to create its account/)).toBeVisible();
  await page.getByTestId("agree-tos").check();
  await page.getByRole("button", { name: "Request certificate" }).click();
  await expect(page.getByTestId("certificate-name")).toHaveText(HOST);

  // Every text the badge shows from here on, and a marker that a reload would wipe.
  await page.evaluate(() => {
    const w = window as unknown as { __badges: string[]; __noReload: boolean };
    w.__noReload = true;
    w.__badges = [document.querySelector("[data-testid=status-badge]")?.textContent ?? ""];
    new MutationObserver(() => {
      const text = document.querySelector("[data-testid=status-badge]")?.textContent ?? "";
      if (w.__badges.at(-1) !== text) w.__badges.push(text);
    }).observe(document.body, { subtree: true, childList: true, characterData: true });
  });
  await expect(page.getByTestId("status-badge").first()).toHaveText("Active", { timeout: 15_000 });
  const badges = await page.evaluate(() => (window as unknown as { __badges: string[] }).__badges);
  // Seen here: Pending → Requesting → Active (Pending is skipped when the worker is quicker than the page).
  expect(badges.at(-1)).toBe("Active");
  expect(badges.at(-2)).toBe("Requesting");
  expect(badges.slice(0, -1).every((b) => b === "Pending" || b === "Requesting")).toBe(true);
  expect(await page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload)).toBe(true);

  const timeline = page.getByTestId("timeline");
  for (const step of ["tls.requesting", "acme.order_created", "acme.challenge_presented", "acme.challenge_valid", "acme.finalized", "tls.issued"]) {
    await expect(timeline).toContainText(step);
  }
  await expect(page.getByTestId("renewal-plan")).toContainText("one third");

  const fingerprint = (await page.getByTestId("fingerprint").textContent())!.trim();
  await page.getByRole("button", { name: "Serve on acme https" }).click();
  await expect(page.getByTestId("placements")).toContainText("acme https");
  await expect.poll(() => servedFingerprint(state.pebble.tlsPort), { timeout: 5_000 }).toBe(fingerprint);
});
