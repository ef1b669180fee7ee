import { execFileSync } from "node:child_process";
import { X509Certificate, createPrivateKey, generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { inspectCertificatePem, splitPemBlocks } from "./inspect";
import { KEY_TYPES, type KeyType } from "./keys";
import type { SanEntry } from "./names";
import { createSelfSignedCertificate } from "./selfSigned";

const SLOW_KEY_GENERATION_TIMEOUT = 60_000;
const MILLISECONDS_PER_DAY = 24 * 60 * 60 * 1000;

const NAMES: SanEntry[] = [
  { type: "dns", value: "example.test" },
  { type: "dns", value: "*.example.test" },
  { type: "ip", value: "127.0.0.1" },
  { type: "ip", value: "::1" },
];

const EXPECTED_PUBLIC_KEYS: Record<KeyType, { asymmetricKeyType: string; details: Record<string, unknown> }> = {
  "ecdsa-p256": { asymmetricKeyType: "ec", details: { namedCurve: "prime256v1" } },
  "ecdsa-p384": { asymmetricKeyType: "ec", details: { namedCurve: "secp384r1" } },
  "rsa-2048": { asymmetricKeyType: "rsa", details: { modulusLength: 2048, publicExponent: 65537n } },
  "rsa-4096": { asymmetricKeyType: "rsa", details: { modulusLength: 4096, publicExponent: 65537n } },
};

const EXPECTED_SIGNATURE_ALGORITHMS: Record<KeyType, string> = {
  "ecdsa-p256": "ecdsa-with-SHA256",
  "ecdsa-p384": "ecdsa-with-SHA384",
  "rsa-2048": "sha256WithRSAEncryption",
  "rsa-4096": "sha256WithRSAEncryption",
};

function opensslText(pem: string): string {
  return execFileSync("openssl", ["x509", "-noout", "-text", "-fingerprint", "-sha256"], { input: pem }).toString();
}

function withTemporaryDirectory<T>(use: (directory: string) => T): T {
  const directory = mkdtempSync(join(tmpdir(), "portcullis-pki-"));
  try {
    return use(directory);
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}

describe("createSelfSignedCertificate", () => {
  it.each(KEY_TYPES)(
    "%s: a server certificate that Node and openssl both read as asked",
    async (keyType) => {
      const now = new Date("2030-03-04T05:06:07.000Z");
      const { certificatePem, privateKeyPem } = await createSelfSignedCertificate({
        names: NAMES,
        keyType,
        validityDays: 90,
        now,
      });

      const cert = new X509Certificate(certificatePem);
      expect(cert.subject).toBe("CN=example.test");
      expect(cert.issuer).toBe("CN=example.test");
      expect(cert.subjectAltName).toBe(
        "DNS:example.test, DNS:*.example.test, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1",
      );
      expect(cert.ca).toBe(false);
      expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1"]);

      const expectedKey = EXPECTED_PUBLIC_KEYS[keyType];
      expect(cert.publicKey.asymmetricKeyType).toBe(expectedKey.asymmetricKeyType);
      expect(cert.publicKey.asymmetricKeyDetails).toMatchObject(expectedKey.details);

      const notBefore = new Date(cert.validFrom);
      const notAfter = new Date(cert.validTo);
      expect(notBefore.toISOString()).toBe("2030-03-04T05:05:07.000Z");
      expect(notAfter.toISOString()).toBe("2030-06-02T05:06:07.000Z");
      expect((notAfter.getTime() - notBefore.getTime()) / MILLISECONDS_PER_DAY).toBeCloseTo(90, 2);

      expect(cert.verify(cert.publicKey)).toBe(true);
      expect(cert.checkPrivateKey(createPrivateKey(privateKeyPem))).toBe(true);
      const otherKey = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).privateKey;
      expect(cert.checkPrivateKey(otherKey)).toBe(false);

      expect(privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n([A-Za-z0-9+/=]{64}\n)*[A-Za-z0-9+/=]{1,64}\n-----END PRIVATE KEY-----\n$/);
      expect(certificatePem).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);

      const text = opensslText(certificatePem);
      const facts = inspectCertificatePem(certificatePem);
      expect(text).toContain(`sha256 Fingerprint=${facts.fingerprintSha256}\n`);
      expect(text).toContain("DNS:example.test, DNS:*.example.test, IP Address:127.0.0.1");
      expect(text).toContain(`Signature Algorithm: ${EXPECTED_SIGNATURE_ALGORITHMS[keyType]}`);
      expect(text).toMatch(/X509v3 Basic Constraints: critical\s+CA:FALSE/);
      expect(text).toMatch(
        keyType.startsWith("rsa-")
          ? /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment\n/
          : /X509v3 Key Usage: critical\s+Digital Signature\n/,
      );
      expect(text).toMatch(/X509v3 Extended Key Usage: \s+TLS Web Server Authentication\n/);
      expect(text).toContain("X509v3 Subject Key Identifier");

      const serialLine = text.match(/Serial Number:\s+([0-9a-f:]+)\n/)?.[1];
      expect(facts.serialNumber).toBe(serialLine?.toUpperCase());
      expect(facts).toMatchObject({
        subject: "CN=example.test",
        issuer: "CN=example.test",
        notBefore,
        notAfter,
        subjectAltNames: NAMES,
        keyType,
        selfSigned: true,
      });
    },
    SLOW_KEY_GENERATION_TIMEOUT,
  );

  it("uses a random, positive, 16-byte serial number", async () => {
    const serials = await Promise.all(
      [1, 2, 3].map(async () => {
        const { certificatePem } = await createSelfSignedCertificate({ names: NAMES, keyType: "ecdsa-p256", validityDays: 1 });
        return new X509Certificate(certificatePem).serialNumber;
      }),
    );
    expect(new Set(serials).size).toBe(3);
    for (const serial of serials) {
      expect(serial).toMatch(/^[0-9A-F]{32}$/);
      expect(Number.parseInt(serial.slice(0, 2), 16)).toBeLessThan(0x80);
      expect(serial.slice(0, 2)).not.toBe("00");
    }
  });

  it("puts an explicit common name in the subject, cut to 64 characters, and a wildcard as is", async () => {
    const longName = `${"a".repeat(60)}.example.test`;
    const truncated = await createSelfSignedCertificate({
      names: [{ type: "dns", value: longName }],
      keyType: "ecdsa-p256",
      validityDays: 1,
    });
    expect(new X509Certificate(truncated.certificatePem).subject).toBe(`CN=${longName.slice(0, 64)}`);
    expect(new X509Certificate(truncated.certificatePem).subjectAltName).toBe(`DNS:${longName}`);

    const named = await createSelfSignedCertificate({
      commonName: "Portcullis console",
      names: NAMES,
      keyType: "ecdsa-p256",
      validityDays: 1,
    });
    expect(new X509Certificate(named.certificatePem).subject).toBe("CN=Portcullis console");

    const wildcard = await createSelfSignedCertificate({
      names: [{ type: "dns", value: "*.example.test" }],
      keyType: "ecdsa-p256",
      validityDays: 1,
    });
    expect(new X509Certificate(wildcard.certificatePem).subject).toBe("CN=*.example.test");
  });
});

