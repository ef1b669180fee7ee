import { createPrivateKey, X509Certificate, type KeyObject } from "node:crypto";
import forge from "node-forge";
import { AppError } from "../errors";
import { inspectCertificatePem, type CertificateFacts } from "./inspect";
import { toPem } from "./keys";

export type UploadInput =
  | { kind: "pem"; certificatePem: string; keyPem: string; chainPem?: string; passphrase?: string }
  | { kind: "pkcs12"; data: Buffer; password: string };

export type ValidatedUpload = {
  leafPem: string;
  /** Leaf first, then each issuer in order, without a trailing self-signed root: what a server sends. */
  chainPem: string;
  /** Unencrypted PKCS#8. */
  privateKeyPem: string;
  facts: CertificateFacts;
  keyType: string;
  warnings: string[];
};

export type UploadField = "certificate" | "key" | "chain" | "passphrase" | "file" | "password";

type Problem = { field: UploadField; message: string };

type SourcedCertificate = { certificate: X509Certificate; field: UploadField; position: number };

type PemBlock = { label: string; text: string; headers: string[]; base64: string };

const MEBIBYTE = 1024 * 1024;
const MAX_INPUT_BYTES = MEBIBYTE;
const EXPIRY_WARNING_DAYS = 30;
const MILLISECONDS_PER_DAY = 86_400_000;
const MAX_SHOWN_TEXT_LENGTH = 100;
// A chain is a leaf and a few intermediates; ordering is quadratic, so a megabyte of certificates is refused.
const MAX_CERTIFICATES = 20;
// node-forge derives keys in plain JavaScript (about 0.5 s per 100,000 rounds) and would obey any count a
// file asks for; OpenSSL, Windows and Java write 2,000 to 10,000.
const MAX_KDF_ROUNDS_PER_DERIVATION = 100_000;
const MAX_KDF_ROUNDS_PER_FILE = 400_000;

const UNREADABLE_UPLOAD =
  "the upload could not be checked; copy the certificate and key again from the files your CA gave you";
const DER_CERTIFICATE_ADVICE =
  "this looks like a DER (binary) file; convert it with `openssl x509 -inform der -in cert.der -out cert.pem` (a .p12 or .pfx file is uploaded as PKCS#12 instead)";
const PKCS12_EXPORT_COMMAND = "`openssl pkcs12 -export -in fullchain.pem -inkey key.pem -out bundle.p12`";
const MISSING_KEY = "a certificate without its private key cannot be served; add the key";
const WRONG_PKCS12_PASSWORD = "the password does not open this PKCS#12 file";

// Labels are bounded and dash-free so that a megabyte of dashes cannot make the scan quadratic.
const PEM_MARKER = /-----(BEGIN|END) ([^\r\n-]{1,80})-----/g;
const PRIVATE_KEY_LABELS = new Set([
  "PRIVATE KEY",
  "ENCRYPTED PRIVATE KEY",
  "RSA PRIVATE KEY",
  "EC PRIVATE KEY",
  "DSA PRIVATE KEY",
]);
// Control characters and bidirectional overrides, which would garble or disguise a name quoted back to the user.
const UNPRINTABLE_CHARACTER = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069\ufffd]/g;
// Characters that never appear in text a person pastes, but do in a binary file read as text.
const BINARY_CHARACTER = /[\u0000-\u0008\u000e-\u001a\u001c-\u001f\u007f\ufffd]/;

const EC_KEY_TYPES: Record<string, string> = {
  prime256v1: "ecdsa-p256",
  secp384r1: "ecdsa-p384",
  secp521r1: "ecdsa-p521",
};

export function validateUpload(input: UploadInput, now: Date = new Date()): ValidatedUpload {
  try {
    return input.kind === "pkcs12" ? validatePkcs12Upload(input.data, input.password, now) : validatePemUpload(input, now);
  } catch (error) {
    if (error instanceof AppError) throw error;
    // A last line of defence: whatever a parsing library throws must never reach the user.
    refuse([{ field: input.kind === "pkcs12" ? "file" : "certificate", message: UNREADABLE_UPLOAD }]);
  }
}

function refuse(problems: Problem[]): never {
  const fieldErrors: Record<string, string[]> = {};
  for (const { field, message } of problems) (fieldErrors[field] ??= []).push(message);
  const summary =
    problems.length === 1
      ? problems[0]!.message
      : problems.map(({ field, message }) => `${field}: ${message}`).join("; ");
  throw new AppError("validation_failed", summary, fieldErrors);
}

