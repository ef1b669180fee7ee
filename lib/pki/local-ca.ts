import "reflect-metadata";
import crypto from "node:crypto";
import * as X509 from "@peculiar/x509";
import { exportPrivateKeyPem, generateKeyPair } from "./keys";
import type { SanEntry } from "./names";

// Portcullis's own small CA: ECDSA P-256, ten years, used to sign the console's server certificate
// when it runs on a public address without Let's Encrypt or provided files. Clients pin its fingerprint
// (GET /api/v1/ca) or install it.

const DAY_MS = 24 * 60 * 60 * 1000;
const CLOCK_SKEW_MS = 60 * 1000;
export const LOCAL_CA_VALIDITY_DAYS = 3652;
export const LOCAL_SERVER_VALIDITY_DAYS = 90;
const SIGNING = { name: "ECDSA", hash: "SHA-256" } as const;
const EC_IMPORT = { name: "ECDSA", namedCurve: "P-256" } as const;

let configured = false;
function x509(): typeof X509 {
  if (!configured) {
    X509.cryptoProvider.set(globalThis.crypto);
    configured = true;
  }
  return X509;
}

export type PemPair = { certificatePem: string; privateKeyPem: string };

function serialHex(): string {
  const bytes = crypto.randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f || 0x01;
  return bytes.toString("hex");
}

const pemOf = (cert: X509.X509Certificate) => `${cert.toString("pem").replace(/\r\n/g, "\n").trimEnd()}\n`;

async function importSigningKey(privateKeyPem: string): Promise<CryptoKey> {
  const der = crypto.createPrivateKey(privateKeyPem).export({ format: "der", type: "pkcs8" });
  return globalThis.crypto.subtle.importKey("pkcs8", der, EC_IMPORT, false, ["sign"]);
}

/** A new local CA named "Portcullis local CA <short id>". */
export async function createLocalCa(now: Date = new Date()): Promise<PemPair> {
  const x = x509();
  const keys = await generateKeyPair("ecdsa-p256");
  const shortId = crypto.randomBytes(4).toString("hex");
  const cert = await x.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialHex(),
    name: [{ CN: [`Portcullis local CA ${shortId}`] }, { O: ["Portcullis"] }],
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(now.getTime() + LOCAL_CA_VALIDITY_DAYS * DAY_MS),
    keys,
    signingAlgorithm: SIGNING,
    extensions: [
      new x.BasicConstraintsExtension(true, 0, true),
      new x.KeyUsagesExtension(x.KeyUsageFlags.keyCertSign | x.KeyUsageFlags.cRLSign | x.KeyUsageFlags.digitalSignature, true),
      await x.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return { certificatePem: pemOf(cert), privateKeyPem: await exportPrivateKeyPem(keys.privateKey) };
}

/** A server certificate signed by the local CA (ECDSA P-256, `validityDays` days). */
export async function issueFromLocalCa(
  ca: PemPair,
  opts: { names: SanEntry[]; commonName?: string; validityDays?: number; now?: Date },
): Promise<PemPair> {
  if (opts.names.length === 0) throw new Error("issueFromLocalCa needs at least one name");
  const x = x509();
  const now = opts.now ?? new Date();
  const caCert = new x.X509Certificate(ca.certificatePem);
  const caKey = await importSigningKey(ca.privateKeyPem);
  const keys = await generateKeyPair("ecdsa-p256");
  const commonName = (opts.commonName ?? opts.names[0]!.value).slice(0, 64);
  const notAfter = Math.min(now.getTime() + (opts.validityDays ?? LOCAL_SERVER_VALIDITY_DAYS) * DAY_MS, caCert.notAfter.getTime());
  const cert = await x.X509CertificateGenerator.create({
    serialNumber: serialHex(),
    subject: [{ CN: [commonName] }],
    issuer: caCert.subjectName,
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MS),
    notAfter: new Date(notAfter),
    publicKey: keys.publicKey,
    signingKey: caKey,
    signingAlgorithm: SIGNING,
    extensions: [
      new x.BasicConstraintsExtension(false, undefined, true),
      new x.KeyUsagesExtension(x.KeyUsageFlags.digitalSignature, true),
      new x.ExtendedKeyUsageExtension([x.ExtendedKeyUsage.serverAuth], false),
      new x.SubjectAlternativeNameExtension(opts.names.map((n) => ({ type: n.type, value: n.value })), false),
      await x.SubjectKeyIdentifierExtension.create(keys.publicKey),
      await x.AuthorityKeyIdentifierExtension.create(caCert, false),
    ],
  });
  return { certificatePem: pemOf(cert), privateKeyPem: await exportPrivateKeyPem(keys.privateKey) };
}
