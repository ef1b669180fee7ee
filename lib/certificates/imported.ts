import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { z } from "zod";
import { writeAudit, type Actor } from "../audit";
import type { Keyring } from "../crypto/seal";
import type { Db } from "../db";
import { isUniqueViolation } from "../db/connection";
import { AppError, notFound } from "../errors";
import { recordEvent } from "../events";
import { newId, nowIso } from "../ids";
import { bumpEdgeRevision } from "../listeners/revision";
import { validateUpload, type UploadInput, type ValidatedUpload } from "../pki/upload";
import { getCertificate, IDLE_LIFECYCLE, keyContext, nameTaken, type CertificateDetail } from "./index";

// Certificates that come from elsewhere: uploaded PEM or PKCS#12, and files on disk that another
// tool (certbot, an internal CA) keeps renewing. Every one is validated in full before anything is
// written; a new upload or a changed file becomes a new version, and earlier versions stay.

const MAX_FIELD = 1024 * 1024 + 1;
const nameField = z.string().trim().max(100, "use at most 100 characters").optional().transform((v) => (v ? v : undefined));

export const uploadBodySchema = z.union([
  z.object({
    name: nameField,
    certificatePem: z.string({ error: "paste the certificate PEM" }).max(MAX_FIELD * 2),
    keyPem: z.string({ error: "paste the private key PEM" }).max(MAX_FIELD * 2),
    chainPem: z.string().max(MAX_FIELD * 2).optional(),
    passphrase: z.string().max(1000).optional(),
  }),
  z.object({
    name: nameField,
    pkcs12Base64: z.string({ error: "send the PKCS#12 file base64-encoded" }).max(MAX_FIELD * 2),
    password: z.string().max(1000).default(""),
  }),
]);

/** API and form bodies → the validator's input (PKCS#12 arrives base64-encoded in JSON). */
export function toUploadInput(body: unknown): { name?: string; upload: UploadInput } {
  const parsed = uploadBodySchema.safeParse(body);
  if (!parsed.success) {
    throw new AppError(
      "validation_failed",
      "send either {certificatePem, keyPem, chainPem?, passphrase?} or {pkcs12Base64, password}",
      { certificate: ["paste the certificate and its private key, or choose a PKCS#12 file"] },
    );
  }
  const v = parsed.data;
  if ("pkcs12Base64" in v) {
    const data = Buffer.from(v.pkcs12Base64, "base64");
    return { name: v.name, upload: { kind: "pkcs12", data, password: v.password } };
  }
  return {
    name: v.name,
    upload: { kind: "pem", certificatePem: v.certificatePem, keyPem: v.keyPem, chainPem: v.chainPem, passphrase: v.passphrase || undefined },
  };
}

export type UploadPreview = {
  names: string[];
  subject: string;
  issuer: string;
  notBefore: string;
  notAfter: string;
  fingerprintSha256: string;
  keyType: string;
  chainLength: number;
  warnings: string[];
};