function formatCount(count: number): string {
  return count.toLocaleString("en-US");
}

function describeSize(bytes: number): string {
  return bytes < 1.1 * MEBIBYTE ? `${formatCount(bytes)} bytes` : `${(bytes / MEBIBYTE).toFixed(1)} MiB`;
}

function sizeProblem(field: UploadField, bytes: number): Problem | undefined {
  if (bytes <= MAX_INPUT_BYTES) return undefined;
  return {
    field,
    message: `the ${field} is ${describeSize(bytes)}; a certificate file is at most 1 MiB, so check that you chose the right file`,
  };
}

function shown(text: string): string {
  const printable = text.replace(UNPRINTABLE_CHARACTER, "?");
  return printable.length > MAX_SHOWN_TEXT_LENGTH ? `${printable.slice(0, MAX_SHOWN_TEXT_LENGTH - 1)}…` : printable;
}

function subjectOf(certificate: X509Certificate): string {
  const subject = certificate.subject.split("\n").filter((part) => part !== "").join(", ");
  return subject === "" ? "no subject" : shown(subject);
}

function describeCertificate(source: SourcedCertificate): string {
  const noun = source.field === "chain" ? "chain certificate" : "certificate";
  const place = source.field === "file" ? " in the file" : "";
  return `${noun} ${source.position} (${subjectOf(source.certificate)})${place}`;
}

function formatDate(date: Date): string {
  return Number.isNaN(date.getTime()) ? "an unreadable date" : date.toISOString().slice(0, 10);
}

