import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { findFreePort } from "../lib/net";
import { ADMIN, expect, LoginPage, notReloaded, test, watchBadges, watchedBadges } from "./fixtures";

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

function servedFingerprint(port: number, servername = HOST): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false }, () => {
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
  // Every text the status badge shows, watched from before the request is sent: the form moves to the
  // certificate's page without a reload, and a worker that wins the race with that page's first render
  // must not hide the Requesting the page showed. The marker would be wiped by a reload.
  await watchBadges(page);
  await page.getByRole("button", { name: "Request certificate" }).click();
  await expect(page.getByTestId("certificate-name")).toHaveText(HOST);
  await expect(page.getByTestId("status-badge").first()).toHaveText("Active", { timeout: 15_000 });
  const badges = await watchedBadges(page);
  // Seen here: Pending → Requesting → Active (the page opened by the form starts at Pending however quick the worker).
  expect(badges.at(-1)).toBe("Active");
  expect(badges.at(-2)).toBe("Requesting");
  expect(badges.slice(0, -1).every((b) => b === "Pending" || b === "Requesting")).toBe(true);
  expect(await notReloaded(page)).toBe(true);

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

test("a certificate's page that loads only after the CA has finished still shows Requesting, then Active", async ({ page }) => {
  await new LoginPage(page).signIn(ADMIN);
  const name = `late.${HOST}`;
  await page.goto("/certificates/new?source=acme");
  await page.getByLabel("Names", { exact: true }).fill(name);
  // The form opens the new certificate's page; hold that page back until the certificate is Active, so
  // that the page is read after every step and the stream brings none: the badge must still step.
  let heldBack = false;
  await page.route(/\/certificates\/(?!new)[^/?]+(\?.*)?$/, async (route) => {
    const id = new URL(route.request().url()).pathname.split("/").pop()!;
    await expect
      .poll(async () => ((await (await page.request.get(`/api/v1/certificates/${id}`)).json()) as { status?: string }).status, { timeout: 15_000 })
      .toBe("active");
    heldBack = true;
    await route.continue();
  });
  await watchBadges(page);
  await page.getByRole("button", { name: "Request certificate" }).click();
  await expect(page.getByTestId("certificate-name")).toHaveText(name);
  await expect(page.getByTestId("status-badge").first()).toHaveText("Active", { timeout: 15_000 });
  expect(heldBack).toBe(true);
  const badges = await watchedBadges(page);
  expect(badges, badges.join(" → ")).toEqual(["Pending", "Requesting", "Active"]);
  // A later visit starts from the status it is read with.
  await page.unrouteAll();
  await page.reload();
  await expect(page.getByTestId("status-badge").first()).toHaveText("Active");
});

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

test("TLS-ALPN-01 through the REST API: issued, served, and verified against the CA's chain", async ({ page, state }) => {
  await new LoginPage(page).signIn(ADMIN);
  const name = `alpn.${HOST}`;
  const created = await page.request.post("/api/v1/certificates", { data: { source: "acme", domains: [name], challenge: "tls-alpn-01" } });
  expect(created.status()).toBe(201);
  const { id, status } = (await created.json()) as { id: string; status: string };
  expect(status).toBe("pending");
  await expect
    .poll(async () => ((await (await page.request.get(`/api/v1/certificates/${id}`)).json()) as { status: string }).status, { timeout: 15_000 })
    .toBe("active");
  const cert = (await (await page.request.get(`/api/v1/certificates/${id}`)).json()) as { fingerprintSha256: string; chainPem: string };

  const listeners = (await (await page.request.get("/api/v1/listeners")).json()) as { items?: { id: string; name: string }[] } | { id: string; name: string }[];
  const items = Array.isArray(listeners) ? listeners : (listeners.items ?? []);
  const https443 = items.find((l) => l.name === "acme https")!;
  const mapped = await page.request.put(`/api/v1/listeners/${https443.id}/mappings`, { data: { mappings: [{ hostname: HOST, certificateId: (await findId(page, HOST))! }, { hostname: name, certificateId: id }] } });
  expect(mapped.status()).toBe(200);
  await expect.poll(() => servedFingerprint(state.pebble.tlsPort, name), { timeout: 5_000 }).toBe(cert.fingerprintSha256);

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-e2e-acme-"));
  try {
    fs.writeFileSync(path.join(dir, "root.pem"), await pebbleIssuer(state.pebble.managementUrl, "roots"));
    fs.writeFileSync(path.join(dir, "int.pem"), await pebbleIssuer(state.pebble.managementUrl, "intermediates"));
    fs.writeFileSync(path.join(dir, "leaf.pem"), `${cert.chainPem.split("-----END CERTIFICATE-----")[0]}-----END CERTIFICATE-----\n`);
    const out = execFileSync("openssl", ["verify", "-CAfile", "root.pem", "-untrusted", "int.pem", "leaf.pem"], { cwd: dir }).toString().trim();
    expect(out).toBe("leaf.pem: OK");
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

async function findId(page: import("@playwright/test").Page, name: string) {
  const list = (await (await page.request.get("/api/v1/certificates?limit=200")).json()) as { items: { id: string; name: string }[] };
  return list.items.find((c) => c.name === name)?.id;
}