export function previewUpload(validated: ValidatedUpload): UploadPreview {
  return {
    names: namesOf(validated),
    subject: validated.facts.subject,
    issuer: validated.facts.issuer,
    notBefore: validated.facts.notBefore.toISOString(),
    notAfter: validated.facts.notAfter.toISOString(),
    fingerprintSha256: validated.facts.fingerprintSha256,
    keyType: validated.keyType,
    chainLength: (validated.chainPem.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length,
    warnings: validated.warnings,
  };
}

function namesOf(v: ValidatedUpload): string[] {
  const names = v.facts.subjectAltNames.map((s) => s.value);
  if (names.length) return names;
  const cn = /CN=([^,]+)/.exec(v.facts.subject)?.[1];
  return cn ? [cn] : [];
}

function versionColumns(v: ValidatedUpload) {
  return {
    chain_pem: v.chainPem,
    subject: v.facts.subject,
    issuer: v.facts.issuer,
    serial: v.facts.serialNumber,
    fingerprint_sha256: v.facts.fingerprintSha256,
    not_before: v.facts.notBefore.toISOString(),
    not_after: v.facts.notAfter.toISOString(),
  };
}

function versionRow(certificateId: string, version: number, v: ValidatedUpload, sealedKey: string, reason: string, at: string) {
  const { subject: _subject, ...columns } = versionColumns(v);
  return { id: newId("ver"), certificate_id: certificateId, version, ...columns, sealed_key: sealedKey, reason, created_at: at };
}

export async function createImportedCertificate(
  db: Db,
  keyring: Keyring,
  actor: Actor,
  input: { name?: string; upload: UploadInput; file?: { certPath: string; keyPath: string; hash: string } },
  now: Date = new Date(),
): Promise<{ certificate: CertificateDetail; warnings: string[] }> {
  const validated = validateUpload(input.upload, now);
  const names = namesOf(validated);
  const name = input.name ?? names[0] ?? validated.facts.fingerprintSha256.slice(0, 23);
  const id = newId("crt");
  const sealedKey = keyring.seal(validated.privateKeyPem, keyContext(id));
  const at = nowIso(now);
  const source = input.file ? "file" : "upload";
  try {
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto("certificates")
        .values({
          id,
          name,
          source,
          status: "active",
          domains: JSON.stringify(names),
          key_type: validated.keyType,
          validity_days: null,
          ...versionColumns(validated),
          sealed_key: sealedKey,
          ...IDLE_LIFECYCLE,
          renew_reason:
            source === "file"
              ? "kept on disk by another tool: Portcullis reloads the files when they change"
              : "uploaded: renew it at your CA and upload the new version",
          created_by: actor.id,
          created_at: at,
          updated_at: at,
          source_cert_path: input.file?.certPath ?? null,
          source_key_path: input.file?.keyPath ?? null,
          source_hash: input.file?.hash ?? null,
        })
        .execute();
      await trx
        .insertInto("certificate_versions")
        .values(versionRow(id, 1, validated, sealedKey, source === "file" ? "registered from disk" : "uploaded", at))
        .execute();
    });
  } catch (err) {
    if (isUniqueViolation(err)) throw nameTaken(name);
    throw err;
  }
  await bumpEdgeRevision(db);
  await recordEvent(db, { type: "certificate.imported", certificateId: id, message: `certificate "${name}" ${source === "file" ? "registered from disk" : "uploaded"} for ${names.join(", ")}`, detail: { issuer: validated.facts.issuer, fingerprintSha256: validated.facts.fingerprintSha256 } }, now);
  await writeAudit(db, actor, source === "file" ? "certificate.register_file" : "certificate.upload", { type: "certificate", id }, { name, names });
  return { certificate: (await getCertificate(db, id))!, warnings: validated.warnings };
}

/** A new version for an existing certificate; the listeners serve it at the next handshake. */
export async function addCertificateVersion(
  db: Db,
  keyring: Keyring,
  actor: Actor,
  certificateId: string,
  upload: UploadInput,
  reason: string,
  now: Date = new Date(),
  sourceHash?: string,
): Promise<{ certificate: CertificateDetail; warnings: string[] }> {
  const current = await db.selectFrom("certificates").select(["id", "name", "source"]).where("id", "=", certificateId).executeTakeFirst();
  if (!current) throw notFound("that certificate");
  if (current.source === "self_signed" || current.source === "acme") {
    throw new AppError("validation_failed", `certificate "${current.name}" is ${current.source === "acme" ? "renewed by ACME" : "self-signed"}; upload a new certificate instead of a version of it`);
  }
  const validated = validateUpload(upload, now);
  const sealedKey = keyring.seal(validated.privateKeyPem, keyContext(certificateId));
  const at = nowIso(now);
  await db.transaction().execute(async (trx) => {
    const last = await trx.selectFrom("certificate_versions").select((eb) => eb.fn.max("version").as("v")).where("certificate_id", "=", certificateId).executeTakeFirst();
    const version = Number(last?.v ?? 0) + 1;
    await trx
      .updateTable("certificates")
      .set({
        ...versionColumns(validated),
        sealed_key: sealedKey,
        domains: JSON.stringify(namesOf(validated)),
        key_type: validated.keyType,
        status: "active",
        last_error: null,
        updated_at: at,
        ...(sourceHash ? { source_hash: sourceHash } : {}),
      })
      .where("id", "=", certificateId)
      .execute();
    await trx
      .insertInto("certificate_versions")
      .values(versionRow(certificateId, version, validated, sealedKey, reason, at))
      .execute();
  });
  await bumpEdgeRevision(db);
  await recordEvent(db, { type: "certificate.new_version", certificateId, message: `certificate "${current.name}": ${reason}; now serving ${validated.facts.fingerprintSha256.slice(0, 23)}…, valid until ${validated.facts.notAfter.toISOString().slice(0, 10)}`, detail: { fingerprintSha256: validated.facts.fingerprintSha256 } }, now);
  await writeAudit(db, actor, "certificate.new_version", { type: "certificate", id: certificateId }, { reason });
  return { certificate: (await getCertificate(db, certificateId))!, warnings: validated.warnings };
}

