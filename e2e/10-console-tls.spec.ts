import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import type { APIRequestContext, BrowserContext, Page } from "@playwright/test";
import { findFreePort } from "../lib/net";
import { startPebble, type Pebble } from "../tests/support/pebble";
import { healthStatus, spawnConsole as spawnPortcullis, stopConsole, type Spawned } from "./console-process";
import { ADMIN, expect, LoginPage, markPage, notReloaded, test, watchBadges, watchedBadges } from "./fixtures";

// The console's own TLS, seen by an operator. The global e2e console runs plain HTTP on loopback, so
// this spec starts a second console + worker (`portcullis serve`) in provided mode over PEM files it
// writes: first a self-signed pair, then a certificate from a test CA made here. The banner names the
// self-signed certificate, then goes away in the open page, without a reload, once the files are
// replaced (the console's watcher hot-reloads them); Settings → TLS shows the new fingerprint. Also:
// the security headers on a page, an API answer and a static asset, over HTTP and HTTPS, and no
// Content-Security-Policy violation in the browser on the main pages; Enable Let's Encrypt against
// its own pebble (a third console); the local CA's pin and Regenerate; a viewer's read-only page;
// and a console behind nginx configured exactly as docs/tls-modes.md shows.

test.describe.configure({ mode: "serial" });

const root = path.resolve(import.meta.dirname, "..");
const TLS_ADMIN = { email: "tls-admin@example.test", password: "tls admin password 1" };
const MAIN_PAGES = ["/", "/certificates", "/certificates/new", "/listeners", "/events", "/settings", "/settings/tls", "/settings/acme", "/settings/dns", "/settings/tokens", "/settings/users", "/settings/audit"];

let workDir: string;
let consoleUrl: string;
let certFile: string;
let keyFile: string;
let trustedLeaf: { certPem: string; keyPem: string };
let selfSignedFingerprint: string;

function openssl(args: string[]) {
  execFileSync("openssl", args, { cwd: workDir, stdio: "pipe" });
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
const SAN = "subjectAltName=IP:127.0.0.1,DNS:localhost";

/** A self-signed pair, and a leaf issued by a separate test CA (so: not self-signed), both for 127.0.0.1. */
function makeCertificates() {
  openssl(["req", "-x509", ...EC, "-keyout", "self.key", "-out", "self.crt", "-days", "2", "-subj", "/CN=portcullis self-signed e2e", "-addext", SAN]);
  openssl([
    "req", "-x509", ...EC, "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=Portcullis e2e test CA",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
  ]);
  openssl(["req", "-new", ...EC, "-keyout", "leaf.key", "-out", "leaf.csr", "-subj", "/CN=127.0.0.1"]);
  fs.writeFileSync(path.join(workDir, "leaf.ext"), `${SAN}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature\n`);
  openssl(["x509", "-req", "-in", "leaf.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out", "leaf.crt", "-days", "2", "-extfile", "leaf.ext"]);
  const read = (name: string) => fs.readFileSync(path.join(workDir, name), "utf8");
  trustedLeaf = { certPem: read("leaf.crt") + read("ca.crt"), keyPem: read("leaf.key") };
  selfSignedFingerprint = new crypto.X509Certificate(read("self.crt")).fingerprint256;
}

const leafFingerprint = () => new crypto.X509Certificate(trustedLeaf.certPem).fingerprint256;
const normalizeFingerprint = (text: string) => text.replace(/[^0-9a-f]/gi, "").toLowerCase();

function servedFingerprint(port: number, servername = "localhost"): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false }, () => {
      resolve(socket.getPeerX509Certificate()!.fingerprint256);
      socket.end();
    });
    socket.once("error", reject);
  });
}

/** `portcullis serve` with its log in this spec's working directory. */
const spawnConsole = (name: string, url: string, env: Record<string, string | undefined>) => spawnPortcullis(name, url, env, workDir);

let providedConsole: Spawned | undefined;
let providedEnv: Record<string, string>;
let acmeConsole: Spawned | undefined;
let proxiedConsole: Spawned | undefined;
let nginx: ChildProcess | undefined;
let pebble: Pebble | undefined;

