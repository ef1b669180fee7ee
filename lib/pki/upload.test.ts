import { execFileSync } from "node:child_process";
import { createPrivateKey, randomBytes, X509Certificate } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import forge from "node-forge";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AppError } from "../errors";
import { createSelfSignedCertificate } from "./selfSigned";
import { validateUpload, type UploadInput } from "./upload";

const DAY = 86_400_000;
const KEY_PASSPHRASE = "correct horse battery";
const PKCS12_PASSWORD = "p12-secret";

let directory: string;

function openssl(...args: string[]): string {
  return execFileSync("openssl", args, { cwd: directory, stdio: ["ignore", "pipe", "pipe"] }).toString("utf8");
}

function text(name: string): string {
  return readFileSync(path.join(directory, name), "utf8");
}

function bytes(name: string): Buffer {
  return readFileSync(path.join(directory, name));
}

type IssueOptions = {
  name: string;
  commonName: string;
  algorithm: "ec" | "rsa";
  issuer?: string;
  days: number;
  ca?: boolean;
  subjectKeyIdentifier?: string;
};

function issue({ name, commonName, algorithm, issuer, days, ca = false, subjectKeyIdentifier }: IssueOptions): void {
  const keyOptions =
    algorithm === "ec" ? ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"] : ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"];
  openssl("genpkey", ...keyOptions, "-out", `${name}.key`);
  openssl("req", "-new", "-key", `${name}.key`, "-subj", `/CN=${commonName}`, "-out", `${name}.csr`);
  const extensions = ca
    ? ["basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"]
    : ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature,keyEncipherment", `subjectAltName=DNS:${commonName}`];
  if (subjectKeyIdentifier) extensions.push(`subjectKeyIdentifier=${subjectKeyIdentifier}`);
  writeFileSync(path.join(directory, `${name}.ext`), `${extensions.join("\n")}\n`);
  const signer = issuer ? ["-CA", `${issuer}.pem`, "-CAkey", `${issuer}.key`] : ["-signkey", `${name}.key`];
  openssl(
    "x509", "-req", "-in", `${name}.csr`, ...signer, "-set_serial", `0x${randomBytes(8).toString("hex")}`,
    "-days", String(days), "-extfile", `${name}.ext`, "-out", `${name}.pem`,
  );
}

function exportPkcs12(name: string, leaf: string, chainFiles: string[], extraArgs: string[], password = PKCS12_PASSWORD): void {
  const chainFile = `${name}-chain.pem`;
  writeFileSync(path.join(directory, chainFile), chainFiles.map(text).join(""));
  openssl(
    "pkcs12", "-export", "-in", `${leaf}.pem`, "-inkey", `${leaf}.key`, "-certfile", chainFile,
    "-passout", `pass:${password}`, "-out", `${name}.p12`, ...extraArgs,
  );
}

function refusal(input: UploadInput, now?: Date): AppError {
  try {
    validateUpload(input, now);
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe("validation_failed");
    return error as AppError;
  }
  throw new Error("validateUpload accepted an upload it should have refused");
}

function pem(certificatePem: string, keyPem: string, extra: Partial<Extract<UploadInput, { kind: "pem" }>> = {}): UploadInput {
  return { kind: "pem", certificatePem, keyPem, ...extra };
}

function certificate(name: string): X509Certificate {
  return new X509Certificate(text(`${name}.pem`));
}

function isoDate(date: Date): string {
  return date.toISOString().slice(0, 10);
}