// ---------------------------------------------------------------------------------------------
// Files on disk.

const MAX_FILE_BYTES = 1024 * 1024;

export function readCertificateFiles(certPath: string, keyPath: string): { upload: UploadInput; hash: string } {
  const read = (file: string, field: "certificate" | "key") => {
    if (!path.isAbsolute(file)) throw new AppError("validation_failed", `${file} is not an absolute path`, { [field]: ["give the absolute path, like /etc/letsencrypt/live/example.com/fullchain.pem"] });
    try {
      const stat = fs.statSync(file);
      if (!stat.isFile()) throw new AppError("validation_failed", `${file} is not a file`, { [field]: [`${file} is not a file`] });
      if (stat.size > MAX_FILE_BYTES) throw new AppError("validation_failed", `${file} is larger than 1 MiB`, { [field]: [`${file} is larger than 1 MiB; is it the right file?`] });
      return fs.readFileSync(file, "utf8");
    } catch (err) {
      if (err instanceof AppError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? "does not exist" : code === "EACCES" ? "cannot be read (permission denied); let the Portcullis user read it" : `cannot be read (${code})`;
      throw new AppError("validation_failed", `${file} ${why}`, { [field]: [`${file} ${why}`] });
    }
  };
  const certificatePem = read(certPath, "certificate");
  const keyPem = read(keyPath, "key");
  const hash = crypto.createHash("sha256").update(certificatePem).update("\0").update(keyPem).digest("hex");
  return { upload: { kind: "pem", certificatePem, keyPem }, hash };
}

export const fileRegistrationSchema = z.object({
  name: nameField,
  certPath: z.string({ error: "give the certificate file's path" }).trim().min(1, "give the certificate file's path").max(4096),
  keyPath: z.string({ error: "give the key file's path" }).trim().min(1, "give the key file's path").max(4096),
});

export async function registerFileCertificate(db: Db, keyring: Keyring, actor: Actor, input: unknown, now: Date = new Date()) {
  const parsed = fileRegistrationSchema.safeParse(input);
  if (!parsed.success) throw new AppError("validation_failed", "check the highlighted fields", z.flattenError(parsed.error).fieldErrors as Record<string, string[]>);
  const { certPath, keyPath, name } = parsed.data;
  const { upload, hash } = readCertificateFiles(certPath, keyPath);
  return createImportedCertificate(db, keyring, actor, { name, upload, file: { certPath, keyPath, hash } }, now);
}

/**
 * The engine's watch over files on disk: a changed pair becomes a new version; a broken or missing
 * file keeps the last good certificate serving and raises one event per distinct problem.
 */
export class FileCertificateWatcher {
  private readonly reported = new Map<string, string>();
  constructor(
    private readonly db: Db,
    private readonly keyring: Keyring,
  ) {}

  async sync(now: Date = new Date()): Promise<{ updated: number; failed: number }> {
    const rows = await this.db
      .selectFrom("certificates")
      .select(["id", "name", "source_cert_path", "source_key_path", "source_hash"])
      .where("source", "=", "file")
      .execute();
    let updated = 0;
    let failed = 0;
    for (const row of rows) {
      if (!row.source_cert_path || !row.source_key_path) continue;
      let problem: string | undefined;
      try {
        const { upload, hash } = readCertificateFiles(row.source_cert_path, row.source_key_path);
        if (hash === row.source_hash) {
          this.reported.delete(row.id);
          continue;
        }
        await addCertificateVersion(this.db, this.keyring, { id: null, label: "file watcher", role: "system" }, row.id, upload, "the files on disk changed", now, hash);
        this.reported.delete(row.id);
        updated++;
      } catch (err) {
        problem = err instanceof AppError ? err.message : (err as Error).message;
      }
      if (problem !== undefined) {
        failed++;
        if (this.reported.get(row.id) === problem) continue;
        this.reported.set(row.id, problem);
        await recordEvent(this.db, {
          type: "certificate.file_invalid",
          severity: "error",
          certificateId: row.id,
          message: `certificate "${row.name}": the files on disk are not usable (${problem}); the last good version keeps serving`,
          detail: { certPath: row.source_cert_path, keyPath: row.source_key_path },
        }, now);
        await this.db.updateTable("certificates").set({ last_error: problem, updated_at: nowIso(now) }).where("id", "=", row.id).execute();
      }
    }
    return { updated, failed };
  }
}