function formatDateTime(date: Date): string {
  return Number.isNaN(date.getTime()) ? "an unreadable date" : `${date.toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function plural(count: number, unit: string): string {
  return `${count} ${unit}${count === 1 ? "" : "s"}`;
}

function notBeforeOf(certificate: X509Certificate): Date {
  return new Date(certificate.validFrom);
}

function notAfterOf(certificate: X509Certificate): Date {
  return new Date(certificate.validTo);
}

function isSignedBy(certificate: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return certificate.verify(issuer.publicKey);
  } catch {
    return false;
  }
}

function isSelfSigned(certificate: X509Certificate): boolean {
  return certificate.subject === certificate.issuer && isSignedBy(certificate, certificate);
}

function matchesPrivateKey(certificate: X509Certificate, key: KeyObject): boolean {
  try {
    return certificate.checkPrivateKey(key);
  } catch {
    return false;
  }
}

function readPemBlocks(text: string): { blocks: PemBlock[]; problems: string[] } {
  const blocks: PemBlock[] = [];
  const problems: string[] = [];
  let open: { label: string; start: number; bodyStart: number; number: number } | undefined;
  let blockNumber = 0;
  for (const match of text.matchAll(PEM_MARKER)) {
    const [marker, kind, label = ""] = match;
    const index = match.index!;
    if (kind === "BEGIN") {
      if (open) problems.push(missingEndLine(open.number, open.label));
      open = { label, start: index, bodyStart: index + marker.length, number: ++blockNumber };
      continue;
    }
    if (!open) {
      problems.push(
        `an -----END ${shown(label)}----- line has no -----BEGIN ${shown(label)}----- line before it; copy the whole block, from its BEGIN line to its END line`,
      );
    } else if (label !== open.label) {
      problems.push(
        `block ${open.number} starts with -----BEGIN ${shown(open.label)}----- but ends with -----END ${shown(label)}-----; copy it again without changes`,
      );
    } else {
      const blockText = text.slice(open.start, index + marker.length);
      blocks.push(parseBlockBody(label, blockText, text.slice(open.bodyStart, index)));
    }
    open = undefined;
  }
  if (open) problems.push(missingEndLine(open.number, open.label));
  return { blocks, problems };
}

function missingEndLine(blockNumber: number, label: string): string {
  return `block ${blockNumber} has no -----END ${shown(label)}----- line; it was cut off, so copy the whole block again`;
}

// RFC 1421 headers (as in a legacy encrypted key's "Proc-Type: 4,ENCRYPTED") run up to the first blank line.
function parseBlockBody(label: string, text: string, body: string): PemBlock {
  const lines = body.split(/\r\n|\n|\r/).map((line) => line.trim());
  let lineIndex = 0;
  while (lineIndex < lines.length && lines[lineIndex] === "") lineIndex++;
  const headers: string[] = [];
  if (lines[lineIndex]?.includes(":")) {
    while (lineIndex < lines.length && lines[lineIndex] !== "") headers.push(lines[lineIndex++]!);
  }
  return { label, text, headers, base64: lines.slice(lineIndex).join("").replace(/\s+/g, "") };
}

function decodeBase64Strictly(text: string): Buffer | undefined {
  if (text.length === 0 || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(text)) return undefined;
  return Buffer.from(text, "base64");
}

function parseCertificateDer(der: Buffer): X509Certificate | undefined {
  try {
    const certificate = new X509Certificate(der);
    // OpenSSL ignores bytes after the certificate; a block with extra bytes was altered.
    return certificate.raw.length === der.length ? certificate : undefined;
  } catch {
    return undefined;
  }
}

function describeForeignBlock(label: string, expected: "certificate" | "key"): string {
  switch (label) {
    case "CERTIFICATE REQUEST":
    case "NEW CERTIFICATE REQUEST":
      return "this is a certificate signing request (CSR), not a certificate; upload the certificate your CA issued for it";
    case "PUBLIC KEY":
    case "RSA PUBLIC KEY":
      return expected === "key"
        ? "this is a public key; the private key is needed, the one created together with the certificate request"
        : "this is a public key, not a certificate; paste the certificate your CA issued";
    case "PKCS7":
      return "this is a PKCS#7 bundle; convert it with `openssl pkcs7 -print_certs -in bundle.p7b -out fullchain.pem` and paste the result";
    case "TRUSTED CERTIFICATE":
      return "this is an OpenSSL trusted certificate; convert it with `openssl x509 -in trusted.pem -out cert.pem` and paste the result";
    case "OPENSSH PRIVATE KEY":
      return "this is an OpenSSH key, which cannot serve TLS; paste the private key created together with the certificate request";
    case "X509 CRL":
      return "this is a certificate revocation list, not a certificate; paste the certificate your CA issued";
    default:
      return expected === "key"
        ? `this holds a -----BEGIN ${shown(label)}----- block, which is not a private key; paste the key that starts with -----BEGIN PRIVATE KEY-----`
        : `this holds a -----BEGIN ${shown(label)}----- block, which is not a certificate; paste only blocks that start with -----BEGIN CERTIFICATE-----`;
  }
}

function describeTextWithoutBlocks(text: string, expected: "certificate" | "key"): string {
  if (BINARY_CHARACTER.test(text)) {
    if (text.startsWith("0")) {
      return expected === "key"
        ? "this looks like a DER (binary) key file; convert it with `openssl pkey -inform der -in key.der -out key.pem`"
        : DER_CERTIFICATE_ADVICE;
    }
    return `this is a binary file, not PEM text; choose the ${expected === "key" ? "key" : "certificate"} file that starts with -----BEGIN`;
  }
  const compact = text.replace(/\s+/g, "");
  if (/^[A-Za-z0-9+/]+={0,2}$/.test(compact) && compact.startsWith("MI")) {
    const markers = expected === "key" ? "-----BEGIN PRIVATE KEY----- and -----END PRIVATE KEY-----" : "-----BEGIN CERTIFICATE----- and -----END CERTIFICATE-----";
    return `the BEGIN and END lines are missing; paste the whole block, including ${markers}`;
  }
  return expected === "key"
    ? "no private key found; paste the key in PEM form, starting with -----BEGIN PRIVATE KEY----- (or RSA PRIVATE KEY, EC PRIVATE KEY)"
    : "no -----BEGIN CERTIFICATE----- block found; paste the certificate in PEM form, including its BEGIN and END lines";
}

function readCertificateField(text: string, field: "certificate" | "chain", problems: Problem[]): SourcedCertificate[] {
  const report = (message: string) => problems.push({ field, message });
  const { blocks, problems: structureProblems } = readPemBlocks(text);
  structureProblems.forEach(report);
  if (blocks.length === 0) {
    if (structureProblems.length === 0) report(describeTextWithoutBlocks(text.trim(), "certificate"));
    return [];
  }

  const certificates: SourcedCertificate[] = [];
  let position = 0;
  for (const block of blocks) {
    if (PRIVATE_KEY_LABELS.has(block.label)) {
      report(
        `this holds a private key (-----BEGIN ${block.label}-----); move it to the key field, since the ${field} field is for certificates only`,
      );
      continue;
    }
    if (block.label !== "CERTIFICATE") {
      report(describeForeignBlock(block.label, "certificate"));
      continue;
    }
    position++;
    const der = block.headers.length === 0 ? decodeBase64Strictly(block.base64) : undefined;
    const certificate = der && parseCertificateDer(der);
    if (!certificate) {
      report(
        `block ${position} is not a valid certificate; it was changed or cut off while copying, so copy it again from -----BEGIN CERTIFICATE----- to -----END CERTIFICATE-----`,
      );
      continue;
    }
    certificates.push({ certificate, field, position });
  }
  return certificates;
}

function readKeyField(text: string, passphrase: string | undefined, problems: Problem[]): KeyObject | undefined {
  const problemsBefore = problems.length;
  const report = (message: string) => problems.push({ field: "key", message });
  if (text.trim() === "") {
    report(MISSING_KEY);
    return undefined;
  }
  const { blocks, problems: structureProblems } = readPemBlocks(text);
  structureProblems.forEach(report);
  if (blocks.length === 0) {
    if (structureProblems.length === 0) report(describeTextWithoutBlocks(text.trim(), "key"));
    return undefined;
  }

  const keyBlocks = blocks.filter((block) => PRIVATE_KEY_LABELS.has(block.label));
  const certificateCount = blocks.filter((block) => block.label === "CERTIFICATE").length;
  if (certificateCount > 0) {
    report(
      keyBlocks.length === 0
        ? "this is a certificate, not a private key; paste the certificate in the certificate field and its private key here"
        : "this holds certificates as well as the private key; move the certificates to the certificate field",
    );
  }
  // "openssl ecparam -genkey" writes the curve parameters before the key; they say nothing the key does not.
  for (const block of blocks) {
    if (!PRIVATE_KEY_LABELS.has(block.label) && block.label !== "CERTIFICATE" && block.label !== "EC PARAMETERS") {
      report(describeForeignBlock(block.label, "key"));
    }
  }
  if (keyBlocks.length === 0) {
    if (certificateCount === 0 && problems.length === problemsBefore) report(describeTextWithoutBlocks("", "key"));
    return undefined;
  }
  if (keyBlocks.length > 1) {
    report(`this holds ${keyBlocks.length} private keys; paste only the one that belongs to the certificate`);
    return undefined;
  }

  const keyBlock = keyBlocks[0]!;
  const encrypted =
    keyBlock.label === "ENCRYPTED PRIVATE KEY" ||
    keyBlock.headers.some((header) => /^Proc-Type:\s*4\s*,\s*ENCRYPTED/i.test(header));
  if (encrypted && !passphrase) {
    problems.push({ field: "passphrase", message: "this key is encrypted; enter its passphrase" });
    return undefined;
  }
  try {
    return createPrivateKey({ key: keyBlock.text, format: "pem", passphrase: encrypted ? passphrase : undefined });
  } catch {
    if (encrypted) {
      problems.push({ field: "passphrase", message: "the passphrase does not decrypt this key; check it and enter it again" });
    } else {
      report(
        `the private key could not be read; it was changed or cut off while copying, so copy it again from -----BEGIN ${keyBlock.label}----- to -----END ${keyBlock.label}-----`,
      );
    }
    return undefined;
  }
}

function validatePemUpload(input: Extract<UploadInput, { kind: "pem" }>, now: Date): ValidatedUpload {
  const chainText = input.chainPem ?? "";
  const sizeProblems = [
    sizeProblem("certificate", Buffer.byteLength(input.certificatePem)),
    sizeProblem("key", Buffer.byteLength(input.keyPem)),
    sizeProblem("chain", Buffer.byteLength(chainText)),
  ].filter((problem) => problem !== undefined);
  if (sizeProblems.length > 0) refuse(sizeProblems);

  const problems: Problem[] = [];
  const certificates: SourcedCertificate[] = [];
  if (input.certificatePem.trim() === "") {
    problems.push({ field: "certificate", message: "paste the certificate PEM, or choose a file" });
  } else {
    certificates.push(...readCertificateField(input.certificatePem, "certificate", problems));
  }
  if (chainText.trim() !== "") certificates.push(...readCertificateField(chainText, "chain", problems));
  const key = readKeyField(input.keyPem, input.passphrase, problems);
  if (problems.length > 0 || !key) refuse(problems);
  const tooMany = tooManyCertificates(certificates.length, "certificate");
  if (tooMany) refuse([tooMany]);

  return assembleUpload(certificates, key, "key", now);
}

function tooManyCertificates(count: number, field: UploadField): Problem | undefined {
  if (count <= MAX_CERTIFICATES) return undefined;
  return {
    field,
    message: `${count} certificates were given; a chain is the leaf and a few intermediates, so upload only those (at most ${MAX_CERTIFICATES})`,
  };
}

function withoutDuplicates(certificates: SourcedCertificate[]): SourcedCertificate[] {
  const unique: SourcedCertificate[] = [];
  for (const candidate of certificates) {
    if (!unique.some((kept) => kept.certificate.raw.equals(candidate.certificate.raw))) unique.push(candidate);
  }
  return unique;
}

function findLeaf(
  certificates: SourcedCertificate[],
  key: KeyObject,
  keyField: UploadField,
): SourcedCertificate | Problem {
  const matching = certificates.filter((source) => matchesPrivateKey(source.certificate, key));
  const serverCertificates = certificates.filter((source) => !source.certificate.ca);
  const likelyLeaf = serverCertificates[0] ?? certificates[0]!;
  if (matching.length === 0) {
    return {
      field: keyField,
      message: `the private key does not belong to any of the certificates (leaf ${subjectOf(likelyLeaf.certificate)}); use the key that was created together with this certificate's request`,
    };
  }
  if (matching.length > 1) {
    return {
      field: matching[1]!.field,
      message: `${describeCertificate(matching[0]!)} and ${describeCertificate(matching[1]!)} both belong to this private key; keep only the current one`,
    };
  }
  const leaf = matching[0]!;
  if (leaf.certificate.ca && serverCertificates.length > 0) {
    return {
      field: keyField,
      message: `the private key belongs to the CA ${describeCertificate(leaf)}, not to the server certificate (${subjectOf(likelyLeaf.certificate)}); use the key that was created together with the server certificate's request`,
    };
  }
  return leaf;
}