test.beforeAll(async () => {
  test.setTimeout(180_000);
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-e2e-tls-"));
  makeCertificates();
  certFile = path.join(workDir, "console.crt");
  keyFile = path.join(workDir, "console.key");
  fs.copyFileSync(path.join(workDir, "self.crt"), certFile);
  fs.copyFileSync(path.join(workDir, "self.key"), keyFile);

  const port = await findFreePort();
  consoleUrl = `https://127.0.0.1:${port}`;
  providedEnv = {
    PORTCULLIS_DATA_DIR: path.join(workDir, "data-provided"),
    PORTCULLIS_HOST: "127.0.0.1",
    PORTCULLIS_PORT: String(port),
    PORTCULLIS_WORKER_HEALTH_PORT: String(await findFreePort()),
    PORTCULLIS_TLS_MODE: "provided",
    PORTCULLIS_TLS_CERT: certFile,
    PORTCULLIS_TLS_KEY: keyFile,
    PORTCULLIS_ADMIN_EMAIL: TLS_ADMIN.email,
    PORTCULLIS_ADMIN_PASSWORD: TLS_ADMIN.password,
  };
  providedConsole = await spawnConsole("provided", consoleUrl, providedEnv);
});

test.afterAll(async () => {
  await stopConsole(providedConsole);
  await stopConsole(acmeConsole);
  await stopConsole(proxiedConsole);
  await stopConsole(nginx ? { child: nginx, logFile: "" } : undefined);
  await pebble?.stop();
  if (workDir && !process.env.PORTCULLIS_E2E_KEEP) fs.rmSync(workDir, { recursive: true, force: true });
});

async function tlsContext(browser: import("@playwright/test").Browser, baseURL = consoleUrl): Promise<{ context: BrowserContext; page: Page }> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, baseURL });
  const page = await context.newPage();
  await new LoginPage(page).signIn(TLS_ADMIN);
  return { context, page };
}

/** Every Content-Security-Policy complaint the browser logs while the pages load. */
async function cspViolations(page: Page, paths: string[]): Promise<string[]> {
  const violations: string[] = [];
  const onConsole = (message: import("@playwright/test").ConsoleMessage) => {
    const text = message.text();
    if (/Content[ -]Security[ -]Policy|CSP/i.test(text)) violations.push(`${page.url()}: ${text}`);
  };
  page.on("console", onConsole);
  await page.exposeBinding("__reportCsp", (_source, text: string) => violations.push(text)).catch(() => {});
  await page.addInitScript(() => {
    document.addEventListener("securitypolicyviolation", (e) => {
      (window as unknown as { __reportCsp?: (t: string) => void }).__reportCsp?.(`${location.pathname}: ${e.violatedDirective} blocked ${e.blockedURI}`);
    });
  });
  for (const p of paths) {
    await page.goto(p);
    await expect(page.locator("h1").first()).toBeVisible();
    // Hydration, the live stream's connection and lazy chunks happen after load.
    await page.waitForTimeout(300);
  }
  // The probe that shows this check can fail: a foreign script, blocked by the policy before any request.
  const seen = violations.length;
  await page.evaluate(() => {
    const probe = document.createElement("script");
    probe.src = "http://127.0.0.1:9/csp-probe.js";
    document.head.append(probe);
  });
  await expect.poll(() => violations.length, { message: "the CSP probe was not reported: the violation check is blind" }).toBeGreaterThan(seen);
  page.off("console", onConsole);
  return violations.slice(0, seen);
}

async function expectSecurityHeaders(request: APIRequestContext, baseURL: string, opts: { hsts: boolean; staticAsset: string }) {
  for (const url of ["/login", "/api/v1/health", opts.staticAsset]) {
    const response = await request.get(`${baseURL}${url}`, { maxRedirects: 0 });
    expect(response.status(), url).toBeLessThan(400);
    const headers = response.headers();
    expect(headers["x-content-type-options"], url).toBe("nosniff");
    expect(headers["x-frame-options"], url).toBe("DENY");
    expect(headers["content-security-policy"], url).toContain("frame-ancestors 'none'");
    expect(headers["content-security-policy"], url).toContain("default-src 'self'");
    if (opts.hsts) expect(headers["strict-transport-security"], url).toBe("max-age=31536000; includeSubDomains");
    else expect(headers["strict-transport-security"], url).toBeUndefined();
  }
}

