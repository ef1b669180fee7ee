import { createHash } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { TLSSocket } from "node:tls";
import { chromium, type Page } from "@playwright/test";
import { findFreePort } from "../lib/net";
import { ADMIN, expect, LoginPage, test, VIEWER } from "./fixtures";

// A real listener on the edge: created in the console, served by the worker, checked with a real
// TLS handshake. Uses the certificate "Shop" from 01 and the viewer from 02.
test.describe.configure({ mode: "serial" });

const LISTENER = "e2e https";
let upstream: http.Server;
let upstreamPort = 0;
let edgePort = 0;
let listenerPath = "";
let shopFingerprint = "";

// The WebSocket requests the upstream got: their raw header names, to tell which way they came.
const webSocketRequests: { url: string; rawHeaders: string[] }[] = [];

const CHAT_PAGE = `<!doctype html><title>chat</title><script>
  const ws = new WebSocket("wss://" + location.host + "/chat");
  ws.onopen = () => ws.send("hello through the edge");
  ws.onmessage = (e) => { document.title = "echo: " + e.data; ws.close(); };
  ws.onerror = () => { document.title = "websocket error"; };
</script>`;

/** A WebSocket server's side (RFC 6455): the handshake, then each text frame from the browser sent back. */
function echoWebSocket(req: http.IncomingMessage, socket: import("node:stream").Duplex) {
  webSocketRequests.push({ url: req.url ?? "", rawHeaders: req.rawHeaders });
  const accept = createHash("sha1").update(`${req.headers["sec-websocket-key"]}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest("base64");
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
  let buffered = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    // Short masked frames only (under 126 bytes), which is what this page sends.
    while (buffered.length >= 6 && buffered.length >= 6 + (buffered[1] & 0x7f)) {
      const length = buffered[1] & 0x7f;
      const mask = buffered.subarray(2, 6);
      const payload = Buffer.from(buffered.subarray(6, 6 + length).map((b, i) => b ^ mask[i % 4]));
      const opcode = buffered[0] & 0x0f;
      buffered = buffered.subarray(6 + length);
      if (opcode === 0x8) return socket.end(Buffer.from([0x88, 0]));
      if (opcode === 0x1) socket.write(Buffer.concat([Buffer.from([0x81, payload.length]), payload]));
    }
  });
  socket.on("error", () => socket.destroy());
}

test.beforeAll(async () => {
  upstream = http.createServer((req, res) => {
    if (req.url === "/chat.html") return res.writeHead(200, { "Content-Type": "text/html" }).end(CHAT_PAGE);
    res.writeHead(200, { "Content-Type": "text/plain" }).end("hello from upstream");
  });
  upstream.on("upgrade", echoWebSocket);
  upstreamPort = await findFreePort();
  await new Promise<void>((resolve) => upstream.listen(upstreamPort, "127.0.0.1", resolve));
  edgePort = await findFreePort();
});

test.afterAll(async () => {
  await new Promise((resolve) => upstream.close(resolve));
});

type Served = { fingerprint: string; body: string; status: number };

/** One HTTPS request to the edge with an SNI name, as a browser would send it. */
function requestOverTls(servername: string, maxVersion: "TLSv1.2" | "TLSv1.3" = "TLSv1.3"): Promise<Served> {
  return new Promise((resolve, reject) => {
    const options = { host: "127.0.0.1", port: edgePort, servername, maxVersion, path: "/", rejectUnauthorized: false, agent: false, timeout: 5000 };
    const request = https.get(options, (res) => {
      const fingerprint = (res.socket as TLSSocket).getPeerCertificate().fingerprint256;
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (body += chunk));
      res.on("end", () => resolve({ fingerprint, body, status: res.statusCode ?? 0 }));
      res.on("error", reject);
    });
    request.on("timeout", () => request.destroy(new Error("no answer within 5 s")));
    request.on("error", reject);
  });
}

const servedFingerprint = (servername: string, maxVersion?: "TLSv1.2" | "TLSv1.3") =>
  requestOverTls(servername, maxVersion).then(
    (r) => r.fingerprint,
    (err: NodeJS.ErrnoException) => `failed: ${err.code ?? ""} ${err.message}`,
  );

async function openListener(page: Page) {
  await page.goto(listenerPath);
  await expect(page.getByTestId("listener-name")).toHaveText(LISTENER);
}

test("an admin creates an HTTPS listener; bad input is refused field by field and the typed values stay", async ({ page }) => {
  await new LoginPage(page).signIn(ADMIN);
  await page.goto("/listeners");
  await page.getByRole("link", { name: "New listener" }).click();
  await expect(page.getByRole("heading", { name: "New listener" })).toBeVisible();

  await page.getByLabel("Name", { exact: true }).fill(LISTENER);
  await page.getByLabel("Bind address").fill("127.0.0.1");
  await page.getByLabel("Port", { exact: true }).fill("70000");
  await page.getByLabel("Upstream URL").fill("ftp://x");
  await page.getByRole("button", { name: "Create listener" }).click();
  await expect(page.locator("#port-error")).toContainText("between 1 and 65535");
  await expect(page.locator("#upstreamUrl-error")).toContainText("http:// or https://");
  await expect(page.getByLabel("Name", { exact: true })).toHaveValue(LISTENER);
  await expect(page.getByLabel("Upstream URL")).toHaveValue("ftp://x");
  await expect(page.getByLabel("Port", { exact: true })).toHaveValue("70000");

  await page.getByLabel("Port", { exact: true }).fill(String(edgePort));
  await page.getByLabel("Upstream URL").fill(`http://127.0.0.1:${upstreamPort}`);
  await page.getByRole("button", { name: "Create listener" }).click();
  await expect(page).toHaveURL(/\/listeners\/lst_/);
  await expect(page.getByTestId("listener-name")).toHaveText(LISTENER);
  await expect(page.getByTestId("listener-address")).toHaveText(`127.0.0.1:${edgePort}`);
  listenerPath = new URL(page.url()).pathname;

  // A second listener on the same address is refused before it is saved.
  await page.goto("/listeners/new");
  await page.getByLabel("Name", { exact: true }).fill("e2e clash");
  await page.getByLabel("Bind address").fill("127.0.0.1");
  await page.getByLabel("Port", { exact: true }).fill(String(edgePort));
  await page.getByLabel("Upstream URL").fill(`http://127.0.0.1:${upstreamPort}`);
  await page.getByRole("button", { name: "Create listener" }).click();
  await expect(page.locator("#port-error")).toContainText(`"${LISTENER}" already uses`);
});