function orderChain(leaf: SourcedCertificate, others: SourcedCertificate[], problems: Problem[]): SourcedCertificate[] {
  const ordered = [leaf];
  const remaining = [...others];
  let current = leaf;
  while (!isSelfSigned(current.certificate)) {
    const namedIssuers = remaining.filter((candidate) => current.certificate.checkIssued(candidate.certificate));
    if (namedIssuers.length === 0) break;
    const issuer = namedIssuers.find((candidate) => isSignedBy(current.certificate, candidate.certificate));
    if (!issuer) {
      const impostor = namedIssuers[0]!;
      problems.push({
        field: current.field,
        message: `the signature on ${describeCertificate(current)} does not verify with the key of ${describeCertificate(impostor)}, though the names match; the chain mixes certificates from different CAs, so download it again from your CA`,
      });
      for (const rejected of namedIssuers) remaining.splice(remaining.indexOf(rejected), 1);
      return ordered;
    }
    ordered.push(issuer);
    remaining.splice(remaining.indexOf(issuer), 1);
    current = issuer;
  }
  for (const stray of remaining) {
    problems.push({
      field: stray.field,
      message: `${describeCertificate(stray)} does not sign any other certificate in the chain; remove it or add the missing intermediate`,
    });
  }
  return ordered;
}