async function firstStaticAsset(page: Page): Promise<string> {
  await page.goto("/login");
  const src = await page.locator('script[src^="/_next/static/"]').first().getAttribute("src");
  expect(src).toBeTruthy();
  return src!;
}

test("the banner names the self-signed console certificate and goes away, without a reload, once a CA-issued one is served", async ({ browser }) => {
  test.setTimeout(120_000);
  expect(await servedFingerprint(Number(new URL(consoleUrl).port))).toBe(selfSignedFingerprint);
  const { context, page } = await tlsContext(browser);
  try {
    await page.goto("/");
    const banner = page.getByTestId("service-banner");
    await expect(banner).toContainText("self-signed");
    await expect(banner).toContainText("console");
    const link = banner.getByRole("link", { name: /TLS settings/i });
    await expect(link).toHaveAttribute("href", "/settings/tls");

    // Settings → TLS tells the same truth: the provided, self-signed certificate, and the locked variables.
    await link.click();
    await expect(page).toHaveURL(/\/settings\/tls$/);
    await expect(page.getByTestId("tls-mode")).toHaveText("provided");
    await expect(page.getByTestId("tls-mode-source")).toContainText("PORTCULLIS_TLS_MODE");
    await expect(page.getByTestId("served-kind")).toContainText("Self-signed");
    await expect(page.getByTestId("served-trusted")).toHaveText("Not trusted by browsers");
    expect(normalizeFingerprint(await page.getByTestId("served-fingerprint").innerText())).toBe(normalizeFingerprint(selfSignedFingerprint));
    await expect(page.getByTestId("provided-files")).toContainText(certFile);
    await expect(page.getByTestId("tls-upload-locked")).toContainText("PORTCULLIS_TLS_CERT");
    await expect(page.getByLabel("Choose a mode")).toBeDisabled();

    // The swap happens with the page open: a marker on window dies with any reload.
    await page.goto("/");
    await expect(banner).toContainText("self-signed");
    await markPage(page);
    fs.writeFileSync(keyFile, trustedLeaf.keyPem);
    fs.writeFileSync(certFile, trustedLeaf.certPem);

    await expect.poll(() => servedFingerprint(Number(new URL(consoleUrl).port)), { timeout: 20_000 }).toBe(leafFingerprint());
    await expect(page.getByTestId("service-banner")).toHaveCount(0, { timeout: 20_000 });
    expect(await notReloaded(page)).toBe(true);

    await page.goto("/settings/tls");
    await expect(page.getByTestId("served-kind")).toHaveText("Provided");
    await expect(page.getByTestId("served-trusted")).toHaveText("Trusted by browsers");
    expect(normalizeFingerprint(await page.getByTestId("served-fingerprint").innerText())).toBe(normalizeFingerprint(leafFingerprint()));
    await expect(page.getByTestId("served-names")).toContainText("127.0.0.1");
    await expect(page.getByTestId("service-banner")).toHaveCount(0);
  } finally {
    await context.close();
  }
});

test("security headers over HTTPS (with HSTS), a Secure session cookie, and no CSP violation on the main pages", async ({ browser }) => {
  test.setTimeout(120_000);
  const { context, page } = await tlsContext(browser);
  try {
    const cookies = await context.cookies(consoleUrl);
    const session = cookies.find((c) => /session-token/.test(c.name));
    expect(session, cookies.map((c) => c.name).join(", ")).toBeTruthy();
    expect(session!.secure).toBe(true);

    await expectSecurityHeaders(context.request, consoleUrl, { hsts: true, staticAsset: await firstStaticAsset(page) });
    expect(await cspViolations(page, MAIN_PAGES)).toEqual([]);
  } finally {
    await context.close();
  }
});