test("an HTTP listener shows only its own fields and redirects to the HTTPS port", async ({ page }) => {
  await new LoginPage(page).signIn(ADMIN);
  await page.goto("/listeners/new");
  await expect(page.getByLabel("Port", { exact: true })).toHaveValue("443");
  await page.getByLabel("Kind").selectOption("http");
  await expect(page.getByLabel("Port", { exact: true })).toHaveValue("80");
  await expect(page.getByLabel("Minimum TLS version")).toHaveCount(0);
  await expect(page.getByLabel("Upstream URL")).toHaveCount(0);
  await page.getByLabel("Plain HTTP requests").selectOption("proxy");
  await expect(page.getByLabel("Upstream URL")).toBeVisible();
  await page.getByLabel("Plain HTTP requests").selectOption("redirect");

  const httpPort = await findFreePort();
  await page.getByLabel("Name", { exact: true }).fill("e2e plain");
  await page.getByLabel("Bind address").fill("127.0.0.1");
  await page.getByLabel("Port", { exact: true }).fill(String(httpPort));
  await page.getByLabel("HTTPS port to redirect to").fill(String(edgePort));
  await page.getByRole("button", { name: "Create listener" }).click();
  await expect(page.getByTestId("listener-name")).toHaveText("e2e plain");
  await expect(page.getByTestId("listener-settings")).toContainText(`redirect to HTTPS (port ${edgePort})`);

  const redirect = () =>
    new Promise<string>((resolve) => {
      http
        .get({ host: "127.0.0.1", port: httpPort, path: "/cart?x=1", headers: { Host: "shop.example.test" }, agent: false }, (res) => {
          res.resume();
          resolve(`${res.statusCode} ${res.headers.location}`);
        })
        .on("error", (err) => resolve(`failed: ${err.message}`));
    });
  await expect.poll(redirect, { timeout: 10_000 }).toBe(`301 https://shop.example.test:${edgePort}/cart?x=1`);
});

