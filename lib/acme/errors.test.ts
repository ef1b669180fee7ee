import { execFileSync } from "node:child_process";
import fs from "node:fs";
import https from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import * as acme from "acme-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { caName, explainAcmeError, formatFailure } from "./errors";

const LE = "https://acme-v02.api.letsencrypt.org/directory";
const LE_STAGING = "https://acme-staging-v02.api.letsencrypt.org/directory";
const ZEROSSL = "https://acme.zerossl.com/v2/DV90";
const PEBBLE = "https://127.0.0.1:14000/dir";
const NOW = new Date("2026-11-21T10:00:00.000Z");
const URN = "urn:ietf:params:acme:error:";

/** What acme-client throws for a CA error: `new Error(problem.detail)`, nothing else attached. */
const acmeClientError = (detail: string) => new Error(detail);
/** lib/acme/client.ts's AcmeProblemError: the problem document, the HTTP status and Retry-After kept. */
const problemError = (problem: Record<string, unknown>, httpStatus: number, retryAfterHeader?: string) =>
  Object.assign(new Error(String(problem.detail)), { name: "AcmeProblemError", problem, httpStatus, retryAfterHeader });
/** An axios error for a request that got no answer. */
const transportError = (code: string, message: string) => Object.assign(new Error(message), { code, isAxiosError: true, config: {} });

describe("caName", () => {
  it("names the well-known CAs and falls back to the host", () => {
    expect(caName(LE)).toBe("Let's Encrypt");
    expect(caName(LE_STAGING)).toBe("Let's Encrypt staging");
    expect(caName(ZEROSSL)).toBe("ZeroSSL");
    expect(caName(PEBBLE)).toBe("127.0.0.1:14000");
    expect(caName("https://ca.internal.example/acme/directory")).toBe("ca.internal.example");
  });
});

describe("rate limits", () => {
  it("reads boulder's 'retry after' time from the detail of an acme-client error", () => {
    const detail =
      "too many certificates (5) already issued for this exact set of identifiers in the last 168h0m0s, retry after 2025-09-18 09:13:16 UTC: see https://letsencrypt.org/docs/rate-limits/#new-certificates-per-exact-set-of-identifiers";
    const f = explainAcmeError(acmeClientError(detail), { directoryUrl: LE, identifier: "example.site.com", now: NOW });
    expect(f.kind).toBe("rate_limited");
    expect(f.retryable).toBe(true);
    expect(f.retryAfter?.toISOString()).toBe("2025-09-18T09:13:16.000Z");
    expect(f.cause).toBe(
      "Let's Encrypt rate limited this request until 2025-09-18 09:13:16 UTC (5 certificates were already issued for exactly these names in the last 7 days)",
    );
    expect(f.identifier).toBe("example.site.com");
    expect(f.raw).toBe(detail);
  });

  it("takes the later of the detail's time and the Retry-After header, and names the failing name", () => {
    const problem = {
      type: `${URN}rateLimited`,
      detail: 'too many failed authorizations (5) for "www.example.com" in the last 1h0m0s, retry after 2026-11-21 10:20:00 UTC',
      status: 429,
    };
    const f = explainAcmeError(problemError(problem, 429, "3600"), { directoryUrl: LE_STAGING, now: NOW });
    expect(f.kind).toBe("rate_limited");
    expect(f.retryAfter).toEqual(new Date("2026-11-21T11:00:00.000Z"));
    expect(f.identifier).toBe("www.example.com");
    expect(f.cause).toBe("Let's Encrypt staging rate limited this request until 2026-11-21 11:00 UTC (www.example.com failed validation 5 times in the last hour)");
    expect(f.raw).toBe(`${URN}rateLimited (429): ${problem.detail}; Retry-After: 3600`);
  });

  it("uses an HTTP-date Retry-After when the detail has no time", () => {
    const response = {
      status: 429,
      headers: { "retry-after": "Sat, 21 Nov 2026 12:30:00 GMT" },
      data: { type: `${URN}rateLimited`, detail: 'too many certificates already issued for "example.com"', status: 429 },
    };
    const f = explainAcmeError(Object.assign(new Error("Request failed with status code 429"), { response }), { directoryUrl: LE, now: NOW });
    expect(f.kind).toBe("rate_limited");
    expect(f.retryAfter).toEqual(new Date("2026-11-21T12:30:00.000Z"));
    expect(f.cause).toBe("Let's Encrypt rate limited this request until 2026-11-21 12:30 UTC (too many certificates for this registered domain)");
  });
});