test("security headers over plain HTTP (no HSTS) on the main console, and no CSP violation there either", async ({ page, baseURL }) => {
  test.setTimeout(120_000);
  await new LoginPage(page).signIn(ADMIN);
  await expectSecurityHeaders(page.request, baseURL!, { hsts: false, staticAsset: await firstStaticAsset(page) });
  expect(await cspViolations(page, MAIN_PAGES)).toEqual([]);
});

test("Settings → TLS → Enable Let's Encrypt: the console's certificate goes Requesting → Active against a real ACME CA and is swapped in without a restart or a reload", async ({ browser }) => {
  test.setTimeout(240_000);
  // Its own pebble (the global one's CA bundle is not in the e2e state), and its own console + worker:
  // started on loopback without PORTCULLIS_TLS_MODE (so Settings → TLS may choose), first plain HTTP.
  pebble = await startPebble();
  const domain = "console-tls-e2e.example.test";
  const port = await findFreePort();
  const env = {
    PORTCULLIS_DATA_DIR: path.join(workDir, "data-acme"),
    PORTCULLIS_HOST: "127.0.0.1",
    PORTCULLIS_PORT: String(port),
    PORTCULLIS_WORKER_HEALTH_PORT: String(await findFreePort()),
    PORTCULLIS_ADMIN_EMAIL: TLS_ADMIN.email,
    PORTCULLIS_ADMIN_PASSWORD: TLS_ADMIN.password,
    PORTCULLIS_ACME_DIRECTORY_URL: pebble.directoryUrl,
    PORTCULLIS_ACME_CA_BUNDLE: pebble.caBundlePath,
  };
  const httpUrl = `http://127.0.0.1:${port}`;
  const httpsUrl = `https://127.0.0.1:${port}`;
  acmeConsole = await spawnConsole("acme", httpUrl, env);

  // On plain HTTP: the CA's HTTP-01 validation reaches this HTTP listener (pebble dials its httpPort as
  // it would dial port 80), and a self-signed certificate uploaded for the console makes it HTTPS from
  // the next start on.
  const setup = await tlsContext(browser, httpUrl);
  try {
    const listener = await setup.page.request.post("/api/v1/listeners", { data: { name: "acme http-01", kind: "http", bindAddress: "127.0.0.1", port: pebble.httpPort, httpAction: "redirect" } });
    expect(listener.status(), await listener.text()).toBe(201);
    const upload = await setup.page.request.post("/api/v1/settings/tls/upload", { data: { certificatePem: fs.readFileSync(path.join(workDir, "self.crt"), "utf8"), privateKeyPem: fs.readFileSync(path.join(workDir, "self.key"), "utf8") } });
    expect(upload.status(), await upload.text()).toBe(200);
    expect(((await upload.json()) as { restartRequired: string | null }).restartRequired).toBeTruthy();
    await setup.page.goto("/settings/tls");
    await expect(setup.page.getByTestId("tls-restart-required")).toBeVisible();
  } finally {
    await setup.context.close();
  }
  await stopConsole(acmeConsole);
  await stopConsole(proxiedConsole);
  await stopConsole(nginx ? { child: nginx, logFile: "" } : undefined);
  acmeConsole = await spawnConsole("acme", httpsUrl, env);

  const { context, page } = await tlsContext(browser, httpsUrl);
  try {
    await page.goto("/settings/tls");
    await expect(page.getByTestId("tls-mode")).toHaveText("provided");
    await expect(page.getByTestId("tls-mode-source")).toContainText("Settings");
    await expect(page.getByTestId("service-banner")).toContainText("self-signed");

    await watchBadges(page, "[data-testid=console-acme-status] [data-testid=status-badge]");
    await page.getByLabel("Enable Let's Encrypt").check();
    await page.getByLabel("Console domain").fill(domain);
    await page.getByLabel("Contact email").fill("ops@example.test");
    await page.getByRole("button", { name: "Save", exact: true }).click();
    await expect(page.getByTestId("form-message").filter({ hasText: "Saved" })).toBeVisible();

    const status = page.getByTestId("console-acme-status").getByTestId("status-badge");
    await expect(status).toHaveText("Active", { timeout: 90_000 });
    const badges = await watchedBadges(page);
    // Stepped like a certificate page's badge: Requesting shows before Active however quick the CA was.
    expect(badges.at(-1), badges.join(" → ")).toBe("Active");
    expect(badges.at(-2), badges.join(" → ")).toBe("Requesting");
    expect(badges.slice(0, -1).every((b) => b === "Pending" || b === "Requesting"), badges.join(" → ")).toBe(true);

    // Swapped in on the same port, no restart: the page and a real handshake agree on the issued certificate; the banner goes.
    await expect(page.getByTestId("tls-mode")).toHaveText("acme", { timeout: 15_000 });
    await expect(page.getByLabel("Choose a mode")).toHaveValue("acme");
    await expect(page.getByTestId("provided-files")).toContainText("stored");
    await expect(page.getByTestId("served-kind")).toHaveText("Let's Encrypt (ACME)", { timeout: 30_000 });
    await expect(page.getByTestId("served-trusted")).toHaveText("Trusted by browsers");
    await expect(page.getByTestId("service-banner")).toHaveCount(0, { timeout: 15_000 });
    const shown = normalizeFingerprint(await page.getByTestId("served-fingerprint").innerText());
    expect(normalizeFingerprint(await servedFingerprint(port, domain))).toBe(shown);
    expect(normalizeFingerprint(await servedFingerprint(port))).toBe(shown);
    expect(await notReloaded(page)).toBe(true);
    await expect(page.getByTestId("console-acme-status").getByRole("link", { name: "Open the certificate" })).toHaveAttribute("href", /^\/certificates\/.+/);

    // Uploading for the console: each problem beside its field, and nothing changes.
    const uploadForm = page.getByTestId("tls-upload-form");
    await uploadForm.getByRole("button", { name: "Upload and serve" }).click();
    await expect(page.locator("#tlsCertificatePem-error")).toContainText("paste the certificate");
    await expect(page.locator("#tlsPrivateKeyPem-error")).toContainText("paste the private key");
    await page.getByLabel("Console certificate and chain", { exact: true }).fill("this is not a certificate");
    await page.getByLabel("Console private key", { exact: true }).fill(fs.readFileSync(path.join(workDir, "self.key"), "utf8"));
    await uploadForm.getByRole("button", { name: "Upload and serve" }).click();
    await expect(page.locator("#tlsCertificatePem-error")).not.toBeEmpty();
    await expect(uploadForm.getByTestId("form-message")).not.toBeEmpty();
    await expect(page.getByTestId("tls-mode")).toHaveText("acme");
    expect(normalizeFingerprint(await servedFingerprint(port, domain))).toBe(shown);
  } finally {
    await context.close();
  }
});

