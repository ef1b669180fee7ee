import "reflect-metadata";
import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import path from "node:path";
import * as x509 from "@peculiar/x509";
import * as acme from "acme-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startAriDirectory, type AriDirectory } from "./ari-directory";
import { pebbleAvailable, startPebble, type Pebble } from "./pebble";

const SMOKE_NAME = "smoke.example.test";

function trustPebble(pebble: Pebble): void {
  acme.axios.defaults.httpsAgent = new https.Agent({ ca: pebble.caBundlePem });
}

async function newClient(directoryUrl: string, externalAccountBinding?: { kid: string; hmacKey: string }): Promise<acme.Client> {
  const accountKey = await acme.crypto.createPrivateEcdsaKey();
  return new acme.Client({ directoryUrl, accountKey, backoffMin: 200, externalAccountBinding });
}

/** Answers HTTP-01 on the port pebble's VA dials, from a token -> key authorization map. */
async function startHttp01Responder(port: number): Promise<{ answers: Map<string, string>; close(): Promise<void> }> {
  const answers = new Map<string, string>();
  const server = http.createServer((request, response) => {
    const token = request.url?.match(/^\/\.well-known\/acme-challenge\/([^/?]+)$/)?.[1];
    const answer = token ? answers.get(token) : undefined;
    response.writeHead(answer ? 200 : 404, { "content-type": "text/plain" }).end(answer ?? "");
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { answers, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

// acme-client sends an empty account update when createAccount runs twice, and pebble refuses it.
async function newAccount(directoryUrl: string): Promise<acme.Client> {
  const client = await newClient(directoryUrl);
  await client.createAccount({ termsOfServiceAgreed: true });
  return client;
}

/** The step-by-step issuance flow, HTTP-01 only; `extra` goes into the newOrder payload as is. */
async function issue(client: acme.Client, responder: { answers: Map<string, string> }, name: string, extra: object = {}): Promise<string> {
  const orderRequest: Parameters<acme.Client["createOrder"]>[0] = { identifiers: [{ type: "dns", value: name }], ...extra };
  const order = await client.createOrder(orderRequest);
  for (const authorization of await client.getAuthorizations(order)) {
    if (authorization.status === "valid") continue;
    const challenge = authorization.challenges.find((candidate) => candidate.type === "http-01");
    if (!challenge) throw new Error(`no http-01 challenge for ${authorization.identifier.value}`);
    responder.answers.set(challenge.token, await client.getChallengeKeyAuthorization(challenge));
    await client.completeChallenge(challenge);
    await client.waitForValidStatus(challenge);
  }
  const [, csr] = await acme.crypto.createCsr({ commonName: name, altNames: [name] });
  const finalized = await client.finalizeOrder(order, csr);
  return client.getCertificate(finalized);
}

function leafOf(chainPem: string): string {
  return chainPem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/)![0];
}

/** RFC 9773 certID: base64url(Authority Key Identifier) "." base64url(serial number). */
function certIdOf(certificatePem: string): string {
  const certificate = new x509.X509Certificate(leafOf(certificatePem));
  const aki = certificate.getExtension(x509.AuthorityKeyIdentifierExtension);
  if (!aki?.keyId) throw new Error("certificate has no Authority Key Identifier");
  return `${Buffer.from(aki.keyId, "hex").toString("base64url")}.${Buffer.from(certificate.serialNumber, "hex").toString("base64url")}`;
}

function getJson(url: string, ca: string): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, agent: false }, (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, body: JSON.parse(Buffer.concat(chunks).toString("utf8")) }),
        );
      })
      .on("error", reject);
  });
}

// CI installs pebble (.ci/run); elsewhere the suite says why it did not run.
const SKIP_REASON = pebbleAvailable() ? "" : " (skipped: /usr/bin/pebble is not installed; apt-get install pebble)";
const describePebble = describe.skipIf(SKIP_REASON !== "");

