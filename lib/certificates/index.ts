import { z } from "zod";
import { writeAudit, type Actor } from "../audit";
import type { Keyring } from "../crypto/seal";
import type { Db } from "../db";
import { isUniqueViolation } from "../db/connection";
import type { CertificateSource, CertificateStatus, CertificatesTable } from "../db/schema";
import { caName } from "../acme/errors";
import { AppError, notFound } from "../errors";
import { recordEvent } from "../events";
import { newId, nowIso } from "../ids";
import { bumpEdgeRevision } from "../listeners/revision";
import { inspectCertificatePem } from "../pki/inspect";
import { KEY_TYPES, type KeyType } from "../pki/keys";
import { parseSubjectAltNames, splitNameList, type SanEntry } from "../pki/names";
import { createSelfSignedCertificate } from "../pki/selfSigned";

/** The lifecycle columns of a certificate that nothing is renewing or retrying yet. */
export const IDLE_LIFECYCLE = {
  renew_at: null,
  next_attempt_at: null,
  attempts: 0,
  last_error: null,
  lease_owner: null,
  lease_expires_at: null,
} as const;

/** A safe file name for downloads: *.example.com → wildcard.example.com */
export const downloadFileName = (name: string) =>
  name.replace(/^\*\./, "wildcard.").replace(/[^A-Za-z0-9._-]+/g, "_").slice(0, 80) || "certificate";

export const keyContext = (certificateId: string) => `certificate-key:${certificateId}`;

// Accept names as a list (API) or as one text field (form), split on commas and line breaks.
const domainsField = z
  .union([z.array(z.string().max(300, "a name may be at most 253 characters")).max(1000), z.string().max(50_000)], {
    error: "give the names as a list of strings",
  })
  .transform((v) => (Array.isArray(v) ? v.map((s) => s.trim()) : splitNameList(v)));

export const selfSignedInputSchema = z.object({
  name: z
    .string()
    .trim()
    .max(100, "use at most 100 characters")
    .regex(/^[^\u0000-\u001f]*$/, "the name may not contain control characters")
    .optional()
    .transform((v) => (v ? v : undefined)),
  domains: domainsField,
  keyType: z.enum(KEY_TYPES, { error: `key type must be one of: ${KEY_TYPES.join(", ")}` }).default("ecdsa-p256"),
  validityDays: z.coerce
    .number({ error: "validity must be a number of days" })
    .int("validity must be a whole number of days")
    .min(1, "validity must be between 1 and 3650 days")
    .max(3650, "validity must be between 1 and 3650 days")
    .default(365),
});

export type SelfSignedInput = z.input<typeof selfSignedInputSchema>;

export type CertificateSummary = {
  id: string;
  name: string;
  source: CertificateSource;
  status: CertificateStatus;
  domains: string[];
  keyType: string;
  notBefore: string | null;
  notAfter: string | null;
  fingerprintSha256: string | null;
  createdAt: string;
};

export type CertificateDetail = CertificateSummary & {
  subject: string | null;
  issuer: string | null;
  serial: string | null;
  validityDays: number | null;
  renewAt: string | null;
  renewReason: string | null;
  nextAttemptAt: string | null;
  lastError: string | null;
  selfSigned: boolean;
  chainPem: string | null;
  hasPrivateKey: boolean;
  versions: { version: number; fingerprintSha256: string; notAfter: string; reason: string; createdAt: string }[];
  /** For ACME certificates: how it is obtained and where its order stands. */
  acme: {
    accountId: string | null;
    directoryUrl: string | null;
    caName: string | null;
    challenge: string | null;
    /** DNS-01: the credential whose provider publishes the TXT records. */
    dnsCredential: { id: string; name: string } | null;
    step: string | null;
    attempts: number;
    lastErrorDetail: string | null;
    renewalWindow: { start: string; end: string; explanationUrl?: string } | null;
    renewalInfoCheckedAt: string | null;
  } | null;
};

function toSummary(r: Pick<CertificatesTable, "id" | "name" | "source" | "status" | "domains" | "key_type" | "not_before" | "not_after" | "fingerprint_sha256" | "created_at">): CertificateSummary {
  return {
    id: r.id,
    name: r.name,
    source: r.source,
    status: r.status,
    domains: JSON.parse(r.domains) as string[],
    keyType: r.key_type,
    notBefore: r.not_before,
    notAfter: r.not_after,
    fingerprintSha256: r.fingerprint_sha256,
    createdAt: r.created_at,
  };
}

