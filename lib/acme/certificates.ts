import { parse as parseDomain } from "tldts";
import { z } from "zod";
import { writeAudit, type Actor } from "../audit";
import { IDLE_LIFECYCLE, nameTaken, requireCertificate, type CertificateDetail, getCertificate } from "../certificates";
import type { Config } from "../config";
import type { Keyring } from "../crypto/seal";
import type { Db } from "../db";
import { isUniqueViolation } from "../db/connection";
import { ACME_CHALLENGE_TYPES, type AcmeChallengeType } from "../db/schema";
import { AppError } from "../errors";
import { recordEvent } from "../events";
import { newId, nowIso } from "../ids";
import { KEY_TYPES } from "../pki/keys";
import { parseSubjectAltNames, splitNameList } from "../pki/names";
import { getCredential } from "../dns/credentials";
import { getAccount, listAccounts, resolveAccountForCertificate } from "./accounts";
import { caName } from "./errors";
import { checkNewOrder, isLetsEncrypt } from "./ratelimit";

const CHALLENGE_LABELS: Record<AcmeChallengeType, string> = {
  "http-01": "HTTP-01 (port 80)",
  "tls-alpn-01": "TLS-ALPN-01 (port 443)",
  "dns-01": "DNS-01",
};

const flag = z.union([z.boolean(), z.enum(["on", "true"]).transform(() => true)]).optional();

export const acmeInputSchema = z.object({
  name: z.string().trim().max(100, "use at most 100 characters").regex(/^[^\u0000-\u001f]*$/, "the name may not contain control characters").optional().transform((v) => v || undefined),
  domains: z
    .union([z.array(z.string().max(300)).max(1000), z.string().max(50_000)], { error: "give the names as a list of strings" })
    .transform((v) => (Array.isArray(v) ? v.map((s) => s.trim()) : splitNameList(v))),
  challenge: z.enum(ACME_CHALLENGE_TYPES, { error: `challenge must be one of: ${ACME_CHALLENGE_TYPES.join(", ")}` }).default("http-01"),
  keyType: z.enum(KEY_TYPES, { error: `key type must be one of: ${KEY_TYPES.join(", ")}` }).default("ecdsa-p256"),
  accountId: z.string().trim().max(100).optional().transform((v) => v || undefined),
  email: z.union([z.literal(""), z.email({ error: "the contact must be an email address" })]).optional(),
  agreeTos: flag,
  dnsCredentialId: z.string().trim().max(100).optional().transform((v) => v || undefined),
  force: flag,
});

/** Names the CA can validate with this challenge; the checks a CA would fail minutes later, said now. */
export function acmeNameProblems(domains: string[], challenge: AcmeChallengeType, directoryUrl: string): string[] {
  const problems: string[] = [];
  const ca = caName(directoryUrl);
  const publicOnly = isLetsEncrypt(directoryUrl);
  const parsed = parseSubjectAltNames(domains);
  if (!parsed.ok) return parsed.errors;
  for (const entry of parsed.entries) {
    if (entry.type === "ip") {
      problems.push(`"${entry.value}" is an IP address: ACME certificates here are for DNS names; use a self-signed or uploaded certificate for an address`);
      continue;
    }
    if (entry.value.startsWith("*.") && challenge !== "dns-01") {
      problems.push(`"${entry.value}" is a wildcard: CAs only validate wildcards with DNS-01; choose DNS-01 or list the names one by one`);
    }
    const info = parseDomain(entry.value.replace(/^\*\./, ""));
    if (publicOnly && (!info.isIcann || !info.domain)) {
      problems.push(`"${entry.value}" is not under a public domain suffix, so ${ca} cannot issue for it; use a name in a domain you own, or a self-signed certificate`);
    }
  }
  return problems;
}