function checkValidity(chain: SourcedCertificate[], now: Date, problems: Problem[], warnings: string[]): void {
  const [leaf, ...intermediates] = chain;
  const leafNotAfter = notAfterOf(leaf!.certificate);
  const leafNotBefore = notBeforeOf(leaf!.certificate);
  if (leafNotAfter < now) {
    problems.push({
      field: leaf!.field,
      message: `the certificate expired on ${formatDate(leafNotAfter)}; renew it at your CA before uploading`,
    });
  } else if (leafNotBefore > now) {
    problems.push({
      field: leaf!.field,
      message: `the certificate is not valid until ${formatDateTime(leafNotBefore)}; upload it once that time has passed, or check the clock of the machine that issued it`,
    });
  } else {
    const warning = expiryWarning(leafNotAfter, now, "", "renew it soon");
    if (warning) warnings.push(warning);
  }

  for (const intermediate of intermediates) {
    const notAfter = notAfterOf(intermediate.certificate);
    const notBefore = notBeforeOf(intermediate.certificate);
    if (notAfter < now) {
      problems.push({
        field: intermediate.field,
        message: `the intermediate ${describeCertificate(intermediate)} expired on ${formatDate(notAfter)}; download the current chain from your CA`,
      });
    } else if (notBefore > now) {
      problems.push({
        field: intermediate.field,
        message: `the intermediate ${describeCertificate(intermediate)} is not valid until ${formatDateTime(notBefore)}; download the current chain from your CA`,
      });
    } else {
      const warning = expiryWarning(notAfter, now, `the intermediate ${subjectOf(intermediate.certificate)} `, "download the current chain from your CA");
      if (warning) warnings.push(warning);
    }
  }
}