describe("inspectCertificatePem", () => {
  it("reads the first certificate of a chain pasted with CRLF line endings and surrounding text", async () => {
    const first = await createSelfSignedCertificate({ names: NAMES, keyType: "ecdsa-p256", validityDays: 1 });
    const second = await createSelfSignedCertificate({
      names: [{ type: "dns", value: "second.test" }],
      keyType: "ecdsa-p256",
      validityDays: 1,
    });
    const pasted = `subject=CN = example.test\r\n${first.certificatePem}\n\n${second.certificatePem}`.replace(/\n/g, "\r\n");

    expect(splitPemBlocks(pasted)).toEqual([first.certificatePem, second.certificatePem]);
    expect(inspectCertificatePem(pasted).subjectAltNames).toEqual(NAMES);
  });

  it("tells a certificate signed by another key from a self-signed one, and names unknown key types other", () => {
    withTemporaryDirectory((directory) => {
      const path = (name: string) => join(directory, name);
      const openssl = (args: string[]) => execFileSync("openssl", args, { stdio: ["ignore", "pipe", "pipe"] });
      openssl(["req", "-x509", "-newkey", "ed25519", "-nodes", "-keyout", path("ca.key"), "-out", path("ca.pem"),
        "-subj", "/CN=Test CA", "-days", "1"]);
      openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", path("leaf.key"),
        "-out", path("leaf.pem"), "-subj", "/CN=leaf.test", "-addext", "subjectAltName=DNS:leaf.test,IP:2001:db8:0:0::1",
        "-CA", path("ca.pem"), "-CAkey", path("ca.key"), "-days", "1"]);

      const authority = inspectCertificatePem(readFileSync(path("ca.pem"), "utf8"));
      expect(authority).toMatchObject({ subject: "CN=Test CA", keyType: "other", selfSigned: true, subjectAltNames: [] });

      const leaf = inspectCertificatePem(readFileSync(path("leaf.pem"), "utf8"));
      expect(leaf).toMatchObject({
        subject: "CN=leaf.test",
        issuer: "CN=Test CA",
        keyType: "ecdsa-p256",
        selfSigned: false,
        subjectAltNames: [
          { type: "dns", value: "leaf.test" },
          { type: "ip", value: "2001:db8::1" },
        ],
      });
    });
  });

  it("refuses text without a certificate", () => {
    expect(() => inspectCertificatePem("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")).toThrow(
      /no certificate found/,
    );
    expect(() => inspectCertificatePem("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")).toThrow(
      /could not be read/,
    );
  });
});