export async function createAcmeCertificate(db: Db, keyring: Keyring, config: Config, actor: Actor, input: unknown, now = new Date()): Promise<{ certificate: CertificateDetail; warnings: string[] }> {
  const parsed = acmeInputSchema.safeParse(input);
  const fieldErrors: Record<string, string[]> = parsed.success ? {} : (z.flattenError(parsed.error).fieldErrors as Record<string, string[]>);
  if (!parsed.success) throw new AppError("validation_failed", "the certificate was not requested: check the highlighted fields", fieldErrors);
  const v = parsed.data;
  // The account decides the CA, and the CA decides which names are acceptable; every mistake is said at once.
  const existing = await findAccount(db, v.accountId);
  const directoryUrl = existing?.directoryUrl ?? config.acme.directoryUrl;
  const problems: Record<string, string[]> = {};
  const nameProblems = acmeNameProblems(v.domains, v.challenge, directoryUrl);
  const dns = v.challenge === "dns-01" ? await dnsCredentialProblems(db, v.dnsCredentialId, nameProblems.length ? [] : v.domains) : undefined;
  if (dns?.credential.length) problems.dnsCredentialId = dns.credential;
  if (dns?.domains.length) nameProblems.push(...dns.domains);
  if (nameProblems.length) problems.domains = nameProblems;
  if (!existing && !v.agreeTos) problems.agreeTos = [`agree to ${caName(directoryUrl)}'s terms of service to create its account`];
  if (Object.keys(problems).length) {
    const message = problems.domains
      ? "the certificate was not requested: check the names"
      : problems.dnsCredentialId
        ? "the certificate was not requested: DNS-01 needs a DNS credential"
        : "there is no ACME account yet: agree to the CA's terms of service to create one (or add one in Settings → ACME)";
    throw new AppError("validation_failed", message, problems);
  }
  const account = existing ?? (await resolveAccountForCertificate(db, keyring, actor, { email: v.email, agreeTos: v.agreeTos, directoryUrl }));
  const domains = [...new Set(v.domains.map((d) => d.toLowerCase()))];
  const warnings: string[] = [];
  const verdict = await checkNewOrder(db, { directoryUrl: account.directoryUrl, names: domains, exempt: false, now });
  if (!verdict.allowed) {
    if (!v.force) throw new AppError("throttled", verdict.message, { domains: [verdict.message] });
    warnings.push(`sent despite ${caName(account.directoryUrl)}'s rate limit (forced): ${verdict.message}`);
  }

  const id = newId("crt");
  const name = v.name ?? domains[0];
  const at = nowIso(now);
  try {
    await db
      .insertInto("certificates")
      .values({
        id,
        name,
        source: "acme",
        status: "pending",
        domains: JSON.stringify(domains),
        key_type: v.keyType,
        validity_days: null,
        chain_pem: null,
        sealed_key: null,
        subject: null,
        issuer: null,
        serial: null,
        fingerprint_sha256: null,
        not_before: null,
        not_after: null,
        ...IDLE_LIFECYCLE,
        next_attempt_at: at,
        renew_reason: `first issuance: queued for the worker, which orders it from ${account.caName}`,
        acme_account_id: account.id,
        challenge: v.challenge,
        dns_credential_id: v.challenge === "dns-01" ? (dns?.credentialId ?? null) : null,
        force_next_order: v.force ? 1 : null,
        created_by: actor.id,
        created_at: at,
        updated_at: at,
      })
      .execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw nameTaken(name);
    throw err;
  }
  await recordEvent(db, {
    type: "tls.pending",
    certificateId: id,
    message: `"${name}" queued: ${account.caName} will be asked for ${domains.join(", ")} over ${CHALLENGE_LABELS[v.challenge]}${dns?.credentialName ? ` with the DNS credential "${dns.credentialName}"` : ""}`,
    detail: { status: "pending", challenge: v.challenge, accountId: account.id, directoryUrl: account.directoryUrl, dnsCredentialId: dns?.credentialId ?? null },
  }, now);
  await writeAudit(db, actor, "certificate.create", { type: "certificate", id }, { name, source: "acme", domains, challenge: v.challenge, forced: Boolean(v.force) });
  return { certificate: (await getCertificate(db, id))!, warnings };
}

