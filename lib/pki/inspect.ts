import { X509Certificate } from "node:crypto";
import { AppError } from "../errors";
import type { KeyType } from "./keys";
import { normaliseIpAddress, type SanEntry } from "./names";

export type CertificateFacts = {
  subject: string;
  issuer: string;
  /** Uppercase hex, colon-separated pairs. */
  serialNumber: string;
  /** Uppercase hex with colons, exactly as `openssl x509 -noout -fingerprint -sha256` prints it after the "=". */
  fingerprintSha256: string;
  notBefore: Date;
  notAfter: Date;
  subjectAltNames: SanEntry[];
  keyType: KeyType | "other";
  selfSigned: boolean;
};

const PEM_CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/g;

export function splitPemBlocks(text: string): string[] {
  return [...text.matchAll(PEM_CERTIFICATE_BLOCK)].map((match) => {
    const bodyLines = match[1]!
      .split(/\r?\n|\r/)
      .map((line) => line.trim())
      .filter((line) => line !== "");
    return ["-----BEGIN CERTIFICATE-----", ...bodyLines, "-----END CERTIFICATE-----", ""].join("\n");
  });
}

// Node separates entries with ", " and JSON-quotes any value that itself contains a comma, quote or backslash.
function splitNodeSubjectAltName(text: string): string[] {
  const items: string[] = [];
  let current = "";
  let inQuotes = false;
  for (let index = 0; index < text.length; index++) {
    const character = text[index]!;
    if (inQuotes) {
      current += character;
      if (character === "\\") current += text[++index] ?? "";
      else if (character === '"') inQuotes = false;
    } else if (character === '"') {
      current += character;
      inQuotes = true;
    } else if (character === "," && text[index + 1] === " ") {
      items.push(current);
      current = "";
      index++;
    } else {
      current += character;
    }
  }
  if (current !== "") items.push(current);
  return items;
}

function unquoteNodeValue(value: string): string {
  return value.startsWith('"') ? (JSON.parse(value) as string) : value;
}

function parseNodeSubjectAltName(text: string | undefined): SanEntry[] {
  if (!text) return [];
  const entries: SanEntry[] = [];
  for (const item of splitNodeSubjectAltName(text)) {
    if (item.startsWith("DNS:")) {
      entries.push({ type: "dns", value: unquoteNodeValue(item.slice("DNS:".length)) });
    } else if (item.startsWith("IP Address:")) {
      const address = unquoteNodeValue(item.slice("IP Address:".length));
      entries.push({ type: "ip", value: normaliseIpAddress(address) ?? address });
    }
  }
  return entries;
}

function describeKeyType(cert: X509Certificate): KeyType | "other" {
  const { asymmetricKeyType, asymmetricKeyDetails } = cert.publicKey;
  if (asymmetricKeyType === "ec") {
    if (asymmetricKeyDetails?.namedCurve === "prime256v1") return "ecdsa-p256";
    if (asymmetricKeyDetails?.namedCurve === "secp384r1") return "ecdsa-p384";
  }
  if (asymmetricKeyType === "rsa") {
    if (asymmetricKeyDetails?.modulusLength === 2048) return "rsa-2048";
    if (asymmetricKeyDetails?.modulusLength === 4096) return "rsa-4096";
  }
  return "other";
}

function formatSerialNumber(hex: string): string {
  const evenLengthHex = hex.length % 2 === 1 ? `0${hex}` : hex;
  return (evenLengthHex.toUpperCase().match(/../g) ?? []).join(":");
}

function formatDistinguishedName(multiline: string): string {
  return multiline.split("\n").filter((part) => part !== "").join(", ");
}

export function inspectCertificatePem(pem: string): CertificateFacts {
  const firstBlock = splitPemBlocks(pem)[0];
  if (firstBlock === undefined) {
    throw new AppError(
      "validation_failed",
      "no certificate found; paste a PEM certificate starting with -----BEGIN CERTIFICATE-----",
    );
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(firstBlock);
  } catch {
    throw new AppError(
      "validation_failed",
      "the certificate could not be read; check that the PEM block was copied whole, with no lines missing",
    );
  }
  return {
    subject: formatDistinguishedName(cert.subject),
    issuer: formatDistinguishedName(cert.issuer),
    serialNumber: formatSerialNumber(cert.serialNumber),
    fingerprintSha256: cert.fingerprint256,
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    subjectAltNames: parseNodeSubjectAltName(cert.subjectAltName),
    keyType: describeKeyType(cert),
    // checkIssued(cert) would be false for any self-signed leaf, since OpenSSL also demands keyCertSign of an issuer.
    selfSigned: cert.subject === cert.issuer && cert.verify(cert.publicKey),
  };
}
