import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import type { TLSSocket } from "node:tls";
import { findFreePort } from "../lib/net";
import { ADMIN, expect, LoginPage, test } from "./fixtures";

// An operator uploads what their CA gave them (a chain in the wrong order), serves it on a listener
// with one click, sees "serving", and later uploads a renewal that the next handshake gets.

test.describe.configure({ mode: "serial" });

const LISTENER = "uploads https";
const HOST = "upload.example.test";
let dir: string;
let upstream: http.Server;
let port: number;

function issueChain(prefix: string) {
  const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  const make = (name: string, cn: string, issuer: string | null, ca: boolean) => {
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", `${prefix}${name}.key`);
    openssl("req", "-new", "-key", `${prefix}${name}.key`, "-subj", `/CN=${cn}`, "-out", `${prefix}${name}.csr`);
    fs.writeFileSync(path.join(dir, `${prefix}${name}.ext`), ca ? "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\n" : `basicConstraints=CA:FALSE\nsubjectAltName=DNS:${HOST}\n`);
    const signer = issuer ? ["-CA", `${prefix}${issuer}.pem`, "-CAkey", `${prefix}${issuer}.key`, "-CAcreateserial"] : ["-signkey", `${prefix}${name}.key`];
    openssl("x509", "-req", "-in", `${prefix}${name}.csr`, ...signer, "-days", "200", "-extfile", `${prefix}${name}.ext`, "-out", `${prefix}${name}.pem`);
  };
  make("root", `${prefix}E2E Root`, null, true);
  make("int", `${prefix}E2E Intermediate`, "root", true);
  make("leaf", HOST, "int", false);
  const read = (f: string) => fs.readFileSync(path.join(dir, `${prefix}${f}`), "utf8");
  // Shuffled on purpose: intermediate first, then the leaf.
  fs.writeFileSync(path.join(dir, `${prefix}bundle.pem`), read("int.pem") + read("leaf.pem"));
  return { bundle: path.join(dir, `${prefix}bundle.pem`), key: path.join(dir, `${prefix}leaf.key`), leaf: read("leaf.pem"), wrongKey: path.join(dir, `${prefix}int.key`) };
}

function served(): Promise<{ fingerprint: string; issuer: string; body: string }> {
  return new Promise((resolve, reject) => {
    https
      .get({ host: "127.0.0.1", port, servername: HOST, rejectUnauthorized: false, agent: false, headers: { host: HOST } }, (res) => {
        const cert = (res.socket as TLSSocket).getPeerCertificate(true);
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ fingerprint: cert.fingerprint256, issuer: String(cert.issuerCertificate?.subject?.CN ?? ""), body }));
      })
      .on("error", reject);
  });
}

test.beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-e2e-upload-"));
  upstream = http.createServer((_req, res) => res.end("hello from the uploads upstream"));
  const upstreamPort = await findFreePort();
  await new Promise<void>((r) => upstream.listen(upstreamPort, "127.0.0.1", r));
  port = await findFreePort();
  process.env.PORTCULLIS_E2E_UPLOAD_UPSTREAM = String(upstreamPort);
});

test.afterAll(() => {
  upstream?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

test("upload a chain given out of order, map it with one click, and see it served", async ({ page }) => {
  const first = issueChain("a-");
  await new LoginPage(page).signIn(ADMIN);
  const created = await page.request.post("/api/v1/listeners", {
    data: { name: LISTENER, kind: "https", bindAddress: "127.0.0.1", port, upstreamUrl: `http://127.0.0.1:${process.env.PORTCULLIS_E2E_UPLOAD_UPSTREAM}`, fallbackPolicy: "refuse" },
  });
  expect(created.status()).toBe(201);

  await page.goto("/certificates/new?source=upload");
  await page.getByLabel("Certificate file").setInputFiles(first.bundle);
  await page.getByLabel("Private key file").setInputFiles(first.wrongKey);
  await page.getByRole("button", { name: "Check" }).click();
  await expect(page.locator("#keyPem-error")).toContainText("belongs to the CA certificate");
  await expect(page.getByRole("button", { name: "Save certificate" })).toBeDisabled();

  await page.getByLabel("Private key file").setInputFiles(first.key);
  await page.getByRole("button", { name: "Check" }).click();
  const preview = page.getByTestId("upload-preview");
  await expect(preview).toContainText(HOST);
  await expect(preview).toContainText("a-E2E Intermediate");
  await page.getByLabel("Display name (optional)").fill("Uploaded");
  await page.getByRole("button", { name: "Check" }).click();
  await page.getByRole("button", { name: "Save certificate" }).click();
  await expect(page.getByTestId("certificate-name")).toHaveText("Uploaded");
  const fingerprint = (await page.getByTestId("fingerprint").textContent())!.trim();

  await page.getByRole("button", { name: `Serve on ${LISTENER}` }).click();
  await expect(page.getByTestId("placements")).toContainText(LISTENER);
  await page.getByTestId("placements").getByRole("link", { name: LISTENER }).click();
  await expect(page.getByTestId(`check-${HOST}`)).toHaveAttribute("data-status", "serving", { timeout: 15_000 });

  const result = await served();
  expect(result.fingerprint).toBe(fingerprint);
  expect(result.issuer).toBe("a-E2E Intermediate"); // the intermediate is sent, leaf first
  expect(result.body).toBe("hello from the uploads upstream");
});

test("a new version uploaded for the certificate is served at the next handshake", async ({ page }) => {
  const renewed = issueChain("b-");
  await new LoginPage(page).signIn(ADMIN);
  await page.goto("/certificates");
  await page.getByRole("link", { name: "Uploaded", exact: true }).click();
  const before = (await page.getByTestId("fingerprint").textContent())!.trim();
  await page.getByRole("link", { name: "Upload new version" }).click();
  await page.getByLabel("Certificate file").setInputFiles(renewed.bundle);
  await page.getByLabel("Private key file").setInputFiles(renewed.key);
  await page.getByRole("button", { name: "Check" }).click();
  await expect(page.getByTestId("upload-preview")).toContainText("b-E2E Intermediate");
  await page.getByRole("button", { name: "Save new version" }).click();
  await expect(page.getByTestId("fingerprint")).not.toHaveText(before);
  const after = (await page.getByTestId("fingerprint").textContent())!.trim();
  await expect(page.getByText(/^v2 ·/)).toBeVisible();
  await expect.poll(async () => (await served()).fingerprint, { timeout: 5_000 }).toBe(after);
});
