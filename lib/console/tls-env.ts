import fs from "node:fs";
import type { Config } from "../config";
import { AppError } from "../errors";
import { inspectCertificatePem } from "../pki/inspect";
import { parseSubjectAltName } from "../pki/names";
import { validateUpload } from "../pki/upload";
import { checkTlsMode } from "./http";
import type { ServedCertificate } from "./tls-status";

// What can be checked about the console's TLS before anything starts: light enough for the CLI to run
// before it looks for the build (no ACME, no database).

/** A problem that stops the console at start (exit code 2, the message, no stack). */
export class ConsoleTlsStartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ConsoleTlsStartupError";
  }
}

export type TlsMaterial = { chainPem: string; keyPem: string; served: ServedCertificate };

export function describe(pem: string, kind: ServedCertificate["kind"], trusted: boolean): ServedCertificate {
  const facts = inspectCertificatePem(pem);
  return {
    kind,
    subject: facts.subject,
    issuer: facts.issuer,
    names: facts.subjectAltNames.map((n) => n.value),
    notBefore: facts.notBefore.toISOString(),
    notAfter: facts.notAfter.toISOString(),
    fingerprintSha256: facts.fingerprintSha256,
    // A self-signed certificate is never trusted, whatever its source (e.g. provided files).
    trusted: trusted && !facts.selfSigned,
  };
}

// ---------------------------------------------------------------------------------------------
// Checks that need no database: run by the CLI before it looks for the build, and by the console.

function readTlsFile(file: string, variable: string): string {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new ConsoleTlsStartupError(`${variable}=${file}: the file does not exist; check the path (it is read by the console process, inside its container if any)`);
    if (code === "EACCES" || code === "EPERM") throw new ConsoleTlsStartupError(`${variable}=${file}: permission denied; let the user running Portcullis read the file (e.g. chmod 640 and the right group)`);
    if (code === "EISDIR") throw new ConsoleTlsStartupError(`${variable}=${file}: this is a directory; point the variable at the PEM file itself`);
    throw new ConsoleTlsStartupError(`${variable}=${file}: the file cannot be read (${code ?? "unknown error"})`);
  }
  if (!/-----BEGIN [A-Z0-9 ]+-----/.test(text)) {
    throw new ConsoleTlsStartupError(`${variable}=${file}: not a PEM file (no -----BEGIN …----- block); give the PEM ${variable === "PORTCULLIS_TLS_KEY" ? "private key" : "certificate (fullchain.pem)"}, converting a DER file with openssl first`);
  }
  return text;
}

/** Reads and checks the provided certificate and key files; the error names the file and the fix. */
export function loadProvidedFiles(certFile: string, keyFile: string, now: Date = new Date()): TlsMaterial {
  const certificatePem = readTlsFile(certFile, "PORTCULLIS_TLS_CERT");
  const keyPem = readTlsFile(keyFile, "PORTCULLIS_TLS_KEY");
  try {
    const v = validateUpload({ kind: "pem", certificatePem, keyPem }, now);
    return { chainPem: v.chainPem, keyPem: v.privateKeyPem, served: describe(v.leafPem, "provided", true) };
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    const fields = err.fieldErrors ?? {};
    const parts: string[] = [];
    for (const [field, messages] of Object.entries(fields)) {
      const where = field === "key" || field === "passphrase" ? `PORTCULLIS_TLS_KEY=${keyFile}` : `PORTCULLIS_TLS_CERT=${certFile}`;
      for (const m of messages) parts.push(`${where}: ${m}`);
    }
    throw new ConsoleTlsStartupError(parts.length ? parts.join("; ") : `PORTCULLIS_TLS_CERT=${certFile}: ${err.message}`);
  }
}

/**
 * What can be said about the TLS settings from the environment alone. The CLI runs this before it
 * looks for the build, so a refusal needs neither a build nor a database.
 */
export function checkTlsEnvironment(config: Config, now: Date = new Date()): { ok: true } | { ok: false; message: string } {
  const { tls: t } = config;
  for (const entry of t.sans) {
    const parsed = parseSubjectAltName(entry);
    if (!parsed.ok) return { ok: false, message: `PORTCULLIS_TLS_SANS: "${entry}" is not a DNS name or IP address (${parsed.message}); list names separated by commas, like console.example.com,10.0.0.5` };
  }
  if (Boolean(t.certFile) !== Boolean(t.keyFile)) {
    const missing = t.certFile ? "PORTCULLIS_TLS_KEY" : "PORTCULLIS_TLS_CERT";
    return { ok: false, message: `${missing} is not set: set both PORTCULLIS_TLS_CERT and PORTCULLIS_TLS_KEY (the certificate chain and its private key), or neither` };
  }
  if (!t.modeFromEnv) return { ok: true };
  const modeCheck = checkTlsMode(config);
  if (!modeCheck.ok) return modeCheck;
  if (t.mode === "provided" && t.certFile && t.keyFile) {
    try {
      loadProvidedFiles(t.certFile, t.keyFile, now);
    } catch (err) {
      if (err instanceof ConsoleTlsStartupError) return { ok: false, message: `${err.message}. Fix the file and start again, or choose another PORTCULLIS_TLS_MODE (auto serves a local-CA certificate).` };
      throw err;
    }
  }
  return { ok: true };
}

