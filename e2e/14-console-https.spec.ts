import { spawn, type ChildProcess } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import { test, expect } from "@playwright/test";
import { findFreePort } from "../lib/net";
import { LoginPage } from "./fixtures";

// The real console (Next.js build) in auto mode on a public bind: HTTPS from the local CA, the CA at
// /api/v1/ca, security headers on a page, an API response and a static asset, and a sign-in whose
// session cookie is Secure. Its own console process, apart from the one global-setup starts.

const root = path.resolve(import.meta.dirname, "..");
const ADMIN = { email: "tls-admin@example.test", password: "tls admin password 1" };

let child: ChildProcess;
let dataDir: string;
let port: number;

test.beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-e2e-https-"));
  port = await findFreePort();
  const env: Record<string, string | undefined> = {
    ...process.env,
    PORTCULLIS_DATA_DIR: dataDir,
    PORTCULLIS_HOST: "0.0.0.0",
    PORTCULLIS_PORT: String(port),
    PORTCULLIS_ADMIN_EMAIL: ADMIN.email,
    PORTCULLIS_ADMIN_PASSWORD: ADMIN.password,
    PORTCULLIS_LOG_LEVEL: "warn",
    PORTCULLIS_SKIP_BUILD_CHECK: "1",
  };
  delete env.DATABASE_URL;
  delete env.PORTCULLIS_TLS_MODE;
  child = spawn(process.execPath, [path.join(root, "bin/portcullis.mjs"), "console"], { cwd: root, env: env as NodeJS.ProcessEnv, stdio: ["ignore", "pipe", "pipe"] });
  await new Promise<void>((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`the HTTPS console did not start within 90 s:\n${output}`)), 90_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      if (/Portcullis console: https:/.test(output)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on("data", onData);
    child.stderr!.on("data", onData);
    child.on("exit", (code) => reject(new Error(`the HTTPS console exited with ${code}:\n${output}`)));
  });
});

test.afterAll(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
});

function get(pathName: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: "127.0.0.1", port, path: pathName, servername: "localhost", rejectUnauthorized: false }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      })
      .on("error", reject);
  });
}

function expectSecurityHeaders(headers: Record<string, string | string[] | undefined>, what: string) {
  expect(headers["x-content-type-options"], what).toBe("nosniff");
  expect(headers["x-frame-options"], what).toBe("DENY");
  expect(String(headers["content-security-policy"]), what).toContain("default-src 'self'");
  expect(String(headers["strict-transport-security"]), what).toMatch(/max-age=\d+/);
}

test("serves HTTPS from the local CA whose fingerprint /api/v1/ca publishes", async () => {
  const socket = tls.connect({ host: "127.0.0.1", port, servername: "localhost", rejectUnauthorized: false });
  await new Promise((r) => socket.once("secureConnect", r));
  const peer = socket.getPeerCertificate(true);
  socket.destroy();
  const leaf = new crypto.X509Certificate(peer.raw);
  const ca = new crypto.X509Certificate(peer.issuerCertificate.raw);
  expect(leaf.verify(ca.publicKey)).toBe(true);
  expect(leaf.subjectAltName).toContain("DNS:localhost");

  const res = await get("/api/v1/ca");
  expect(res.status).toBe(200);
  const body = JSON.parse(res.body) as { certificatePem: string; fingerprintSha256: string; fingerprintSha256Hex: string; subject: string; notAfter: string };
  expect(body.fingerprintSha256).toBe(ca.fingerprint256);
  expect(body.fingerprintSha256Hex).toBe(ca.fingerprint256.replace(/:/g, "").toLowerCase());
  expect(new crypto.X509Certificate(body.certificatePem).fingerprint256).toBe(ca.fingerprint256);
  expect(body.subject).toContain("Portcullis local CA");
  const pem = await get("/api/v1/ca?format=pem");
  expect(pem.headers["content-type"]).toBe("application/x-pem-file");
  expect(pem.body).toContain("-----BEGIN CERTIFICATE-----");
  expectSecurityHeaders(res.headers, "/api/v1/ca");
});

test("security headers on a page, an API response and a static asset", async () => {
  const page = await get("/login");
  expect(page.status).toBe(200);
  expectSecurityHeaders(page.headers, "/login");
  expectSecurityHeaders((await get("/api/v1/health")).headers, "/api/v1/health");
  const asset = /\/_next\/static\/[^"']+\.(?:js|css)/.exec(page.body)?.[0];
  expect(asset, "a static asset linked from /login").toBeTruthy();
  const staticRes = await get(asset!);
  expect(staticRes.status).toBe(200);
  expectSecurityHeaders(staticRes.headers, asset!);
});

test("signing in over HTTPS sets a Secure, __Secure- session cookie and the session works", async ({ browser }) => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, baseURL: `https://localhost:${port}` });
  const page = await context.newPage();
  await new LoginPage(page).signIn(ADMIN);
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name.includes("session-token"));
  expect(session?.name).toBe("__Secure-authjs.session-token");
  expect(session?.secure).toBe(true);
  expect(session?.httpOnly).toBe(true);
  const status = await page.request.get("/api/v1/settings/tls");
  expect(status.status()).toBe(200);
  expect(await status.json()).toMatchObject({ mode: "auto", https: true, served: { kind: "local_ca", trusted: false } });
  await context.close();
});