test("serving Shop on the listener maps its DNS names, and the edge serves it to a real TLS client", async ({ page }) => {
  await new LoginPage(page).signIn(ADMIN);
  await page.goto("/certificates");
  await page.getByRole("link", { name: "Shop", exact: true }).click();
  shopFingerprint = (await page.getByTestId("fingerprint").textContent())!.trim();
  await expect(page.getByTestId("placements-empty")).toBeVisible();

  await page.getByRole("button", { name: `Serve on ${LISTENER}` }).click();
  const served = page.getByTestId(`serve-${LISTENER}`).getByTestId("form-message");
  await expect(served).toContainText("shop.example.test, *.shop.example.test");
  await expect(served).not.toContainText("192.0.2.10");
  const placement = page.getByTestId("placements").getByRole("listitem").filter({ hasText: LISTENER });
  await expect(placement).toContainText(/: (\*\.)?shop\.example\.test, /);
  await expect(placement).toContainText("*.shop.example.test");

  await page.getByTestId("placements").getByRole("link", { name: LISTENER }).click();
  await expect(page.getByTestId("listener-name")).toHaveText(LISTENER);
  // The page re-reads itself until the edge has checked every new name.
  const check = page.getByTestId("check-shop.example.test");
  await expect(check).toHaveAttribute("data-status", "serving", { timeout: 15_000 });
  await expect(check).toHaveText("serving");
  await expect(page.getByTestId("check-*.shop.example.test")).toHaveAttribute("data-status", "serving", { timeout: 15_000 });

  const response = await requestOverTls("shop.example.test");
  expect(response.fingerprint).toBe(shopFingerprint);
  expect(response.status).toBe(200);
  expect(response.body).toBe("hello from upstream");
  expect((await requestOverTls("www.shop.example.test")).fingerprint).toBe(shopFingerprint);

  await page.goto("/listeners");
  const row = page.getByTestId("listener-table").getByRole("row", { name: new RegExp(LISTENER) });
  await expect(row).toContainText(`127.0.0.1:${edgePort}`);
  await expect(row).toContainText(`proxy to http://127.0.0.1:${upstreamPort}`);
  await expect(row).toContainText("Enabled");
  await expect(row.getByRole("cell").last()).toHaveText("2");
});

test("Chromium loads a page through the listener over HTTP/2 and opens a WebSocket on the same connection (RFC 8441)", async () => {
  // A browser of its own, to resolve the mapped name to the edge and to accept Shop's self-signed certificate.
  const browser = await chromium.launch({
    executablePath: process.env.PORTCULLIS_CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--host-resolver-rules=MAP shop.example.test 127.0.0.1"],
  });
  try {
    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    const page = await context.newPage();
    webSocketRequests.length = 0;
    await page.goto(`https://shop.example.test:${edgePort}/chat.html`);
    await expect(page).toHaveTitle("echo: hello through the edge");
    expect(await page.evaluate(() => (performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming).nextHopProtocol)).toBe("h2");
    // The upstream got an HTTP/1.1 upgrade made by the edge from the browser's extended CONNECT: every header
    // name is lower-case (HTTP/2's), where Chromium's own HTTP/1.1 handshake writes "Upgrade" and "Sec-WebSocket-Key".
    expect(webSocketRequests).toHaveLength(1);
    expect(webSocketRequests[0].url).toBe("/chat");
    const names = webSocketRequests[0].rawHeaders.filter((_, i) => i % 2 === 0);
    expect(names).toEqual(expect.arrayContaining(["upgrade", "connection", "sec-websocket-key", "x-forwarded-proto"]));
    expect(names.filter((n) => n !== n.toLowerCase())).toEqual([]);
    await context.close();
  } finally {
    await browser.close();
  }
});

test("a name that got the fallback shows under Unmapped names and is mapped with one click", async ({ page }) => {
  await new LoginPage(page).signIn(ADMIN);
  await openListener(page);

  // A bad name is refused by the add form, next to its field.
  await page.getByLabel("Hostname").fill("exa mple.test");
  await page.getByRole("button", { name: "Add mapping" }).click();
  await expect(page.locator("#hostname-error")).toContainText("space");

  await page.getByRole("button", { name: "Remove *.shop.example.test" }).click();
  await expect(page.getByTestId("mapping-*.shop.example.test")).toHaveCount(0);
  await expect(page.getByTestId("mapping-shop.example.test")).toBeVisible();

  // Without the wildcard mapping, www.shop.example.test gets the listener's self-signed fallback.
  await expect.poll(() => servedFingerprint("www.shop.example.test"), { timeout: 10_000 }).not.toBe(shopFingerprint);
  expect(await servedFingerprint("www.shop.example.test")).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);

  const unmapped = page.getByTestId("unmapped-www.shop.example.test");
  await expect(async () => {
    await page.reload();
    await expect(unmapped).toBeVisible({ timeout: 1000 });
  }).toPass({ timeout: 10_000 });
  await expect(unmapped.getByLabel("Certificate for www.shop.example.test")).toHaveValue(/^crt_/);
  await expect(unmapped.locator("option").first()).toHaveText("Shop");
  await unmapped.getByRole("button", { name: "Map www.shop.example.test" }).click();

  await expect(page.getByTestId("mapping-www.shop.example.test")).toBeVisible();
  await expect(unmapped).toHaveCount(0);
  await expect(page.getByTestId("check-www.shop.example.test")).toHaveAttribute("data-status", "serving", { timeout: 15_000 });
  expect(await servedFingerprint("www.shop.example.test")).toBe(shopFingerprint);
});