describe("challenge failures", () => {
  it("http-01, boulder: connection refused on port 80", () => {
    const problem = { type: `${URN}connection`, detail: "203.0.113.7: Fetching http://example.com/.well-known/acme-challenge/abc: Connection refused", status: 400 };
    const f = explainAcmeError(problem, { directoryUrl: LE, challenge: "http-01" });
    expect(f.kind).toBe("connection");
    expect(f.retryable).toBe(true);
    expect(f.identifier).toBe("example.com");
    expect(f.cause).toBe("Let's Encrypt could not connect to port 80 of example.com (connection refused)");
    expect(f.fix).toMatch(/^Check that the HTTP listener on port 80 is reachable from the internet/);
    expect(f.raw).toBe(`${URN}connection (400): ${problem.detail}`);
  });

  it("http-01, pebble: the challenge error from waitForValidStatus names the port pebble dialled", () => {
    // Captured from pebble 2.4 with nothing listening on its HTTP-01 port.
    const detail =
      'Get "http://www.example.com:25202/.well-known/acme-challenge/T60oiEbIR1N3V_rVfnn2p0w2EQzraU0XxusQfvwfLwk": dial tcp 127.0.0.1:25202: connect: connection refused';
    const f = explainAcmeError(acmeClientError(detail), { directoryUrl: PEBBLE });
    expect(f.kind).toBe("connection");
    expect(f.identifier).toBe("www.example.com");
    expect(f.cause).toBe("127.0.0.1:14000 could not connect to port 25202 of www.example.com (connection refused)");
  });

  it("tls-alpn-01: a firewall timeout points at port 443 and the HTTPS listener", () => {
    const problem = { type: `${URN}connection`, detail: "198.51.100.4: Timeout during connect (likely firewall problem)", status: 400 };
    const f = explainAcmeError(problem, { directoryUrl: ZEROSSL, challenge: "tls-alpn-01", identifier: "shop.example.org" });
    expect(f.kind).toBe("connection");
    expect(f.cause).toBe("ZeroSSL could not connect to port 443 of shop.example.org (timed out while connecting, which usually means a firewall drops the traffic)");
    expect(f.fix).toMatch(/HTTPS listener on port 443/);
  });

  it("reads acme-client's invalid-authorization JSON: pebble's unauthorized TLS-ALPN-01 dial is a connection failure", () => {
    // acme-client throws the whole authorization as text when it has no top-level error (captured from pebble).
    const authz = {
      status: "invalid",
      identifier: { type: "dns", value: "tls.example.com" },
      challenges: [
        {
          type: "tls-alpn-01",
          url: "https://127.0.0.1:24200/chalZ/AZ9T",
          token: "F3K6",
          status: "invalid",
          error: { type: `${URN}unauthorized`, detail: "Failed to connect to 127.0.0.1:25201 for the tls-alpn-01 challenge", status: 403 },
        },
      ],
    };
    const f = explainAcmeError(acmeClientError(JSON.stringify(authz)), { directoryUrl: PEBBLE });
    expect(f.kind).toBe("connection");
    expect(f.identifier).toBe("tls.example.com");
    expect(f.cause).toBe("127.0.0.1:14000 could not connect to port 25201 of tls.example.com");
    expect(f.raw).toBe(`${URN}unauthorized (403): Failed to connect to 127.0.0.1:25201 for the tls-alpn-01 challenge`);
  });

  it("accepts the challenge object itself", () => {
    const challenge = {
      type: "http-01",
      status: "invalid",
      error: { type: `${URN}connection`, detail: "192.0.2.1: Fetching http://api.example.com/.well-known/acme-challenge/x: Timeout after connect (your server may be slow or overloaded)", status: 400 },
    };
    const f = explainAcmeError(challenge, { directoryUrl: LE });
    expect(f.cause).toBe("Let's Encrypt could not connect to port 80 of api.example.com (timed out after connecting: the server answered too slowly)");
  });

  it("dns: the name does not resolve", () => {
    const problem = {
      type: `${URN}dns`,
      detail: "DNS problem: NXDOMAIN looking up A for nx.example.com - check that a DNS record exists for this domain",
      status: 400,
    };
    const f = explainAcmeError(problem, { directoryUrl: LE, challenge: "http-01" });
    expect(f.kind).toBe("dns");
    expect(f.identifier).toBe("nx.example.com");
    expect(f.cause).toBe("Let's Encrypt could not resolve nx.example.com: the name does not exist in DNS (NXDOMAIN)");
    expect(f.fix).toMatch(/^Add an A or AAAA record for nx\.example\.com/);
  });

  it("dns-01: boulder reports a missing TXT record as unauthorized; it is a DNS problem", () => {
    const f = explainAcmeError({ type: `${URN}unauthorized`, detail: "No TXT record found at _acme-challenge.example.org", status: 403 }, { directoryUrl: LE, challenge: "dns-01" });
    expect(f.kind).toBe("dns");
    expect(f.identifier).toBe("example.org");
    expect(f.cause).toBe("Let's Encrypt found no TXT record at _acme-challenge.example.org");
  });

  it("dns-01, pebble: no TXT records, with the name from the engine", () => {
    const f = explainAcmeError(acmeClientError("No TXT records found for DNS challenge"), { directoryUrl: PEBBLE, challenge: "dns-01", identifier: "dns.example.com" });
    expect(f.kind).toBe("dns");
    expect(f.cause).toBe("127.0.0.1:14000 found no TXT record at _acme-challenge.dns.example.com");
  });

  it("dns-01: a TXT record with the wrong value is a DNS problem", () => {
    const f = explainAcmeError({ type: `${URN}unauthorized`, detail: 'Incorrect TXT record "v=spf1 -all" found at _acme-challenge.example.org', status: 403 }, { directoryUrl: LE });
    expect(f.kind).toBe("dns");
    expect(f.cause).toBe("the TXT record at _acme-challenge.example.org did not hold the value Let's Encrypt expected");
  });

  it("http-01, pebble: the answer served did not match", () => {
    const detail = 'The key authorization file from the server did not match this challenge "tok.thumb" != "hello"';
    const f = explainAcmeError({ type: `${URN}unauthorized`, detail, status: 403 }, { directoryUrl: PEBBLE, challenge: "http-01", identifier: "www.example.com" });
    expect(f.kind).toBe("unauthorized");
    expect(f.cause).toBe("the answer served at http://www.example.com/.well-known/acme-challenge/… did not match what 127.0.0.1:14000 expected");
    expect(f.fix).toMatch(/reach Portcullis's HTTP listener/);
  });

  it("http-01, boulder: a 404 instead of the answer", () => {
    const detail = "2606:4700::1: Invalid response from http://example.com/.well-known/acme-challenge/abc: 404";
    const f = explainAcmeError({ type: `${URN}unauthorized`, detail, status: 403 }, { directoryUrl: LE });
    expect(f.kind).toBe("unauthorized");
    expect(f.identifier).toBe("example.com");
    expect(f.cause).toBe("Let's Encrypt fetched http://example.com/.well-known/acme-challenge/abc and got HTTP 404 instead of the challenge answer");
  });

  it("incorrectResponse (RFC 8555) on TLS-ALPN-01 is unauthorized", () => {
    const f = explainAcmeError({ type: `${URN}incorrectResponse`, detail: "Incorrect validation certificate for tls-alpn-01 challenge. Missing acmeValidationV1 extension.", status: 403 }, { directoryUrl: LE, identifier: "mail.example.com" });
    expect(f.kind).toBe("unauthorized");
    expect(f.cause).toBe("the certificate served on port 443 of mail.example.com did not answer Let's Encrypt's TLS-ALPN-01 challenge");
  });

  it("tls: a TLS error during TLS-ALPN-01 validation", () => {
    const f = explainAcmeError({ type: `${URN}tls`, detail: "192.0.2.1: remote error: tls: no application protocol", status: 400 }, { directoryUrl: LE, challenge: "tls-alpn-01", identifier: "example.com" });
    expect(f.kind).toBe("connection");
    expect(f.cause).toBe("Let's Encrypt had a TLS error while validating example.com on port 443");
  });

  it("caa: says which record to add for the CA", () => {
    const f = explainAcmeError({ type: `${URN}caa`, detail: "CAA record for example.com prevents issuance", status: 403 }, { directoryUrl: LE, identifier: "www.example.com" });
    expect(f.kind).toBe("caa");
    expect(f.retryable).toBe(false);
    expect(f.cause).toBe("a CAA record for example.com does not allow Let's Encrypt to issue");
    expect(f.fix).toBe('Add 0 issue "letsencrypt.org" to the CAA records of example.com, or remove the record that excludes Let\'s Encrypt.');
  });
});

describe("names the CA will not issue for", () => {
  it("a name under a non-public suffix, from an acme-client error", () => {
    const f = explainAcmeError(acmeClientError('Error creating new order :: Cannot issue for "foo.local": Domain name does not end with a valid public suffix (TLD)'), { directoryUrl: LE });
    expect(f.kind).toBe("rejected_identifier");
    expect(f.retryable).toBe(false);
    expect(f.identifier).toBe("foo.local");
    expect(f.cause).toBe("Let's Encrypt will not issue for foo.local: it is not a publicly valid domain name");
  });

  it("an IP address sent as a DNS name (pebble's wording)", () => {
    const f = explainAcmeError(acmeClientError('Order included a DNS identifier with an IP address value: "1.2.3.4"'), { directoryUrl: PEBBLE });
    expect(f.kind).toBe("rejected_identifier");
    expect(f.identifier).toBe("1.2.3.4");
    expect(f.cause).toBe("127.0.0.1:14000 will not issue for 1.2.3.4: it is an IP address");
  });

  it("a name forbidden by policy, explained from its subproblem", () => {
    const problem = {
      type: `${URN}rejectedIdentifier`,
      detail: "Error creating new order :: Cannot issue for \"bank.example.net\" (and 1 more problems. Refer to sub-problems for more information.)",
      status: 400,
      subproblems: [
        { type: `${URN}rejectedIdentifier`, detail: "The ACME server refuses to issue a certificate for this domain name, because it is forbidden by policy", status: 400, identifier: { type: "dns", value: "login.bank.example.net" } },
        { type: `${URN}rejectedIdentifier`, detail: "The ACME server refuses to issue a certificate for this domain name, because it is forbidden by policy", status: 400, identifier: { type: "dns", value: "bank.example.net" } },
      ],
    };
    const f = explainAcmeError(problem, { directoryUrl: LE });
    expect(f.kind).toBe("rejected_identifier");
    expect(f.identifier).toBe("login.bank.example.net");
    expect(f.cause).toBe("Let's Encrypt will not issue for login.bank.example.net: its policy forbids this name");
    expect(f.raw).toContain("[login.bank.example.net: rejectedIdentifier: The ACME server refuses");
  });
});

describe("bad requests", () => {
  it("malformed is not retryable", () => {
    const f = explainAcmeError({ type: `${URN}malformed`, detail: "Request payload did not parse as JSON", status: 400 }, { directoryUrl: LE });
    expect(f).toMatchObject({ kind: "bad_request", retryable: false });
    expect(f.cause).toBe("Let's Encrypt rejected the request as malformed: Request payload did not parse as JSON");
  });

  it("badCSR suggests another key type", () => {
    const f = explainAcmeError({ type: `${URN}badCSR`, detail: "Error finalizing order :: CSR contains a public key of a known weak type", status: 400 }, { directoryUrl: LE });
    expect(f).toMatchObject({ kind: "bad_request", retryable: false });
    expect(f.fix).toMatch(/another key type/);
  });

  it("badRevocationReason is a bad request", () => {
    expect(explainAcmeError({ type: `${URN}badRevocationReason`, detail: "unsupported revocation reason code provided: 7", status: 400 }, { directoryUrl: LE }).kind).toBe("bad_request");
  });

  it("orderNotReady is a bad request worth a fresh order", () => {
    const f = explainAcmeError({ type: `${URN}orderNotReady`, detail: 'Order\'s status ("pending") is not acceptable for finalization', status: 403 }, { directoryUrl: LE });
    expect(f).toMatchObject({ kind: "bad_request", retryable: true });
    expect(f.cause).toBe("the order was finalized before Let's Encrypt had validated every name");
  });
});

describe("accounts", () => {
  it("External Account Binding required (pebble's wording through acme-client)", () => {
    const f = explainAcmeError(acmeClientError("ACME server policy requires newAccount requests must include a value for the 'externalAccountBinding' field"), { directoryUrl: ZEROSSL, step: "registering the account" });
    expect(f).toMatchObject({ kind: "account", retryable: false });
    expect(f.cause).toBe("ZeroSSL wants External Account Binding for new accounts");
    expect(f.fix).toBe("Add the EAB key id and HMAC key from your ZeroSSL account in Settings → ACME.");
  });

  it("externalAccountRequired as a problem document", () => {
    const f = explainAcmeError({ type: `${URN}externalAccountRequired`, detail: "", status: 403 }, { directoryUrl: ZEROSSL });
    expect(f.cause).toBe("ZeroSSL wants External Account Binding for new accounts");
  });

  it.each([
    ["a wrong HMAC key", "external account binding JWS verification error: square/go-jose: error in cryptographic primitive"],
    ["an unknown key id", "the field 'kid' references a key that is not known to the ACME server"],
  ])("EAB refused: %s (pebble)", (_label, detail) => {
    const f = explainAcmeError(acmeClientError(detail), { directoryUrl: PEBBLE });
    expect(f.kind).toBe("account");
    expect(f.cause).toBe("127.0.0.1:14000 refused the EAB key id or HMAC key");
    expect(f.fix).toMatch(/Settings → ACME/);
  });

  it("accountDoesNotExist", () => {
    const f = explainAcmeError({ type: `${URN}accountDoesNotExist`, detail: "No account exists with the provided key", status: 400 }, { directoryUrl: LE });
    expect(f).toMatchObject({ kind: "account", retryable: false, cause: "Let's Encrypt has no account for Portcullis's account key" });
  });

  it("userActionRequired: new terms of service, with the link", () => {
    const problem = { type: `${URN}userActionRequired`, detail: "Terms of service have changed", instance: "https://example.com/acme/agreement/?token=W8Ih3PswD-8", status: 403 };
    const f = explainAcmeError(problem, { directoryUrl: LE });
    expect(f).toMatchObject({ kind: "account", retryable: false });
    expect(f.cause).toBe("Let's Encrypt needs you to act before it issues again: its terms of service have changed");
    expect(f.fix).toBe("Read https://example.com/acme/agreement/?token=W8Ih3PswD-8 and accept the new terms in Settings → ACME.");
  });
});

describe("CA-side trouble", () => {
  it("serverInternal is retryable", () => {
    const f = explainAcmeError(problemError({ type: `${URN}serverInternal`, detail: "Error retrieving account", status: 500 }, 500), { directoryUrl: LE });
    expect(f).toMatchObject({ kind: "ca_error", retryable: true, cause: "Let's Encrypt had an internal error (HTTP 500)" });
  });

  it("a 503 with an HTML body is a retryable CA error, without the HTML", () => {
    const response = { status: 503, headers: {}, data: "<html><body>Service Unavailable</body></html>" };
    const f = explainAcmeError(Object.assign(new Error("Request failed with status code 503"), { response }), { directoryUrl: LE });
    expect(f).toMatchObject({ kind: "ca_error", retryable: true });
    expect(f.raw).toBe("(503): the server answered HTTP 503");
  });

  it("badNonce is retryable", () => {
    const f = explainAcmeError({ type: `${URN}badNonce`, detail: "JWS has an invalid anti-replay nonce: \"abc\"", status: 400 }, { directoryUrl: LE });
    expect(f).toMatchObject({ kind: "ca_error", retryable: true });
  });

  it("a wrong directory URL", () => {
    const f = explainAcmeError(acmeClientError("Attempting to read ACME directory returned error 404: https://acme.example.net/dir"), { directoryUrl: "https://acme.example.net/dir" });
    expect(f).toMatchObject({ kind: "ca_error", retryable: false, cause: "acme.example.net did not serve a usable ACME directory (HTTP 404)" });
  });

  it("unknown errors keep the detail and stay retryable", () => {
    const f = explainAcmeError(acmeClientError("Something odd happened"), { directoryUrl: LE, step: "finalizing the order" });
    expect(f).toMatchObject({ kind: "unknown", retryable: true, cause: "Let's Encrypt request failed while finalizing the order: Something odd happened" });
  });
});

describe("transport failures", () => {
  it.each([
    ["ECONNREFUSED", "connect ECONNREFUSED 10.0.0.5:443", "ca_unreachable", "could not reach Let's Encrypt at acme-v02.api.letsencrypt.org: connection refused", true],
    ["ENOTFOUND", "getaddrinfo ENOTFOUND acme-v02.api.letsencrypt.org", "ca_unreachable", "could not reach Let's Encrypt at acme-v02.api.letsencrypt.org: its host name does not resolve", true],
    ["EAI_AGAIN", "getaddrinfo EAI_AGAIN acme-v02.api.letsencrypt.org", "ca_unreachable", "could not reach Let's Encrypt at acme-v02.api.letsencrypt.org: a temporary DNS failure", true],
    ["ECONNRESET", "socket hang up", "ca_unreachable", "could not reach Let's Encrypt at acme-v02.api.letsencrypt.org: the connection was reset", true],
    ["ETIMEDOUT", "connect ETIMEDOUT 10.0.0.5:443", "timeout", "Let's Encrypt did not answer in time (acme-v02.api.letsencrypt.org)", true],
    ["CERT_HAS_EXPIRED", "certificate has expired", "tls_untrusted", "the ACME server's certificate has expired (acme-v02.api.letsencrypt.org)", false],
    ["SELF_SIGNED_CERT_IN_CHAIN", "self-signed certificate in certificate chain", "tls_untrusted", "the ACME server's certificate is not trusted (acme-v02.api.letsencrypt.org)", false],
    ["UNABLE_TO_VERIFY_LEAF_SIGNATURE", "unable to verify the first certificate", "tls_untrusted", "the ACME server's certificate is not trusted (acme-v02.api.letsencrypt.org)", false],
    ["DEPTH_ZERO_SELF_SIGNED_CERT", "self-signed certificate", "tls_untrusted", "the ACME server's certificate is not trusted (acme-v02.api.letsencrypt.org)", false],
    ["ERR_TLS_CERT_ALTNAME_INVALID", "Hostname/IP does not match certificate's altnames", "tls_untrusted", "the ACME server's certificate is not valid for acme-v02.api.letsencrypt.org", false],
  ] as const)("%s", (code, message, kind, cause, retryable) => {
    const f = explainAcmeError(transportError(code, message), { directoryUrl: LE });
    expect(f).toMatchObject({ kind, cause, retryable, raw: `${code}: ${message}` });
  });

  it("an untrusted certificate points at PORTCULLIS_ACME_CA_BUNDLE", () => {
    expect(explainAcmeError(transportError("SELF_SIGNED_CERT_IN_CHAIN", "self-signed certificate in certificate chain"), { directoryUrl: PEBBLE }).fix).toBe(
      "Add its CA to PORTCULLIS_ACME_CA_BUNDLE.",
    );
  });

  it("a fetch failure carries its code in `cause`", () => {
    const err = new TypeError("fetch failed", { cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:14000"), { code: "ECONNREFUSED" }) });
    expect(explainAcmeError(err, { directoryUrl: PEBBLE })).toMatchObject({ kind: "ca_unreachable", raw: "ECONNREFUSED: fetch failed" });
  });

  it("acme-client's lost-response TypeError from a private ACME server: not trusted", () => {
    const err = new TypeError("Cannot read properties of undefined (reading 'config')");
    const f = explainAcmeError(err, { directoryUrl: PEBBLE });
    expect(f.kind).toBe("tls_untrusted");
    expect(f.cause).toBe("the ACME server's certificate is not trusted, or the server cannot be reached (127.0.0.1:14000)");
    expect(f.fix).toMatch(/^Add its CA to PORTCULLIS_ACME_CA_BUNDLE/);
    expect(f.raw).toBe("TypeError: Cannot read properties of undefined (reading 'config')");
  });

  it("the same TypeError with Let's Encrypt: its certificate is public, so it is unreachable", () => {
    const f = explainAcmeError(new TypeError("Cannot read properties of undefined (reading 'config')"), { directoryUrl: LE });
    expect(f).toMatchObject({ kind: "ca_unreachable", retryable: true, cause: "could not reach Let's Encrypt at acme-v02.api.letsencrypt.org" });
  });
});

describe("a real acme-client against a server with an untrusted certificate", () => {
  let server: https.Server;
  let dir: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-acme-errors-"));
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path.join(dir, "key.pem"), "-out", path.join(dir, "cert.pem"), "-subj", "/CN=127.0.0.1", "-days", "1"], { stdio: "ignore" });
    server = https.createServer({ key: fs.readFileSync(path.join(dir, "key.pem")), cert: fs.readFileSync(path.join(dir, "cert.pem")) }, (_req, res) => res.end("{}"));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    // This test file runs in its own process: no one else sees acme-client's shared settings.
    (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings.retryMaxAttempts = 0;
  });
  afterAll(() => {
    server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("explains what acme-client actually throws", async () => {
    const directoryUrl = `https://127.0.0.1:${(server.address() as AddressInfo).port}/directory`;
    const client = new acme.Client({ directoryUrl, accountKey: await acme.crypto.createPrivateKey() });
    const err = await client.createAccount({ termsOfServiceAgreed: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(TypeError);
    const f = explainAcmeError(err, { directoryUrl, step: "registering the account" });
    expect(f.kind).toBe("tls_untrusted");
    expect(f.fix).toMatch(/PORTCULLIS_ACME_CA_BUNDLE/);
    expect(f.raw).not.toMatch(/\n|\bat .*\.js:\d+/);
  });
});

describe("robustness and formatting", () => {
  it.each([null, undefined, 42, "plain text", {}, { weird: true }, new Error("")])("never throws on %j", (input) => {
    const f = explainAcmeError(input, { directoryUrl: LE });
    expect(f.cause).toBeTruthy();
    expect(f.fix).toBeTruthy();
    expect(typeof f.raw).toBe("string");
  });

  it("keeps raw to one short line without credentials or stack", () => {
    const err = new Error(`Fetching http://user:secret@example.com/.well-known/acme-challenge/x:\n Connection refused ${"x".repeat(2000)}`);
    const f = explainAcmeError(err, { directoryUrl: LE });
    expect(f.raw).not.toContain("secret");
    expect(f.raw).not.toContain("\n");
    expect(f.raw.length).toBeLessThanOrEqual(600);
    expect(f.raw).not.toContain(err.stack!.split("\n")[1].trim());
  });

  it("formats 'cause — fix' on one line", () => {
    const f = explainAcmeError({ type: `${URN}caa`, detail: "CAA record for example.com prevents issuance", status: 403 }, { directoryUrl: LE });
    expect(formatFailure(f)).toBe(
      'a CAA record for example.com does not allow Let\'s Encrypt to issue — Add 0 issue "letsencrypt.org" to the CAA records of example.com, or remove the record that excludes Let\'s Encrypt.',
    );
  });
});