test("the local CA: its fingerprint as /api/v1/ca gives it, the PEM to download, a pin hint, and Regenerate after a confirmation", async ({ browser }) => {
  const { context, page } = await tlsContext(browser);
  try {
    // A console in provided mode has no local CA until one is asked for; regenerating creates it.
    expect((await page.request.get("/api/v1/ca")).status()).toBe(404);
    expect((await page.request.post("/api/v1/settings/tls/regenerate")).status()).toBe(200);
    const ca = (await (await page.request.get("/api/v1/ca")).json()) as { fingerprintSha256: string; certificatePem: string };

    await page.goto("/settings/tls");
    expect(normalizeFingerprint(await page.getByTestId("ca-fingerprint").innerText())).toBe(normalizeFingerprint(ca.fingerprintSha256));
    await expect(page.getByTestId("ca-curl-hint")).toContainText(`curl --cacert portcullis-local-ca.pem ${consoleUrl}/api/v1/health`);
    // The link, then what it fetches. (Chromium may cancel a download from an origin whose certificate it
    // does not trust, which this console's is, so the file is fetched through the page's own context.)
    const link = page.getByTestId("ca-download");
    await expect(link).toHaveAttribute("download", "portcullis-local-ca.pem");
    const fetched = await page.request.get((await link.getAttribute("href"))!);
    expect(fetched.status()).toBe(200);
    expect(fetched.headers()["content-type"]).toContain("application/x-pem-file");
    const pem = await fetched.text();
    expect(new crypto.X509Certificate(pem).fingerprint256).toBe(new crypto.X509Certificate(ca.certificatePem).fingerprint256);

    const served = await page.getByTestId("served-fingerprint").innerText();
    await page.getByRole("button", { name: "Regenerate local-CA certificate" }).click();
    await expect(page.getByRole("alertdialog")).toContainText("Issue a new server certificate from the local CA");
    await page.getByRole("button", { name: "Cancel" }).click();
    await expect(page.getByRole("alertdialog")).toHaveCount(0);
    await page.getByRole("button", { name: "Regenerate local-CA certificate" }).click();
    await page.getByRole("button", { name: "Yes, regenerate" }).click();
    await expect(page.getByTestId("form-message").filter({ hasText: "local CA" })).toBeVisible();
    // Same CA (pins keep working); the provided certificate is still the one served in this mode.
    expect(normalizeFingerprint(await page.getByTestId("ca-fingerprint").innerText())).toBe(normalizeFingerprint(ca.fingerprintSha256));
    await expect(page.getByTestId("served-fingerprint")).toHaveText(served);
  } finally {
    await context.close();
  }
});