function validationError(fieldErrors: Record<string, string[]>) {
  return new AppError("validation_failed", "the certificate was not created: check the highlighted fields", fieldErrors);
}

/** Validate everything first; nothing is written unless all of it is right. */
export async function parseSelfSignedInput(input: unknown) {
  const parsed = selfSignedInputSchema.safeParse(input);
  // The names are checked even when another field is wrong, so that every mistake shows at once.
  const domains = domainsField.safeParse((input as { domains?: unknown } | null)?.domains ?? []);
  const names = domains.success ? parseSubjectAltNames(domains.data) : undefined;
  const fieldErrors = parsed.success ? {} : (z.flattenError(parsed.error).fieldErrors as Record<string, string[]>);
  if (names && !names.ok) fieldErrors.domains = names.errors;
  if (!parsed.success || !names?.ok) throw validationError(fieldErrors);
  return { ...parsed.data, entries: names.entries };
}

export async function createSelfSignedCertificateRecord(
  db: Db,
  keyring: Keyring,
  actor: Actor,
  input: unknown,
  now: Date = new Date(),
): Promise<CertificateDetail> {
  const data = await parseSelfSignedInput(input);
  const name = data.name ?? data.entries[0].value;
  await assertNameFree(db, name);

  const { certificatePem, privateKeyPem } = await createSelfSignedCertificate({
    names: data.entries,
    keyType: data.keyType,
    validityDays: data.validityDays,
    now,
  });
  const facts = inspectCertificatePem(certificatePem);
  const id = newId("crt");
  const sealedKey = keyring.seal(privateKeyPem, keyContext(id));
  const at = nowIso(now);
  const domains = data.entries.map((e: SanEntry) => e.value);

  try {
    await db.transaction().execute(async (trx) => {
      await trx
        .insertInto("certificates")
        .values({
          id,
          name,
          source: "self_signed",
          status: "active",
          domains: JSON.stringify(domains),
          key_type: data.keyType,
          validity_days: data.validityDays,
          chain_pem: certificatePem,
          sealed_key: sealedKey,
          subject: facts.subject,
          issuer: facts.issuer,
          serial: facts.serialNumber,
          fingerprint_sha256: facts.fingerprintSha256,
          not_before: facts.notBefore.toISOString(),
          not_after: facts.notAfter.toISOString(),
          ...IDLE_LIFECYCLE,
          renew_reason: "self-signed: not renewed automatically; create a new one before it expires",
          created_by: actor.id,
          created_at: at,
          updated_at: at,
        })
        .execute();
      await trx
        .insertInto("certificate_versions")
        .values({
          id: newId("ver"),
          certificate_id: id,
          version: 1,
          chain_pem: certificatePem,
          sealed_key: sealedKey,
          fingerprint_sha256: facts.fingerprintSha256,
          serial: facts.serialNumber,
          issuer: facts.issuer,
          not_before: facts.notBefore.toISOString(),
          not_after: facts.notAfter.toISOString(),
          reason: "created (self-signed)",
          created_at: at,
        })
        .execute();
    });
  } catch (err) {
    // Two creations with one name racing past assertNameFree: the unique index decides.
    if (isUniqueViolation(err)) throw nameTaken(name);
    throw err;
  }
  await bumpEdgeRevision(db);
  await recordEvent(db, {
    type: "tls.issued",
    certificateId: id,
    message: `self-signed certificate "${name}" created for ${domains.join(", ")}`,
    detail: { source: "self_signed", keyType: data.keyType, fingerprintSha256: facts.fingerprintSha256 },
  }, now);
  await writeAudit(db, actor, "certificate.create", { type: "certificate", id }, { name, source: "self_signed", domains });
  return (await getCertificate(db, id))!;
}

export const nameTaken = (name: string) =>
  new AppError("conflict", `a certificate named "${name}" already exists`, {
    name: [`a certificate named "${name}" already exists; choose another name`],
  });

async function assertNameFree(db: Db, name: string) {
  const clash = await db.selectFrom("certificates").select("id").where("name", "=", name).executeTakeFirst();
  if (clash) throw nameTaken(name);
}

export const listQuerySchema = z.object({
  limit: z.coerce.number({ error: "limit must be a number" }).int().min(1, "limit must be between 1 and 200").max(200, "limit must be between 1 and 200").default(50),
  cursor: z.string().max(200).optional(),
  status: z.enum(["pending", "requesting", "active", "renewing", "failed", "expired"], { error: "unknown status" }).optional(),
});