function expiryWarning(notAfter: Date, now: Date, subject: string, advice: string): string | undefined {
  const daysLeft = Math.floor((notAfter.getTime() - now.getTime()) / MILLISECONDS_PER_DAY);
  if (daysLeft >= EXPIRY_WARNING_DAYS) return undefined;
  const when = daysLeft === 0 ? "in less than a day" : `in ${plural(daysLeft, "day")}`;
  return `${subject}expires ${when} (${formatDate(notAfter)}): ${advice}`;
}

function describePrivateKeyType(key: KeyObject): string {
  const details = key.asymmetricKeyDetails;
  switch (key.asymmetricKeyType) {
    case "ec":
      return EC_KEY_TYPES[details?.namedCurve ?? ""] ?? `ecdsa-${details?.namedCurve ?? "unknown-curve"}`;
    case "rsa":
    case "rsa-pss":
    case "dsa":
      return `${key.asymmetricKeyType}-${details?.modulusLength ?? "unknown-size"}`;
    default:
      return key.asymmetricKeyType ?? "unknown";
  }
}

function chainWarnings(chain: SourcedCertificate[], key: KeyObject, facts: CertificateFacts): string[] {
  const warnings: string[] = [];
  const leaf = chain[0]!.certificate;
  if (chain.length === 1 && !isSelfSigned(leaf)) {
    warnings.push(
      `only the leaf certificate was given; clients that do not already hold its issuer (${shown(leaf.issuer.split("\n").join(", "))}) will fail to connect, so add the intermediate certificates from your CA (fullchain.pem)`,
    );
  }
  if (facts.subjectAltNames.length === 0) {
    warnings.push("the certificate lists no DNS names or IP addresses (subjectAltName); browsers will refuse it for every site");
  }
  const modulusLength = key.asymmetricKeyDetails?.modulusLength;
  if (key.asymmetricKeyType === "rsa" && modulusLength !== undefined && modulusLength < 2048) {
    warnings.push(`the RSA key has only ${modulusLength} bits; browsers refuse keys under 2048 bits, so issue a new certificate with a stronger key`);
  }
  return warnings;
}

function assembleUpload(
  certificates: SourcedCertificate[],
  key: KeyObject,
  keyField: UploadField,
  now: Date,
): ValidatedUpload {
  const unique = withoutDuplicates(certificates);
  if (unique.length === 0) refuse([{ field: keyField === "file" ? "file" : "certificate", message: "paste the certificate PEM, or choose a file" }]);
  const leafOrProblem = findLeaf(unique, key, keyField);
  if ("message" in leafOrProblem) refuse([leafOrProblem]);
  const leaf = leafOrProblem;

  const problems: Problem[] = [];
  const warnings: string[] = [];
  const ordered = orderChain(
    leaf,
    unique.filter((source) => source !== leaf),
    problems,
  );
  // Clients bring their own roots; sending one only costs bytes in every handshake.
  while (ordered.length > 1 && isSelfSigned(ordered[ordered.length - 1]!.certificate)) ordered.pop();
  checkValidity(ordered, now, problems, warnings);
  if (problems.length > 0) refuse(problems);

  const leafPem = toPem("CERTIFICATE", leaf.certificate.raw);
  const facts = inspectCertificatePem(leafPem);
  return {
    leafPem,
    chainPem: ordered.map((source) => toPem("CERTIFICATE", source.certificate.raw)).join(""),
    privateKeyPem: key.export({ type: "pkcs8", format: "pem" }) as string,
    facts,
    keyType: describePrivateKeyType(key),
    warnings: [...warnings, ...chainWarnings(ordered, key, facts)],
  };
}

function forgeBytesToBuffer(asn1: forge.asn1.Asn1): Buffer {
  return Buffer.from(forge.asn1.toDer(asn1).getBytes(), "binary");
}