test("a viewer sees Settings → TLS read-only, and the API refuses their changes", async ({ browser }) => {
  const viewer = { email: "tls-viewer@example.test", password: "tls viewer password 1" };
  const env: Record<string, string | undefined> = { ...process.env, ...providedEnv };
  delete env.DATABASE_URL;
  execFileSync(process.execPath, [path.join(root, "bin/portcullis.mjs"), "user", "add", "--email", viewer.email, "--role", "viewer"], { cwd: root, env: env as NodeJS.ProcessEnv, input: `${viewer.password}\n`, stdio: ["pipe", "pipe", "pipe"] });
  const context = await browser.newContext({ ignoreHTTPSErrors: true, baseURL: consoleUrl });
  const page = await context.newPage();
  try {
    await new LoginPage(page).signIn(viewer);
    await page.goto("/settings/tls");
    await expect(page.getByText("You have read-only access (viewer)")).toBeVisible();
    await expect(page.getByTestId("served-fingerprint")).not.toBeEmpty();
    await expect(page.getByLabel("Enable Let's Encrypt")).toBeDisabled();
    await expect(page.getByLabel("Console domain")).toBeDisabled();
    for (const name of ["Save", "Save mode", "Upload and serve", "Regenerate local-CA certificate"]) {
      await expect(page.getByRole("button", { name, exact: true })).toHaveCount(0);
    }
    const put = await page.request.put("/api/v1/settings/tls", { data: { acme: { enabled: false } } });
    expect(put.status()).toBe(403);
    expect(((await put.json()) as { error: { message: string } }).error.message).toMatch(/admin/);
  } finally {
    await context.close();
  }
});

