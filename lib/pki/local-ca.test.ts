import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { createLocalCa, issueFromLocalCa } from "./local-ca";

describe("the local CA", () => {
  it("is a ten-year P-256 CA whose server certificates OpenSSL verifies for serverAuth and the names given", async () => {
    const ca = await createLocalCa();
    const caCert = new crypto.X509Certificate(ca.certificatePem);
    expect(caCert.ca).toBe(true);
    expect(caCert.subject).toMatch(/^CN=Portcullis local CA [0-9a-f]{8}/);
    expect((Date.parse(caCert.validTo) - Date.now()) / 86_400_000).toBeGreaterThan(3650);
    expect(crypto.createPrivateKey(ca.privateKeyPem).asymmetricKeyDetails?.namedCurve).toBe("prime256v1");

    const leaf = await issueFromLocalCa(ca, { names: [{ type: "dns", value: "console.example.net" }, { type: "ip", value: "10.0.0.5" }] });
    const leafCert = new crypto.X509Certificate(leaf.certificatePem);
    expect(leafCert.ca).toBe(false);
    expect(leafCert.checkIssued(caCert)).toBe(true);
    expect(leafCert.checkPrivateKey(crypto.createPrivateKey(leaf.privateKeyPem))).toBe(true);
    expect(leafCert.subjectAltName).toBe("DNS:console.example.net, IP Address:10.0.0.5");
    const days = (Date.parse(leafCert.validTo) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(89);
    expect(days).toBeLessThan(91);

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-local-ca-"));
    try {
      fs.writeFileSync(path.join(dir, "ca.pem"), ca.certificatePem);
      fs.writeFileSync(path.join(dir, "leaf.pem"), leaf.certificatePem);
      const out = execFileSync("openssl", ["verify", "-CAfile", path.join(dir, "ca.pem"), "-purpose", "sslserver", "-verify_hostname", "console.example.net", path.join(dir, "leaf.pem")], { encoding: "utf8" });
      expect(out).toContain("OK");
      // Another CA's certificate does not verify: the check can fail.
      const other = await createLocalCa();
      fs.writeFileSync(path.join(dir, "other.pem"), other.certificatePem);
      expect(() => execFileSync("openssl", ["verify", "-CAfile", path.join(dir, "other.pem"), path.join(dir, "leaf.pem")], { stdio: "pipe" })).toThrow();
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