test("a viewer sees the listener and its checks but no buttons that change it", async ({ page }) => {
  await new LoginPage(page).signIn(VIEWER);
  await page.goto("/listeners");
  await expect(page.getByRole("link", { name: "New listener" })).toHaveCount(0);
  await page.getByRole("link", { name: LISTENER }).click();
  await expect(page.getByTestId("listener-name")).toHaveText(LISTENER);
  await expect(page.getByTestId("check-shop.example.test")).toHaveText("serving");
  await expect(page.getByRole("link", { name: "Edit" })).toHaveCount(0);
  await expect(page.getByRole("button", { name: /delete|disable|enable|remove|save|add mapping|^map/i })).toHaveCount(0);
  await expect(page.getByLabel("Hostname")).toHaveCount(0);

  await page.goto("/certificates");
  await page.getByRole("link", { name: "Shop", exact: true }).click();
  await expect(page.getByTestId("placements")).toContainText(LISTENER);
  await expect(page.getByRole("button", { name: /Serve on/ })).toHaveCount(0);

  const id = listenerPath.split("/").pop();
  expect((await page.request.delete(`/api/v1/listeners/${id}`)).status()).toBe(403);
});

test("an admin edits, disables, enables and then deletes the listener; the edge follows each change", async ({ page }) => {
  await new LoginPage(page).signIn(ADMIN);
  await openListener(page);

  await page.getByRole("link", { name: "Edit" }).click();
  await expect(page.getByLabel("Port", { exact: true })).toHaveValue(String(edgePort));
  await expect(page.getByLabel("Upstream URL")).toHaveValue(`http://127.0.0.1:${upstreamPort}`);
  await expect(page.getByText("a listener's kind cannot change")).toBeVisible();
  await page.getByLabel("Minimum TLS version").selectOption("TLSv1.3");
  const upstreamCertificate = page.getByLabel("Upstream certificate (https:// upstreams)");
  await expect(upstreamCertificate).toHaveValue("true");
  await upstreamCertificate.selectOption("false");
  await page.getByRole("button", { name: "Save listener" }).click();
  await expect(page.getByTestId("listener-settings")).toContainText("TLS 1.3");
  // A client that stops at TLS 1.2 is now turned away; a TLS 1.3 client still gets Shop.
  await expect.poll(() => servedFingerprint("shop.example.test", "TLSv1.2"), { timeout: 10_000 }).toMatch(/^failed/);
  expect(await servedFingerprint("shop.example.test")).toBe(shopFingerprint);

  await page.getByRole("button", { name: "Disable" }).click();
  await expect(page.getByText(`Listener "${LISTENER}" disabled`)).toBeVisible();
  await expect(page.getByTestId("listener-state")).toHaveText("Disabled");
  await expect(page.getByTestId("check-shop.example.test")).toHaveText("not served: the listener is disabled");
  await expect.poll(() => servedFingerprint("shop.example.test"), { timeout: 10_000 }).toMatch(/ECONNREFUSED/);

  await page.getByRole("button", { name: "Enable" }).click();
  await expect(page.getByTestId("listener-state")).toHaveText("Enabled");
  await expect.poll(() => servedFingerprint("shop.example.test"), { timeout: 10_000 }).toBe(shopFingerprint);
  // Disabling and enabling kept what the form saved.
  const saved = await (await page.request.get(`/api/v1/listeners/${listenerPath.split("/").pop()}`)).json();
  expect([saved.minTlsVersion, saved.upstreamTlsVerify]).toEqual(["TLSv1.3", false]);

  await page.getByRole("button", { name: "Delete" }).click();
  await page.getByRole("button", { name: "Cancel" }).click();
  await expect(page.getByTestId("listener-name")).toHaveText(LISTENER);
  await page.getByRole("button", { name: "Delete" }).click();
  await page.getByRole("button", { name: "Yes, delete" }).click();
  await expect(page).toHaveURL(/\/listeners$/);
  await expect(page.getByRole("link", { name: LISTENER })).toHaveCount(0);
  await expect.poll(() => servedFingerprint("shop.example.test"), { timeout: 10_000 }).toMatch(/ECONNREFUSED/);

  await page.goto("/certificates");
  await page.getByRole("link", { name: "Shop", exact: true }).click();
  await expect(page.getByTestId("placements-empty")).toBeVisible();
});