class KdfBudgetExceeded extends Error {
  constructor(readonly demand: string) {
    super(`PKCS#12 key derivation asked for ${demand}`);
  }
}

type KeyDerivation = (password: unknown, salt: unknown, ...rest: unknown[]) => unknown;
type ForgeKeyDerivations = {
  pkcs5: { pbkdf2: KeyDerivation };
  pki: { pbe: { generatePkcs12Key: KeyDerivation } };
  pkcs12: { generateKey: KeyDerivation };
};

// node-forge has no limit of its own, so its three key-derivation entry points are metered for the
// duration of one synchronous call and restored afterwards.
function withKdfBudget<T>(run: () => T): T {
  const derivations = forge as unknown as ForgeKeyDerivations;
  const originals = {
    pbkdf2: derivations.pkcs5.pbkdf2,
    generatePkcs12Key: derivations.pki.pbe.generatePkcs12Key,
    generateKey: derivations.pkcs12.generateKey,
  };
  let roundsSpent = 0;
  const metered =
    (derive: KeyDerivation, roundsArgumentIndex: number): KeyDerivation =>
    (...args: unknown[]) => {
      const rounds = Number(args[roundsArgumentIndex]);
      roundsSpent += rounds;
      if (!(rounds <= MAX_KDF_ROUNDS_PER_DERIVATION)) {
        throw new KdfBudgetExceeded(
          `${formatCount(rounds)} rounds of key derivation, more than the ${formatCount(MAX_KDF_ROUNDS_PER_DERIVATION)} Portcullis allows`,
        );
      }
      if (roundsSpent > MAX_KDF_ROUNDS_PER_FILE) {
        throw new KdfBudgetExceeded(
          `more than ${formatCount(MAX_KDF_ROUNDS_PER_FILE)} rounds of key derivation in all, more than Portcullis allows`,
        );
      }
      return derive(...(args as [unknown, unknown, ...unknown[]]));
    };
  derivations.pkcs5.pbkdf2 = metered(originals.pbkdf2, 2);
  derivations.pki.pbe.generatePkcs12Key = metered(originals.generatePkcs12Key, 3);
  derivations.pkcs12.generateKey = metered(originals.generateKey, 3);
  try {
    return run();
  } finally {
    derivations.pkcs5.pbkdf2 = originals.pbkdf2;
    derivations.pki.pbe.generatePkcs12Key = originals.generatePkcs12Key;
    derivations.pkcs12.generateKey = originals.generateKey;
  }
}

function openPkcs12(data: Buffer, password: string): forge.pkcs12.Pkcs12Pfx {
  const notPkcs12 = (): never =>
    refuse([
      {
        field: "file",
        message: `this is not a PKCS#12 (.p12 or .pfx) file, or it is damaged; export one with ${PKCS12_EXPORT_COMMAND}, or upload the PEM files instead`,
      },
    ]);
  let pfx: forge.asn1.Asn1;
  try {
    pfx = forge.asn1.fromDer(data.toString("binary"));
  } catch {
    return notPkcs12();
  }

  const failureOf = (attempt: () => forge.pkcs12.Pkcs12Pfx): string | forge.pkcs12.Pkcs12Pfx => {
    try {
      return withKdfBudget(attempt);
    } catch (error) {
      if (error instanceof KdfBudgetExceeded) {
        refuse([
          {
            field: "file",
            message: `this PKCS#12 file asks for ${error.demand}; export it again with OpenSSL's defaults (${PKCS12_EXPORT_COMMAND}), or upload the PEM files instead`,
          },
        ]);
      }
      return error instanceof Error ? error.message : String(error);
    }
  };
  let opened = failureOf(() => forge.pkcs12.pkcs12FromAsn1(pfx, false, password));
  // node-forge checks the MAC with the password as UTF-16, as OpenSSL does, but feeds PBKDF2 the raw
  // UTF-16 code units where OpenSSL uses UTF-8; so a non-ASCII password that passed the MAC is tried
  // again as UTF-8, with the already verified MAC left out.
  const passedMacButNotDecryption = typeof opened === "string" && /decrypt/i.test(opened);
  if (passedMacButNotDecryption && /[^\x00-\x7f]/.test(password) && Array.isArray(pfx.value)) {
    const pfxWithoutMac = forge.asn1.create(pfx.tagClass, pfx.type, pfx.constructed, pfx.value.slice(0, 2));
    const utf8Password = forge.util.encodeUtf8(password);
    const retried = failureOf(() => forge.pkcs12.pkcs12FromAsn1(pfxWithoutMac, false, utf8Password));
    if (typeof retried !== "string") opened = retried;
  }
  if (typeof opened !== "string") return opened;

  if (/MAC could not be verified|invalid password|wrong password|decrypt/i.test(opened)) {
    refuse([{ field: "password", message: WRONG_PKCS12_PASSWORD }]);
  }
  if (/unsupported/i.test(opened)) {
    refuse([
      {
        field: "file",
        message:
          "this PKCS#12 file is protected with an algorithm Portcullis cannot read; export it again with OpenSSL's default settings or with `openssl pkcs12 -export -legacy …`, or upload the PEM files instead",
      },
    ]);
  }
  return notPkcs12();
}