describePebble(`pebble harness${SKIP_REASON}`, () => {
  let pebble: Pebble;
  let responder: Awaited<ReturnType<typeof startHttp01Responder>>;

  beforeAll(async () => {
    pebble = await startPebble();
    responder = await startHttp01Responder(pebble.httpPort);
  });
  afterAll(async () => {
    await responder?.close();
    await pebble?.stop();
  });

  it("issues a certificate over HTTP-01 that chains to pebble's root", async () => {
    trustPebble(pebble);
    const chain = await issue(await newAccount(pebble.directoryUrl), responder, SMOKE_NAME);

    const leaf = new crypto.X509Certificate(leafOf(chain));
    expect(leaf.subjectAltName).toBe(`DNS:${SMOKE_NAME}`);
    const { root, intermediate } = await pebble.issuerPems();
    const files = { root: "root.pem", intermediate: "intermediate.pem", leaf: "leaf.pem" };
    for (const [file, pem] of [[files.root, root], [files.intermediate, intermediate], [files.leaf, leaf.toString()]]) {
      fs.writeFileSync(path.join(pebble.dir, file!), pem!);
    }
    const verified = execFileSync("openssl", ["verify", "-CAfile", files.root, "-untrusted", files.intermediate, files.leaf], { cwd: pebble.dir, encoding: "utf8" });
    expect(verified.trim()).toBe(`${files.leaf}: OK`);
  });

  it("refuses a challenge nobody answers: validation is real", async () => {
    trustPebble(pebble);
    const client = await newAccount(pebble.directoryUrl);
    const order = await client.createOrder({ identifiers: [{ type: "dns", value: "unanswered.example.test" }] });
    const [authorization] = await client.getAuthorizations(order);
    const challenge = authorization!.challenges.find((candidate) => candidate.type === "http-01")!;
    await client.completeChallenge(challenge);
    await expect(client.waitForValidStatus(challenge)).rejects.toThrow(/returned 404/);
  });

  it("sets and clears TXT records in challtestsrv's DNS", async () => {
    const { Resolver } = await import("node:dns/promises");
    const resolver = new Resolver();
    resolver.setServers([`127.0.0.1:${pebble.dnsPort}`]);
    const host = "_acme-challenge.txt.example.test";
    await pebble.setTxt(host, "first");
    expect((await resolver.resolveTxt(host)).flat()).toEqual(["first"]);
    await pebble.clearTxt(host);
    await expect(resolver.resolveTxt(host)).rejects.toThrow();
  });

  describe("behind the ARI directory wrapper", () => {
    let wrapper: AriDirectory;
    const window = { start: new Date("2031-01-01T00:00:00Z"), end: new Date("2031-01-02T00:00:00Z") };

    beforeAll(async () => {
      wrapper = await startAriDirectory(pebble, { window, retryAfterSeconds: 3600, explanationURL: "https://example.test/why" });
    });
    afterAll(async () => wrapper?.stop());

    it("adds renewalInfo to a directory whose every URL points at the wrapper", async () => {
      const { body } = await getJson(wrapper.directoryUrl, pebble.caBundlePem);
      const wrapperOrigin = new URL(wrapper.directoryUrl).origin;
      expect(body.renewalInfo).toBe(`${wrapperOrigin}/renewal-info`);
      for (const key of ["newNonce", "newAccount", "newOrder", "revokeCert", "keyChange"]) {
        expect(new URL(body[key] as string).origin, key).toBe(wrapperOrigin);
      }
    });

    it("serves the window the test sets, records certIDs and newOrder payloads with replaces", async () => {
      trustPebble(pebble);
      const client = await newAccount(wrapper.directoryUrl);
      const chain = await issue(client, responder, "ari.example.test");
      const certId = certIdOf(chain);

      const answer = await getJson(`${wrapper.renewalInfoUrl}/${certId}`, pebble.caBundlePem);
      expect(answer.status).toBe(200);
      expect(answer.headers["retry-after"]).toBe("3600");
      expect(answer.body).toEqual({
        suggestedWindow: { start: window.start.toISOString(), end: window.end.toISOString() },
        explanationURL: "https://example.test/why",
      });
      expect(wrapper.requests).toEqual([certId]);

      await issue(client, responder, "ari.example.test", { replaces: certId });
      expect(wrapper.orderPayloads.map((payload) => payload.replaces)).toEqual([undefined, certId]);
    });

    it("derives a default window from the issued certificate's lifetime", async () => {
      trustPebble(pebble);
      const chain = await issue(await newAccount(wrapper.directoryUrl), responder, "ari-default.example.test");
      const leaf = new crypto.X509Certificate(leafOf(chain));
      wrapper.setWindow(null);

      const answer = await getJson(`${wrapper.renewalInfoUrl}/${certIdOf(chain)}`, pebble.caBundlePem);
      const suggested = answer.body.suggestedWindow as { start: string; end: string };
      const notBefore = Date.parse(leaf.validFrom);
      const lifetime = Date.parse(leaf.validTo) - notBefore;
      expect(Date.parse(suggested.start)).toBe(notBefore + Math.floor(lifetime / 2));
      expect(Date.parse(suggested.end)).toBe(notBefore + Math.floor((lifetime * 2) / 3));

      const unknown = await getJson(`${wrapper.renewalInfoUrl}/AAAA.AQID`, pebble.caBundlePem);
      expect(unknown.status).toBe(404);
    });
  });
});

describePebble(`pebble harness with external account binding required${SKIP_REASON}`, () => {
  const kid = "kid-portcullis";
  const hmacKey = crypto.randomBytes(32).toString("base64url");
  let pebble: Pebble;

  beforeAll(async () => {
    pebble = await startPebble({ eab: { [kid]: hmacKey } });
  });
  afterAll(async () => pebble?.stop());

  it("refuses an account without EAB and accepts one with it", async () => {
    trustPebble(pebble);
    const withoutEab = await newClient(pebble.directoryUrl);
    await expect(withoutEab.createAccount({ termsOfServiceAgreed: true })).rejects.toThrow(/externalAccountBinding/);

    const withEab = await newClient(pebble.directoryUrl, { kid, hmacKey });
    const account = await withEab.createAccount({ termsOfServiceAgreed: true });
    expect(account.status).toBe("valid");
  });

  it("refuses an EAB signed with the wrong key", async () => {
    trustPebble(pebble);
    const wrongKey = await newClient(pebble.directoryUrl, { kid, hmacKey: crypto.randomBytes(32).toString("base64url") });
    await expect(wrongKey.createAccount({ termsOfServiceAgreed: true })).rejects.toThrow(/external account binding JWS verification error/);
  });
});