/**
 * DNS-01's credential must exist; when its last verification listed zones, every name must be in one
 * it may edit (said now rather than by a failed order minutes later).
 */
async function dnsCredentialProblems(db: Db, credentialId: string | undefined, domains: string[]) {
  const out = { credential: [] as string[], domains: [] as string[], credentialId: undefined as string | undefined, credentialName: undefined as string | undefined };
  if (!credentialId) {
    const any = await db.selectFrom("dns_credentials").select("id").limit(1).executeTakeFirst();
    out.credential.push(any ? "choose the DNS credential that may edit these names' zones" : "DNS-01 needs a DNS credential: add your Cloudflare API token in Settings → DNS first");
    return out;
  }
  const credential = await getCredential(db, credentialId);
  if (!credential) {
    out.credential.push(`DNS credential "${credentialId}" does not exist; pick one from Settings → DNS`);
    return out;
  }
  out.credentialId = credential.id;
  out.credentialName = credential.name;
  const zones = credential.verification?.zones ?? [];
  if (!zones.length) return out;
  for (const domain of domains) {
    const bare = domain.replace(/^\*\./, "").toLowerCase();
    const zone = zones.filter((z) => bare === z.name || bare.endsWith(`.${z.name}`)).sort((a, b) => b.name.length - a.name.length)[0];
    if (!zone) out.domains.push(`"${domain}" is in none of the zones "${credential.name}" can see (${zones.slice(0, 8).map((z) => z.name).join(", ")}${zones.length > 8 ? ", …" : ""}); give the token access to its zone and press Verify in Settings → DNS`);
    else if (zone.canEditDns === false) out.domains.push(`"${credential.name}" may read but not edit DNS records in ${zone.name}, the zone of "${domain}"; give the token Zone → DNS → Edit there and press Verify in Settings → DNS`);
  }
  return out;
}

/** The account asked for (which must exist), else the default one, else none yet. */
async function findAccount(db: Db, accountId: string | undefined) {
  if (accountId) {
    const account = await getAccount(db, accountId);
    if (!account) throw new AppError("validation_failed", `ACME account "${accountId}" does not exist`, { accountId: ["pick an account from Settings → ACME"] });
    return account;
  }
  const accounts = await listAccounts(db);
  return accounts.find((a) => a.isDefault) ?? accounts[0];
}

/** "Renew now" for an issued certificate, "Retry now" for one waiting after a failure: the worker acts at once. */
export async function requestRenewal(db: Db, actor: Actor, idOrName: string, opts: { force?: boolean } = {}, now = new Date()) {
  const cert = await requireCertificate(db, idOrName);
  if (cert.source !== "acme") {
    throw new AppError("conflict", cert.source === "upload" ? "this certificate was uploaded: upload a new version instead of renewing it" : `a ${cert.source.replace("_", "-")} certificate is not renewed from a CA`);
  }
  const at = nowIso(now);
  const issued = Boolean(cert.chainPem);
  const what = cert.status === "failed" || !issued ? "retry" : "renewal";
  await db
    .updateTable("certificates")
    .set({
      next_attempt_at: at,
      ...(issued ? { renew_at: at, renew_reason: `${what} requested by ${actor.label} at ${at.slice(0, 16).replace("T", " ")} UTC` } : {}),
      force_next_order: opts.force ? 1 : null,
      updated_at: at,
    })
    .where("id", "=", cert.id)
    .execute();
  await recordEvent(db, {
    type: "tls.renewal_requested",
    certificateId: cert.id,
    message: `${what === "retry" ? "Retry" : "Renewal"} of "${cert.name}" requested by ${actor.label}${opts.force ? " (rate limits overridden)" : ""}`,
    detail: { forced: Boolean(opts.force) },
  }, now);
  await writeAudit(db, actor, what === "retry" ? "certificate.retry" : "certificate.renew", { type: "certificate", id: cert.id }, { forced: Boolean(opts.force) });
  return (await getCertificate(db, cert.id))!;
}