test("behind nginx configured as docs/tls-modes.md says: HSTS and a Secure cookie from X-Forwarded-Proto, and the live stream passes through", async ({ browser }) => {
  test.skip(!fs.existsSync("/usr/sbin/nginx"), "nginx is not installed (apt-get install nginx-light)");
  test.setTimeout(180_000);
  const consolePort = await findFreePort();
  const proxyPort = await findFreePort();
  const redirectPort = await findFreePort();
  const nginxDir = path.join(workDir, "nginx");
  fs.mkdirSync(path.join(nginxDir, "conf.d"), { recursive: true });
  // nginx's workers drop root: their temporary directories must be theirs to write.
  fs.chmodSync(workDir, 0o755);
  fs.chmodSync(nginxDir, 0o777);
  fs.writeFileSync(path.join(nginxDir, "fullchain.pem"), trustedLeaf.certPem);
  fs.writeFileSync(path.join(nginxDir, "privkey.pem"), trustedLeaf.keyPem);

  // The documented server blocks themselves, with this test's ports and files put in.
  const doc = fs.readFileSync(path.join(root, "docs/tls-modes.md"), "utf8");
  let site = /```nginx\n([\s\S]*?)```/.exec(doc)?.[1] ?? "";
  const substitutions: [RegExp, string][] = [
    [/listen 443 ssl http2;.*$/m, `listen 127.0.0.1:${proxyPort} ssl http2;`],
    [/listen 80;/, `listen 127.0.0.1:${redirectPort};`],
    [/server 127\.0\.0\.1:8443;/, `server 127.0.0.1:${consolePort};`],
    [/\/etc\/ssl\/portcullis\/fullchain\.pem/, path.join(nginxDir, "fullchain.pem")],
    [/\/etc\/ssl\/portcullis\/privkey\.pem/, path.join(nginxDir, "privkey.pem")],
  ];
  for (const [pattern, value] of substitutions) {
    expect(site, `docs/tls-modes.md's nginx example no longer has ${pattern}`).toMatch(pattern);
    site = site.replace(pattern, value);
  }
  fs.writeFileSync(path.join(nginxDir, "conf.d", "portcullis.conf"), site);
  const temp = (name: string) => `${name}_temp_path ${path.join(nginxDir, name)};`;
  fs.writeFileSync(
    path.join(nginxDir, "nginx.conf"),
    `daemon off;\npid ${nginxDir}/nginx.pid;\nerror_log ${nginxDir}/error.log;\nevents {}\nhttp {\n  access_log off;\n  ${["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map(temp).join("\n  ")}\n  include ${nginxDir}/conf.d/*.conf;\n}\n`,
  );
  execFileSync("/usr/sbin/nginx", ["-t", "-c", path.join(nginxDir, "nginx.conf"), "-p", nginxDir], { stdio: "pipe" });

  proxiedConsole = await spawnConsole("proxied", `http://127.0.0.1:${consolePort}`, {
    PORTCULLIS_DATA_DIR: path.join(workDir, "data-proxied"),
    PORTCULLIS_HOST: "127.0.0.1",
    PORTCULLIS_PORT: String(consolePort),
    PORTCULLIS_WORKER_HEALTH_PORT: String(await findFreePort()),
    PORTCULLIS_TLS_MODE: "behind_proxy",
    PORTCULLIS_TRUSTED_PROXIES: "127.0.0.1",
    PORTCULLIS_PUBLIC_URL: `https://127.0.0.1:${proxyPort}`,
    PORTCULLIS_ADMIN_EMAIL: TLS_ADMIN.email,
    PORTCULLIS_ADMIN_PASSWORD: TLS_ADMIN.password,
  });
  nginx = spawn("/usr/sbin/nginx", ["-c", path.join(nginxDir, "nginx.conf"), "-p", nginxDir], { stdio: "ignore", detached: true });
  const proxyUrl = `https://127.0.0.1:${proxyPort}`;
  await expect.poll(() => healthStatus(proxyUrl), { timeout: 15_000 }).toBe(200);

  const { context, page } = await tlsContext(browser, proxyUrl);
  try {
    const session = (await context.cookies(proxyUrl)).find((c) => /session-token/.test(c.name));
    expect(session?.secure).toBe(true);
    const response = await page.goto("/certificates");
    const headers = response!.headers();
    expect(headers["strict-transport-security"]).toBe("max-age=31536000; includeSubDomains");
    expect(headers["x-frame-options"]).toBe("DENY");
    expect(headers["x-content-type-options"]).toBe("nosniff");

    // The page's event stream runs through nginx: a change made elsewhere shows up without a reload.
    await expect(page.getByTestId("live-status")).toHaveAttribute("data-state", "live");
    await markPage(page);
    const created = await context.request.post(`${proxyUrl}/api/v1/certificates`, { data: { source: "self_signed", domains: ["proxied-live.example.test"] } });
    expect(created.status(), await created.text()).toBe(201);
    await expect(page.getByRole("link", { name: "proxied-live.example.test" }).first()).toBeVisible({ timeout: 15_000 });
    expect(await notReloaded(page)).toBe(true);

    // Behind the proxy the console serves no certificate itself, and says so.
    await page.goto("/settings/tls");
    await expect(page.getByTestId("tls-mode")).toHaveText("behind_proxy");
    await expect(page.getByTestId("served-none")).toContainText("your proxy terminates TLS");
  } finally {
    await context.close();
  }
});