function expectKeyOf(privateKeyPem: string, name: string): void {
  expect(privateKeyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  expect(certificate(name).checkPrivateKey(createPrivateKey(privateKeyPem))).toBe(true);
}

beforeAll(() => {
  directory = mkdtempSync(path.join(tmpdir(), "portcullis-upload-"));
  issue({ name: "root", commonName: "Portcullis Test Root", algorithm: "ec", days: 3650, ca: true });
  issue({
    name: "intermediate", commonName: "Portcullis Test Intermediate", algorithm: "ec", issuer: "root", days: 1000, ca: true,
    subjectKeyIdentifier: "5A:5A:5A:5A:5A:5A:5A:5A",
  });
  issue({ name: "leaf", commonName: "leaf.example.test", algorithm: "ec", issuer: "intermediate", days: 90 });
  issue({ name: "other", commonName: "other.example.test", algorithm: "ec", issuer: "intermediate", days: 90 });
  // Same name and key identifier as the real intermediate but another key: the leaf's signature cannot verify with it.
  issue({
    name: "impostor", commonName: "Portcullis Test Intermediate", algorithm: "ec", issuer: "root", days: 1000, ca: true,
    subjectKeyIdentifier: "5A:5A:5A:5A:5A:5A:5A:5A",
  });
  issue({ name: "short-intermediate", commonName: "Short Intermediate", algorithm: "ec", issuer: "root", days: 10, ca: true });
  issue({ name: "short-leaf", commonName: "short.example.test", algorithm: "ec", issuer: "short-intermediate", days: 90 });

  issue({ name: "rsa-root", commonName: "Portcullis RSA Root", algorithm: "rsa", days: 3650, ca: true });
  issue({ name: "rsa-intermediate", commonName: "Portcullis RSA Intermediate", algorithm: "rsa", issuer: "rsa-root", days: 1000, ca: true });
  issue({ name: "rsa-leaf", commonName: "rsa.example.test", algorithm: "rsa", issuer: "rsa-intermediate", days: 90 });

  openssl("x509", "-in", "leaf.pem", "-outform", "der", "-out", "leaf.der");
  openssl("pkcs8", "-topk8", "-in", "leaf.key", "-passout", `pass:${KEY_PASSPHRASE}`, "-out", "leaf-encrypted.key");
  openssl("ec", "-in", "leaf.key", "-out", "leaf-sec1.key");
  openssl("ecparam", "-name", "prime256v1", "-out", "ec-parameters.pem");
  openssl("rsa", "-in", "rsa-leaf.key", "-traditional", "-out", "rsa-leaf-pkcs1.key");
  openssl("rsa", "-in", "rsa-leaf.key", "-traditional", "-aes256", "-passout", `pass:${KEY_PASSPHRASE}`, "-out", "rsa-leaf-pkcs1-encrypted.key");

  for (const [prefix, chain] of [["ec", ["intermediate.pem", "root.pem"]], ["rsa", ["rsa-intermediate.pem", "rsa-root.pem"]]] as const) {
    const leaf = prefix === "ec" ? "leaf" : "rsa-leaf";
    exportPkcs12(`${prefix}-default`, leaf, [...chain], []);
    exportPkcs12(`${prefix}-legacy`, leaf, [...chain], ["-legacy"]);
    exportPkcs12(`${prefix}-3des`, leaf, [...chain], ["-certpbe", "PBE-SHA1-3DES", "-keypbe", "PBE-SHA1-3DES", "-macalg", "sha1"]);
  }
  exportPkcs12("ec-camellia", "leaf", ["intermediate.pem"], ["-certpbe", "camellia-256-cbc", "-keypbe", "camellia-256-cbc"]);
  exportPkcs12("ec-unicode", "leaf", ["intermediate.pem"], [], "pässwörd");
  exportPkcs12("ec-slow", "leaf", ["intermediate.pem"], ["-iter", "200000"]);
  openssl("pkcs12", "-export", "-nokeys", "-in", "leaf.pem", "-passout", `pass:${PKCS12_PASSWORD}`, "-out", "ec-no-key.p12");
});

afterAll(() => {
  if (directory) rmSync(directory, { recursive: true, force: true });
});

describe("validateUpload: chain assembly", () => {
  it("accepts a fullchain with the leaf first and returns what a server sends", () => {
    const result = validateUpload(pem(text("leaf.pem") + text("intermediate.pem"), text("leaf.key")));
    expect(result.leafPem).toBe(text("leaf.pem"));
    expect(result.chainPem).toBe(text("leaf.pem") + text("intermediate.pem"));
    expect(result.facts.subject).toBe("CN=leaf.example.test");
    expect(result.facts.subjectAltNames).toEqual([{ type: "dns", value: "leaf.example.test" }]);
    expect(result.keyType).toBe("ecdsa-p256");
    expect(result.warnings).toEqual([]);
    expectKeyOf(result.privateKeyPem, "leaf");
  });

  it("takes intermediates from the chain field too", () => {
    const result = validateUpload(pem(text("leaf.pem"), text("leaf.key"), { chainPem: text("intermediate.pem") }));
    expect(result.chainPem).toBe(text("leaf.pem") + text("intermediate.pem"));
  });

  it("reorders a reversed chain, leaf first, and leaves the root out", () => {
    const reversed = text("root.pem") + text("intermediate.pem") + text("leaf.pem");
    const result = validateUpload(pem(reversed, text("leaf.key")));
    expect(result.leafPem).toBe(text("leaf.pem"));
    expect(result.chainPem).toBe(text("leaf.pem") + text("intermediate.pem"));
  });

  it("reorders a chain shuffled across both fields and removes duplicates", () => {
    const result = validateUpload(
      pem(text("intermediate.pem") + text("leaf.pem") + text("intermediate.pem"), text("leaf.key"), {
        chainPem: `Bag Attributes: ignored\n${text("root.pem")}\r\n${text("intermediate.pem").replace(/\n/g, "\r\n")}`,
      }),
    );
    expect(result.chainPem).toBe(text("leaf.pem") + text("intermediate.pem"));
  });

  it("accepts a lone leaf but warns that clients need the intermediate", () => {
    const result = validateUpload(pem(text("leaf.pem"), text("leaf.key")));
    expect(result.chainPem).toBe(text("leaf.pem"));
    expect(result.warnings).toEqual([expect.stringMatching(/^only the leaf certificate was given; .*CN=Portcullis Test Intermediate/)]);
  });

  it("refuses a chain with a missing intermediate, naming the certificate that does not fit", () => {
    const error = refusal(pem(text("leaf.pem") + text("root.pem"), text("leaf.key")));
    expect(error.fieldErrors).toEqual({
      certificate: [
        "certificate 2 (CN=Portcullis Test Root) does not sign any other certificate in the chain; remove it or add the missing intermediate",
      ],
    });
    expect(error.message).toBe(error.fieldErrors!.certificate![0]);
  });

  it("refuses a certificate from an unrelated chain given in the chain field", () => {
    const error = refusal(
      pem(text("leaf.pem") + text("intermediate.pem"), text("leaf.key"), { chainPem: text("rsa-intermediate.pem") }),
    );
    expect(error.fieldErrors?.chain).toEqual([
      "chain certificate 1 (CN=Portcullis RSA Intermediate) does not sign any other certificate in the chain; remove it or add the missing intermediate",
    ]);
  });

  it("refuses an issuer whose name matches but whose signature does not verify", () => {
    const error = refusal(pem(text("leaf.pem"), text("leaf.key"), { chainPem: text("impostor.pem") }));
    expect(error.fieldErrors?.certificate?.[0]).toMatch(
      /^the signature on certificate 1 \(CN=leaf\.example\.test\) does not verify with the key of chain certificate 1 \(CN=Portcullis Test Intermediate\)/,
    );
  });

  it("refuses the key of another certificate", () => {
    const error = refusal(pem(text("leaf.pem") + text("intermediate.pem"), text("other.key")));
    expect(error.fieldErrors?.key?.[0]).toMatch(
      /^the private key does not belong to any of the certificates \(leaf CN=leaf\.example\.test\); use the key/,
    );
  });

  it("refuses a CA's key given in place of the server certificate's key", () => {
    const error = refusal(pem(text("leaf.pem") + text("intermediate.pem"), text("intermediate.key")));
    expect(error.fieldErrors?.key?.[0]).toMatch(
      /^the private key belongs to the CA certificate 2 \(CN=Portcullis Test Intermediate\), not to the server certificate \(CN=leaf\.example\.test\)/,
    );
  });

  it("accepts a self-signed certificate on its own, without warnings", async () => {
    const selfSigned = await createSelfSignedCertificate({
      names: [{ type: "dns", value: "self.example.test" }],
      keyType: "ecdsa-p384",
      validityDays: 365,
    });
    const result = validateUpload(pem(selfSigned.certificatePem, selfSigned.privateKeyPem));
    expect(result.chainPem).toBe(selfSigned.certificatePem);
    expect(result.facts.selfSigned).toBe(true);
    expect(result.keyType).toBe("ecdsa-p384");
    expect(result.warnings).toEqual([]);
  });

  it("refuses more certificates than a chain can hold", () => {
    const error = refusal(pem(text("leaf.pem").repeat(21), text("leaf.key")));
    expect(error.fieldErrors?.certificate?.[0]).toMatch(/^21 certificates were given; .*at most 20/);
  });

  it("accepts an RSA chain and reports the key type", () => {
    const result = validateUpload(pem(text("rsa-leaf.pem") + text("rsa-intermediate.pem"), text("rsa-leaf.key")));
    expect(result.keyType).toBe("rsa-2048");
    expect(result.chainPem).toBe(text("rsa-leaf.pem") + text("rsa-intermediate.pem"));
    expectKeyOf(result.privateKeyPem, "rsa-leaf");
  });
});

describe("validateUpload: private keys", () => {
  const fullchain = () => text("leaf.pem") + text("intermediate.pem");

  it("normalises a PKCS#1 RSA key to PKCS#8", () => {
    expect(text("rsa-leaf-pkcs1.key")).toMatch(/^-----BEGIN RSA PRIVATE KEY-----/);
    const result = validateUpload(pem(text("rsa-leaf.pem") + text("rsa-intermediate.pem"), text("rsa-leaf-pkcs1.key")));
    expectKeyOf(result.privateKeyPem, "rsa-leaf");
  });

  it("normalises a SEC1 EC key to PKCS#8, also after the EC PARAMETERS block openssl ecparam writes", () => {
    expect(text("leaf-sec1.key")).toMatch(/^-----BEGIN EC PRIVATE KEY-----/);
    expectKeyOf(validateUpload(pem(fullchain(), text("leaf-sec1.key"))).privateKeyPem, "leaf");
    expectKeyOf(validateUpload(pem(fullchain(), text("ec-parameters.pem") + text("leaf-sec1.key"))).privateKeyPem, "leaf");
  });

  it("decrypts an encrypted PKCS#8 key with the right passphrase", () => {
    expect(text("leaf-encrypted.key")).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
    const result = validateUpload(pem(fullchain(), text("leaf-encrypted.key"), { passphrase: KEY_PASSPHRASE }));
    expectKeyOf(result.privateKeyPem, "leaf");
  });

  it("asks for the passphrase of an encrypted key", () => {
    const error = refusal(pem(fullchain(), text("leaf-encrypted.key")));
    expect(error.fieldErrors).toEqual({ passphrase: ["this key is encrypted; enter its passphrase"] });
  });

  it("says when the passphrase is wrong", () => {
    const error = refusal(pem(fullchain(), text("leaf-encrypted.key"), { passphrase: "wrong" }));
    expect(error.fieldErrors?.passphrase?.[0]).toMatch(/^the passphrase does not decrypt this key/);
  });

  it("handles a legacy encrypted PKCS#1 key", () => {
    const certificates = text("rsa-leaf.pem") + text("rsa-intermediate.pem");
    expect(text("rsa-leaf-pkcs1-encrypted.key")).toContain("Proc-Type: 4,ENCRYPTED");
    const result = validateUpload(pem(certificates, text("rsa-leaf-pkcs1-encrypted.key"), { passphrase: KEY_PASSPHRASE }));
    expectKeyOf(result.privateKeyPem, "rsa-leaf");
    expect(refusal(pem(certificates, text("rsa-leaf-pkcs1-encrypted.key"))).fieldErrors).toEqual({
      passphrase: ["this key is encrypted; enter its passphrase"],
    });
  });

  it("says when a certificate was pasted into the key field", () => {
    const error = refusal(pem(fullchain(), text("intermediate.pem")));
    expect(error.fieldErrors?.key).toEqual([
      "this is a certificate, not a private key; paste the certificate in the certificate field and its private key here",
    ]);
  });

  it("says when the key is missing", () => {
    const error = refusal(pem(fullchain(), "  \n"));
    expect(error.fieldErrors).toEqual({ key: ["a certificate without its private key cannot be served; add the key"] });
  });

  it("refuses a damaged key block", () => {
    const damaged = text("leaf.key").replace(/\n[A-Za-z0-9+/]{20}/, "\n" + "A".repeat(20));
    const error = refusal(pem(fullchain(), damaged));
    expect(error.fieldErrors?.key?.[0]).toMatch(/^the private key could not be read; /);
  });
});

describe("validateUpload: certificate text", () => {
  it("refuses an empty upload, per field", () => {
    const error = refusal(pem("", ""));
    expect(error.fieldErrors).toEqual({
      certificate: ["paste the certificate PEM, or choose a file"],
      key: ["a certificate without its private key cannot be served; add the key"],
    });
    expect(error.message).toBe(
      "certificate: paste the certificate PEM, or choose a file; key: a certificate without its private key cannot be served; add the key",
    );
  });

  it("refuses input over 1 MiB before reading it", () => {
    const error = refusal(pem("A".repeat(2 * 1024 * 1024), text("leaf.key")));
    expect(error.fieldErrors).toEqual({
      certificate: ["the certificate is 2.0 MiB; a certificate file is at most 1 MiB, so check that you chose the right file"],
    });
  });

  it("recognises a DER file read as text, whichever way it was decoded", () => {
    for (const encoding of ["utf8", "latin1"] as const) {
      const error = refusal(pem(bytes("leaf.der").toString(encoding), text("leaf.key")));
      expect(error.fieldErrors?.certificate?.[0]).toMatch(
        /^this looks like a DER \(binary\) file; convert it with `openssl x509 -inform der -in cert\.der -out cert\.pem`/,
      );
    }
  });

  it("says when a private key was pasted into the certificate field", () => {
    const error = refusal(pem(text("leaf.key"), text("leaf.key")));
    expect(error.fieldErrors?.certificate).toEqual([
      "this holds a private key (-----BEGIN PRIVATE KEY-----); move it to the key field, since the certificate field is for certificates only",
    ]);
  });

  it("names the block that is not a valid certificate", () => {
    const intermediateLines = text("intermediate.pem").split("\n");
    intermediateLines[3] = intermediateLines[3]!.replace(/^..../, "!!!!");
    const error = refusal(pem(text("leaf.pem") + intermediateLines.join("\n"), text("leaf.key")));
    expect(error.fieldErrors?.certificate?.[0]).toMatch(/^block 2 is not a valid certificate; /);
  });

  it("says when a block was cut off", () => {
    const truncated = text("leaf.pem") + text("intermediate.pem").replace("-----END CERTIFICATE-----\n", "");
    const error = refusal(pem(truncated, text("leaf.key")));
    expect(error.fieldErrors?.certificate).toEqual([
      "block 2 has no -----END CERTIFICATE----- line; it was cut off, so copy the whole block again",
    ]);
  });

  it("says when there is no certificate block at all", () => {
    const error = refusal(pem("hello, this is my certificate", text("leaf.key")));
    expect(error.fieldErrors?.certificate?.[0]).toMatch(/^no -----BEGIN CERTIFICATE----- block found/);
    const headless = text("leaf.pem").replace(/-----(BEGIN|END) CERTIFICATE-----/g, "");
    expect(refusal(pem(headless, text("leaf.key"))).fieldErrors?.certificate?.[0]).toMatch(/^the BEGIN and END lines are missing/);
  });

  it("says when a certificate signing request was given instead of the certificate", () => {
    const error = refusal(pem(text("leaf.csr"), text("leaf.key")));
    expect(error.fieldErrors?.certificate?.[0]).toMatch(/^this is a certificate signing request \(CSR\)/);
  });
});

describe("validateUpload: validity", () => {
  const fullchain = () => pem(text("leaf.pem") + text("intermediate.pem"), text("leaf.key"));
  const leafNotAfter = () => new Date(certificate("leaf").validTo);
  const leafNotBefore = () => new Date(certificate("leaf").validFrom);

  it("refuses an expired leaf", () => {
    const error = refusal(fullchain(), new Date(leafNotAfter().getTime() + DAY));
    expect(error.fieldErrors).toEqual({
      certificate: [`the certificate expired on ${isoDate(leafNotAfter())}; renew it at your CA before uploading`],
    });
  });

  it("warns about a leaf that expires within 30 days", () => {
    const result = validateUpload(fullchain(), new Date(leafNotAfter().getTime() - 10 * DAY - 3_600_000));
    expect(result.warnings).toEqual([`expires in 10 days (${isoDate(leafNotAfter())}): renew it soon`]);
  });

  it("refuses a leaf that is not valid yet", () => {
    const error = refusal(fullchain(), new Date(leafNotBefore().getTime() - DAY));
    expect(error.fieldErrors?.certificate?.[0]).toMatch(
      new RegExp(`^the certificate is not valid until ${isoDate(leafNotBefore())} \\d\\d:\\d\\d UTC; `),
    );
  });

  it("refuses an expired intermediate, naming it", () => {
    const intermediateNotAfter = new Date(certificate("short-intermediate").validTo);
    const error = refusal(
      pem(text("short-leaf.pem") + text("short-intermediate.pem"), text("short-leaf.key")),
      new Date(intermediateNotAfter.getTime() + DAY),
    );
    expect(error.fieldErrors?.certificate).toEqual([
      `the intermediate certificate 2 (CN=Short Intermediate) expired on ${isoDate(intermediateNotAfter)}; download the current chain from your CA`,
    ]);
  });
});

describe("validateUpload: PKCS#12", () => {
  const cases = [
    { prefix: "ec", leaf: "leaf", intermediate: "intermediate", keyType: "ecdsa-p256" },
    { prefix: "rsa", leaf: "rsa-leaf", intermediate: "rsa-intermediate", keyType: "rsa-2048" },
  ];
  for (const { prefix, leaf, intermediate, keyType } of cases) {
    for (const protection of ["default", "legacy", "3des"]) {
      it(`opens an ${prefix.toUpperCase()} file made with ${protection} protection`, () => {
        const result = validateUpload({ kind: "pkcs12", data: bytes(`${prefix}-${protection}.p12`), password: PKCS12_PASSWORD });
        expect(result.leafPem).toBe(text(`${leaf}.pem`));
        expect(result.chainPem).toBe(text(`${leaf}.pem`) + text(`${intermediate}.pem`));
        expect(result.keyType).toBe(keyType);
        expectKeyOf(result.privateKeyPem, leaf);
      });

      it(`refuses the wrong password for an ${prefix.toUpperCase()} file made with ${protection} protection`, () => {
        const error = refusal({ kind: "pkcs12", data: bytes(`${prefix}-${protection}.p12`), password: "not it" });
        expect(error.fieldErrors).toEqual({ password: ["the password does not open this PKCS#12 file"] });
      });
    }
  }

  it("opens a file protected with a non-ASCII password", () => {
    const result = validateUpload({ kind: "pkcs12", data: bytes("ec-unicode.p12"), password: "pässwörd" });
    expectKeyOf(result.privateKeyPem, "leaf");
    expect(refusal({ kind: "pkcs12", data: bytes("ec-unicode.p12"), password: "passwort" }).fieldErrors).toEqual({
      password: ["the password does not open this PKCS#12 file"],
    });
  });

  it("names the fix for encryption it cannot read", () => {
    const error = refusal({ kind: "pkcs12", data: bytes("ec-camellia.p12"), password: PKCS12_PASSWORD });
    expect(error.fieldErrors?.file?.[0]).toMatch(/cannot read; .*`openssl pkcs12 -export -legacy …`/);
  });

  it("refuses a file that asks for more key-derivation rounds than it allows, and leaves node-forge as it was", () => {
    const derivations = [forge.pkcs5.pbkdf2, forge.pkcs12.generateKey];
    const startedAt = Date.now();
    const error = refusal({ kind: "pkcs12", data: bytes("ec-slow.p12"), password: PKCS12_PASSWORD });
    expect(Date.now() - startedAt).toBeLessThan(2_000);
    expect(error.fieldErrors?.file?.[0]).toMatch(/^this PKCS#12 file asks for 200,000 rounds of key derivation, more than the 100,000/);
    expect([forge.pkcs5.pbkdf2, forge.pkcs12.generateKey]).toEqual(derivations);
    expect(validateUpload({ kind: "pkcs12", data: bytes("ec-default.p12"), password: PKCS12_PASSWORD }).leafPem).toBe(text("leaf.pem"));
  });

  it("refuses a file without a private key", () => {
    const error = refusal({ kind: "pkcs12", data: bytes("ec-no-key.p12"), password: PKCS12_PASSWORD });
    expect(error.fieldErrors?.file?.[0]).toMatch(/^this PKCS#12 file holds no private key/);
  });

  it("refuses what is not a PKCS#12 file", () => {
    for (const data of [bytes("leaf.der"), randomBytes(300), Buffer.from([0x30, 0x03, 0x02, 0x01, 0x03])]) {
      expect(refusal({ kind: "pkcs12", data, password: "x" }).fieldErrors?.file?.[0]).toMatch(/^this is not a PKCS#12 \(\.p12 or \.pfx\) file/);
    }
    expect(refusal({ kind: "pkcs12", data: bytes("leaf.pem"), password: "x" }).fieldErrors?.file?.[0]).toMatch(
      /^this is a PEM text file, not PKCS#12/,
    );
  });

  it("refuses an empty or oversized file", () => {
    expect(refusal({ kind: "pkcs12", data: Buffer.alloc(0), password: "x" }).fieldErrors).toEqual({
      file: ["choose a PKCS#12 (.p12 or .pfx) file"],
    });
    expect(refusal({ kind: "pkcs12", data: Buffer.alloc(10 * 1024 * 1024), password: "x" }).fieldErrors?.file?.[0]).toMatch(
      /^the file is 10\.0 MiB; a certificate file is at most 1 MiB/,
    );
  });

  it("applies the same validity rules", () => {
    const leafNotAfter = new Date(certificate("leaf").validTo);
    const error = refusal(
      { kind: "pkcs12", data: bytes("ec-default.p12"), password: PKCS12_PASSWORD },
      new Date(leafNotAfter.getTime() + DAY),
    );
    expect(error.fieldErrors).toEqual({
      file: [`the certificate expired on ${isoDate(leafNotAfter)}; renew it at your CA before uploading`],
    });
  });
});
