import "reflect-metadata";
import * as X509 from "@peculiar/x509";
import { exportPrivateKeyPem, generateKeyPair, isRsaKeyType, type KeyType } from "./keys";
import type { SanEntry } from "./names";

let configured = false;

// @peculiar/x509 resolves its services through tsyringe, which needs the Reflect metadata API.
function configuredX509(): typeof X509 {
  if (!configured) {
    X509.cryptoProvider.set(globalThis.crypto);
    configured = true;
  }
  return X509;
}

const MILLISECONDS_PER_DAY = 24 * 60 * 60 * 1000;
// Back-dated so that clients whose clocks run a little behind still accept the certificate at once.
const CLOCK_SKEW_MILLISECONDS = 60 * 1000;
// RFC 5280's upper bound for a commonName.
const MAX_COMMON_NAME_LENGTH = 64;

export type SelfSignedCertificateOptions = {
  commonName?: string;
  names: SanEntry[];
  keyType: KeyType;
  validityDays: number;
  now?: Date;
};

export type CertificateWithPrivateKey = { certificatePem: string; privateKeyPem: string };

const SIGNING_ALGORITHMS: Record<KeyType, Algorithm & { hash: string }> = {
  "ecdsa-p256": { name: "ECDSA", hash: "SHA-256" },
  "ecdsa-p384": { name: "ECDSA", hash: "SHA-384" },
  "rsa-2048": { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
  "rsa-4096": { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
};

// 16 random bytes with the top bit clear keeps the DER INTEGER positive and within RFC 5280's 20 octets.
function randomSerialNumberHex(): string {
  const bytes = globalThis.crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = bytes[0]! & 0x7f || 0x01;
  return Buffer.from(bytes).toString("hex");
}

export async function createSelfSignedCertificate(
  options: SelfSignedCertificateOptions,
): Promise<CertificateWithPrivateKey> {
  const { names, keyType, validityDays } = options;
  if (names.length === 0) throw new Error("createSelfSignedCertificate needs at least one subject alternative name");
  if (!(validityDays > 0)) throw new Error("createSelfSignedCertificate needs validityDays greater than zero");

  const x509 = configuredX509();
  const now = options.now ?? new Date();
  const commonName = (options.commonName ?? names[0]!.value).slice(0, MAX_COMMON_NAME_LENGTH);
  const keys = await generateKeyPair(keyType);
  const keyUsages = isRsaKeyType(keyType)
    ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
    : x509.KeyUsageFlags.digitalSignature;

  const certificate = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialNumberHex(),
    name: [{ CN: [commonName] }],
    notBefore: new Date(now.getTime() - CLOCK_SKEW_MILLISECONDS),
    notAfter: new Date(now.getTime() + validityDays * MILLISECONDS_PER_DAY),
    keys,
    signingAlgorithm: SIGNING_ALGORITHMS[keyType],
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(keyUsages, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(
        names.map((entry) => ({ type: entry.type, value: entry.value })),
        false,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });

  return {
    certificatePem: `${certificate.toString("pem").replace(/\r\n/g, "\n").trimEnd()}\n`,
    privateKeyPem: await exportPrivateKeyPem(keys.privateKey),
  };
}