type Cursor = { createdAt: string; id: string };
const encodeCursor = (c: Cursor) => Buffer.from(JSON.stringify([c.createdAt, c.id])).toString("base64url");
function decodeCursor(text: string): Cursor {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(text, "base64url").toString("utf8")) as [string, string];
    if (typeof createdAt !== "string" || typeof id !== "string") throw new Error();
    return { createdAt, id };
  } catch {
    throw new AppError("bad_request", "cursor is not valid; use the nextCursor value of the previous page");
  }
}

/** Newest first, keyset-paged on (created_at, id) so that page 200 costs what page 1 does. */
export async function listCertificates(db: Db, query: z.input<typeof listQuerySchema> = {}) {
  const parsed = listQuerySchema.safeParse(query);
  if (!parsed.success) {
    throw new AppError("validation_failed", parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  }
  const { limit, cursor, status } = parsed.data;
  let q = db
    .selectFrom("certificates")
    .select(["id", "name", "source", "status", "domains", "key_type", "not_before", "not_after", "fingerprint_sha256", "created_at"]);
  if (status) q = q.where("status", "=", status);
  if (cursor) {
    const c = decodeCursor(cursor);
    // A row-value comparison lets both engines seek straight to the cursor in (created_at, id);
    // the equivalent OR form made them scan every row before it.
    q = q.where((eb) => eb(eb.refTuple("created_at", "id"), "<", eb.tuple(c.createdAt, c.id)));
  }
  const rows = await q.orderBy("created_at", "desc").orderBy("id", "desc").limit(limit + 1).execute();
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  let totalQuery = db.selectFrom("certificates").select((eb) => eb.fn.countAll().as("n"));
  if (status) totalQuery = totalQuery.where("status", "=", status);
  const total = Number((await totalQuery.executeTakeFirstOrThrow()).n);
  return {
    items: page.map(toSummary),
    nextCursor: rows.length > limit && last ? encodeCursor({ createdAt: last.created_at, id: last.id }) : null,
    total,
  };
}

export async function getCertificate(db: Db, idOrName: string): Promise<CertificateDetail | undefined> {
  const row = await db
    .selectFrom("certificates")
    .selectAll()
    .where((eb) => eb.or([eb("id", "=", idOrName), eb("name", "=", idOrName)]))
    .orderBy("created_at")
    .executeTakeFirst();
  if (!row) return undefined;
  const versions = await db
    .selectFrom("certificate_versions")
    .select(["version", "fingerprint_sha256", "not_after", "reason", "created_at"])
    .where("certificate_id", "=", row.id)
    .orderBy("version", "desc")
    .execute();
  const facts = row.chain_pem ? inspectCertificatePem(row.chain_pem) : undefined;
  const dnsCredential = row.dns_credential_id
    ? await db.selectFrom("dns_credentials").select(["id", "name"]).where("id", "=", row.dns_credential_id).executeTakeFirst()
    : undefined;
  const account = row.acme_account_id
    ? await db.selectFrom("acme_accounts").select("directory_url").where("id", "=", row.acme_account_id).executeTakeFirst()
    : undefined;
  return {
    ...toSummary(row),
    subject: row.subject,
    issuer: row.issuer,
    serial: row.serial,
    validityDays: row.validity_days,
    renewAt: row.renew_at,
    renewReason: row.renew_reason,
    nextAttemptAt: row.next_attempt_at,
    lastError: row.last_error,
    selfSigned: facts?.selfSigned ?? false,
    chainPem: row.chain_pem,
    hasPrivateKey: Boolean(row.sealed_key),
    versions: versions.map((v) => ({
      version: Number(v.version),
      fingerprintSha256: v.fingerprint_sha256,
      notAfter: v.not_after,
      reason: v.reason,
      createdAt: v.created_at,
    })),
    acme:
      row.source === "acme"
        ? {
            accountId: row.acme_account_id ?? null,
            directoryUrl: account?.directory_url ?? null,
            caName: account ? caName(account.directory_url) : null,
            challenge: row.challenge ?? null,
            dnsCredential: dnsCredential ? { id: dnsCredential.id, name: dnsCredential.name } : null,
            step: row.acme_step ?? null,
            attempts: row.attempts,
            lastErrorDetail: row.last_error_detail ?? null,
            renewalWindow: row.ari_window ? (JSON.parse(row.ari_window) as { start: string; end: string; explanationUrl?: string }) : null,
            renewalInfoCheckedAt: row.ari_checked_at ?? null,
          }
        : null,
  };
}

export async function requireCertificate(db: Db, idOrName: string) {
  const cert = await getCertificate(db, idOrName);
  if (!cert) throw notFound(`certificate "${idOrName}"`);
  return cert;
}

export async function deleteCertificate(db: Db, actor: Actor, id: string) {
  const cert = await requireCertificate(db, id);
  await db.deleteFrom("certificates").where("id", "=", cert.id).execute();
  await bumpEdgeRevision(db);
  await recordEvent(db, { type: "certificate.deleted", message: `certificate "${cert.name}" deleted`, detail: { id: cert.id } });
  await writeAudit(db, actor, "certificate.delete", { type: "certificate", id: cert.id }, { name: cert.name });
  return cert;
}

/** The private key in PEM. The caller has checked the role and re-asked the password. */
export async function exportPrivateKey(db: Db, keyring: Keyring, actor: Actor, id: string): Promise<{ name: string; pem: string }> {
  const row = await db.selectFrom("certificates").select(["id", "name", "sealed_key"]).where("id", "=", id).executeTakeFirst();
  if (!row) throw notFound("that certificate");
  if (!row.sealed_key) throw new AppError("not_found", `certificate "${row.name}" has no private key stored`);
  const pem = keyring.open(row.sealed_key, keyContext(row.id));
  await writeAudit(db, actor, "certificate.private_key_download", { type: "certificate", id: row.id }, { name: row.name });
  return { name: row.name, pem };
}

export async function dashboardSummary(db: Db, now: Date = new Date()) {
  const counts = await db
    .selectFrom("certificates")
    .select(["status", (eb) => eb.fn.countAll().as("n")])
    .groupBy("status")
    .execute();
  const byStatus = Object.fromEntries(counts.map((c) => [c.status, Number(c.n)])) as Partial<Record<CertificateStatus, number>>;
  const soonest = await db
    .selectFrom("certificates")
    .select(["id", "name", "source", "status", "domains", "key_type", "not_before", "not_after", "fingerprint_sha256", "created_at"])
    .where("not_after", "is not", null)
    .orderBy("not_after", "asc")
    .limit(8)
    .execute();
  const expiringWithin30Days = await db
    .selectFrom("certificates")
    .select((eb) => eb.fn.countAll().as("n"))
    .where("not_after", ">", now.toISOString())
    .where("not_after", "<=", new Date(now.getTime() + 30 * 86_400_000).toISOString())
    .executeTakeFirstOrThrow();
  return {
    byStatus,
    total: Object.values(byStatus).reduce((a, b) => a + (b ?? 0), 0),
    expiringWithin30Days: Number(expiringWithin30Days.n),
    soonest: soonest.map(toSummary),
  };
}

/** Active certificates past their notAfter become expired (the engine's sweep). */
export async function markExpiredCertificates(db: Db, now: Date = new Date()): Promise<number> {
  const due = await db
    .selectFrom("certificates")
    .select(["id", "name", "not_after", "fingerprint_sha256"])
    .where("status", "in", ["active", "renewing", "failed"])
    .where("not_after", "<=", now.toISOString())
    .execute();
  for (const cert of due) {
    const updated = await db
      .updateTable("certificates")
      .set({ status: "expired", updated_at: nowIso(now) })
      .where("id", "=", cert.id)
      .where("status", "!=", "expired")
      .executeTakeFirst();
    // One tls.expired per version (expiry_notices threshold 0): a retried, still expired version is not announced again.
    if (Number(updated.numUpdatedRows) === 0) continue;
    const first = !cert.fingerprint_sha256 || (await db
      .insertInto("expiry_notices")
      .values({ certificate_id: cert.id, fingerprint_sha256: cert.fingerprint_sha256, threshold_days: 0, at: nowIso(now) })
      .onConflict((oc) => oc.columns(["certificate_id", "fingerprint_sha256", "threshold_days"]).doNothing())
      .returning("threshold_days")
      .executeTakeFirst()) !== undefined;
    if (first) {
      await recordEvent(db, {
        type: "tls.expired",
        severity: "error",
        certificateId: cert.id,
        message: `certificate "${cert.name}" expired at ${cert.not_after}`,
        detail: { fingerprintSha256: cert.fingerprint_sha256, notAfter: cert.not_after },
      }, now);
    }
  }
  return due.length;
}