function bagsOfType(pkcs12: forge.pkcs12.Pkcs12Pfx, bagType: string): forge.pkcs12.Bag[] {
  return pkcs12.getBags({ bagType })[bagType] ?? [];
}

function readPkcs12Key(bag: forge.pkcs12.Bag): KeyObject | undefined {
  try {
    // node-forge only understands RSA keys; for any other kind it hands back the PrivateKeyInfo itself.
    const privateKeyInfo = bag.key ? forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(bag.key)) : bag.asn1;
    return createPrivateKey({ key: forgeBytesToBuffer(privateKeyInfo), format: "der", type: "pkcs8" });
  } catch {
    return undefined;
  }
}

function readPkcs12Certificate(bag: forge.pkcs12.Bag): X509Certificate | undefined {
  try {
    // As with keys, node-forge parses only RSA certificates and keeps the ASN.1 of the others.
    const certificateAsn1 = bag.cert ? forge.pki.certificateToAsn1(bag.cert) : bag.asn1;
    return parseCertificateDer(forgeBytesToBuffer(certificateAsn1));
  } catch {
    return undefined;
  }
}

function validatePkcs12Upload(data: Buffer, password: string, now: Date): ValidatedUpload {
  const tooLarge = sizeProblem("file", data.length);
  if (tooLarge) refuse([tooLarge]);
  if (data.length === 0) refuse([{ field: "file", message: "choose a PKCS#12 (.p12 or .pfx) file" }]);
  if (/^\s*-----BEGIN /.test(data.subarray(0, 64).toString("latin1"))) {
    refuse([
      {
        field: "file",
        message: "this is a PEM text file, not PKCS#12; paste its certificate and private key in the PEM fields instead",
      },
    ]);
  }

  const pkcs12 = openPkcs12(data, password);
  const certificateBags = bagsOfType(pkcs12, forge.pki.oids.certBag);
  const tooMany = tooManyCertificates(certificateBags.length, "file");
  if (tooMany) refuse([tooMany]);
  const problems: Problem[] = [];
  const certificates: SourcedCertificate[] = [];
  for (const [index, bag] of certificateBags.entries()) {
    const certificate = readPkcs12Certificate(bag);
    if (certificate) certificates.push({ certificate, field: "file", position: index + 1 });
    else problems.push({ field: "file", message: `certificate ${index + 1} in the file could not be read; export the file again` });
  }
  const keyBags = [
    ...bagsOfType(pkcs12, forge.pki.oids.pkcs8ShroudedKeyBag),
    ...bagsOfType(pkcs12, forge.pki.oids.keyBag),
  ];
  const keys = keyBags.map(readPkcs12Key);
  if (certificates.length === 0 && problems.length === 0) {
    problems.push({ field: "file", message: `this PKCS#12 file holds no certificate; export it again with ${PKCS12_EXPORT_COMMAND}` });
  }
  if (keyBags.length === 0) {
    problems.push({
      field: "file",
      message: `this PKCS#12 file holds no private key, and a certificate without its private key cannot be served; export it again with the key: ${PKCS12_EXPORT_COMMAND}`,
    });
  } else if (keys.every((key) => key === undefined)) {
    problems.push({
      field: "file",
      message: "the private key in this PKCS#12 file is of a kind Portcullis cannot read; use an RSA, ECDSA or Ed25519 key",
    });
  }
  if (problems.length > 0) refuse(problems);

  const readableKeys = keys.filter((key) => key !== undefined);
  const key =
    readableKeys.find((candidate) => certificates.some((source) => matchesPrivateKey(source.certificate, candidate))) ??
    readableKeys[0]!;
  return assembleUpload(certificates, key, "file", now);
}
