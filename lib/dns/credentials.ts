import { z } from "zod";
import { writeAudit, type Actor } from "../audit";
import type { Config } from "../config";
import type { Keyring } from "../crypto/seal";
import type { Db } from "../db";
import { isUniqueViolation } from "../db/connection";
import { DNS_PROVIDERS, type DnsCredentialsTable, type DnsProviderKind, type DnsTestsTable } from "../db/schema";
import { AppError, notFound } from "../errors";
import { recordEvent } from "../events";
import { newId, nowIso } from "../ids";
import { CloudflareProvider } from "./cloudflare";
import { DnsProblem, type DnsProvider, type DnsZone } from "./provider";
import { parseVerification, type DnsZoneView, type Verification } from "./verification";

export { parseVerification, type DnsZoneView, type Verification };

// DNS provider credentials: a name, a provider and a sealed API token (never returned, never
// logged; only its last 4 characters are shown), the last verification, and zone tests that the
// worker runs.

export const tokenContext = (id: string) => `dns-credential-token:${id}`;

export const PROVIDER_LABELS: Record<DnsProviderKind, string> = { cloudflare: "Cloudflare" };

/** Where providers are reached, and the resolvers asked about propagation (from the environment). */
export type DnsSettings = { cloudflareApiUrl?: string; resolvers?: string[] };

export function dnsSettings(config: Pick<Config, "cloudflareApiUrl" | "dnsResolvers">): DnsSettings {
  return { cloudflareApiUrl: config.cloudflareApiUrl, resolvers: config.dnsResolvers };
}

export function providerFor(kind: DnsProviderKind, token: string, settings: DnsSettings): DnsProvider {
  if (kind === "cloudflare") return new CloudflareProvider(token, { apiUrl: settings.cloudflareApiUrl });
  throw new Error(`unknown DNS provider ${String(kind)}`);
}

export async function openProvider(db: Db, keyring: Keyring, credentialId: string, settings: DnsSettings): Promise<{ provider: DnsProvider; name: string }> {
  const row = await db.selectFrom("dns_credentials").selectAll().where("id", "=", credentialId).executeTakeFirst();
  if (!row) {
    throw new DnsProblem("token_invalid", `the DNS credential ${credentialId} no longer exists`, "Pick another credential for this certificate (delete it and request it again).", "", { retryable: false });
  }
  return { provider: providerFor(row.provider, keyring.open(row.sealed_token, tokenContext(row.id)), settings), name: row.name };
}

export type DnsCredentialView = {
  id: string;
  name: string;
  provider: DnsProviderKind;
  providerLabel: string;
  /** "…a1b2": the token's last 4 characters. */
  tokenHint: string;
  verifiedAt: string | null;
  verification: Verification | null;
  certificates: { id: string; name: string; status: string }[];
  createdAt: string;
  updatedAt: string;
};

const TOKEN_HELP = "paste the Cloudflare API token (My Profile → API Tokens), about 40 letters, digits, - and _";

const tokenField = z
  .string({ error: `the token is missing: ${TOKEN_HELP}` })
  .transform((v) => v.trim())
  .superRefine((v, ctx) => {
    const problem = tokenProblem(v);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

/** What is wrong with a pasted token's form, before anyone is asked. */
export function tokenProblem(token: string): string | undefined {
  if (!token) return `the token is empty: ${TOKEN_HELP}`;
  if (/^bearer\s/i.test(token)) return 'paste the token without "Bearer " in front of it';
  if (/\s/.test(token)) return "the token contains spaces or line breaks: copy it again, in one piece";
  if (/^[0-9a-f]{37}$/.test(token)) return "this looks like the Global API Key, which can do everything in the account: create an API token with only Zone → Zone → Read and Zone → DNS → Edit instead";
  if (/^v1\.0-/.test(token)) return "this looks like an Origin CA key, not an API token: create an API token with Zone → Zone → Read and Zone → DNS → Edit";
  if (token.length < 20) return `the token is too short (${token.length} characters): ${TOKEN_HELP}`;
  if (token.length > 512) return "the token is too long (more than 512 characters): paste only the token";
  if (!/^[A-Za-z0-9._~+/=-]+$/.test(token)) return "the token contains characters an API token does not have: copy it again from Cloudflare";
  return undefined;
}

export const credentialInputSchema = z.object({
  name: z
    .string({ error: 'give the credential a name, like "prod Cloudflare"' })
    .trim()
    .min(1, 'give the credential a name, like "prod Cloudflare"')
    .max(100, "use at most 100 characters")
    .regex(/^[^\u0000-\u001f]*$/, "the name may not contain control characters"),
  provider: z.enum(DNS_PROVIDERS, { error: `provider must be one of: ${DNS_PROVIDERS.join(", ")}` }).default("cloudflare"),
  token: tokenField,
  /** Ask the provider before saving (default); a token it refuses is not saved. */
  verify: z.union([z.boolean(), z.enum(["on", "true"]).transform(() => true), z.enum(["false", "off"]).transform(() => false)]).optional(),
});

function toView(row: DnsCredentialsTable, certificates: DnsCredentialView["certificates"]): DnsCredentialView {
  return {
    id: row.id,
    name: row.name,
    provider: row.provider,
    providerLabel: PROVIDER_LABELS[row.provider] ?? row.provider,
    tokenHint: `…${row.token_hint}`,
    verifiedAt: row.verified_at,
    verification: parseVerification(row.verification),
    certificates,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function listCredentials(db: Db): Promise<DnsCredentialView[]> {
  const rows = await db.selectFrom("dns_credentials").selectAll().orderBy("name").execute();
  const users = await db.selectFrom("certificates").select(["id", "name", "status", "dns_credential_id"]).where("dns_credential_id", "is not", null).orderBy("name").execute();
  return rows.map((r) => toView(r, users.filter((u) => u.dns_credential_id === r.id).map((u) => ({ id: u.id, name: u.name, status: u.status }))));
}

export async function getCredential(db: Db, id: string): Promise<DnsCredentialView | undefined> {
  const row = await db.selectFrom("dns_credentials").selectAll().where("id", "=", id).executeTakeFirst();
  if (!row) return undefined;
  const users = await db.selectFrom("certificates").select(["id", "name", "status"]).where("dns_credential_id", "=", id).orderBy("name").execute();
  return toView(row, users);
}

export async function requireCredential(db: Db, id: string): Promise<DnsCredentialView> {
  const credential = await getCredential(db, id);
  if (!credential) throw notFound(`DNS credential "${id}"`);
  return credential;
}

const NEEDS = "Zone → Zone → Read and Zone → DNS → Edit";

/** Asks the provider about the token and its zones, and says plainly what is missing. */
export async function runVerification(provider: DnsProvider, now = new Date()): Promise<Verification> {
  const base = { checkedAt: nowIso(now), expiresOn: null as string | null, zones: [] as DnsZoneView[], raw: null as string | null, transient: false };
  const failed = (problem: DnsProblem, tokenStatus: string): Verification => ({
    ...base,
    ok: false,
    tokenStatus: problem.retryable ? "unknown" : tokenStatus,
    summary: problem.retryable ? `Could not verify the token: ${problem.summary}` : `${capitalize(problem.summary)}`,
    problems: [problem.fix],
    raw: problem.raw || null,
    transient: problem.retryable,
  });
  let state;
  try {
    state = await provider.verifyToken();
  } catch (err) {
    if (err instanceof DnsProblem) return failed(err, err.code === "token_invalid" ? "rejected" : "unknown");
    throw err;
  }
  base.expiresOn = state.expiresOn ?? null;
  if (state.status !== "active") {
    const why =
      state.status === "expired"
        ? `the ${provider.label} token has expired${state.expiresOn ? ` (on ${state.expiresOn.slice(0, 10)})` : ""}`
        : state.status === "not_yet_valid"
          ? `the ${provider.label} token is not valid yet (from ${state.notBefore?.slice(0, 16).replace("T", " ")} UTC)`
          : `the ${provider.label} token is disabled`;
    return { ...base, ok: false, tokenStatus: state.status, summary: capitalize(why), problems: [state.status === "not_yet_valid" ? "Wait until it starts, or remove its start date in the Cloudflare dashboard." : `Roll the token or create a new one in the ${provider.label} dashboard (My Profile → API Tokens), then add it here.`] };
  }
  let zones: DnsZone[];
  try {
    zones = await provider.listZones();
  } catch (err) {
    if (!(err instanceof DnsProblem)) throw err;
    if (err.code === "permission") {
      return { ...base, ok: false, tokenStatus: "active", summary: `The token is active, but it may not list zones`, problems: [`Give the token ${NEEDS} for the zones of your certificates.`], raw: err.raw || null };
    }
    return failed(err, "active");
  }
  base.zones = zones.map((z) => ({ id: z.id, name: z.name, status: z.status, canEditDns: z.canEditDns })).sort((a, b) => a.name.localeCompare(b.name));
  if (!zones.length) {
    return { ...base, ok: false, tokenStatus: "active", summary: "The token is active, but it can read no zones", problems: [`Give the token ${NEEDS} for the zones of your certificates (Zone Resources: Include → Specific zone, or All zones).`] };
  }
  const editable = zones.filter((z) => z.canEditDns === true);
  const readOnly = zones.filter((z) => z.canEditDns === false);
  const unknown = zones.filter((z) => z.canEditDns === null);
  const inactive = zones.filter((z) => z.status !== "active");
  const problems: string[] = [];
  if (readOnly.length) problems.push(`It can read but not edit DNS records in ${listNames(readOnly)}: give it Zone → DNS → Edit there if certificates need those zones.`);
  if (unknown.length) problems.push(`${provider.label} did not say whether it may edit DNS in ${listNames(unknown)}: press Test on a zone to find out.`);
  if (inactive.length) problems.push(`${listNames(inactive)} ${inactive.length === 1 ? "is" : "are"} not active at ${provider.label} (${inactive.map((z) => z.status).join(", ")}): ${provider.label} does not answer DNS for ${inactive.length === 1 ? "it" : "them"} until the registrar points at its name servers.`);
  if (!editable.length && !unknown.length) {
    return { ...base, ok: false, tokenStatus: "active", summary: `The token is active and can read ${zones.length} zone${zones.length === 1 ? "" : "s"}, but may edit DNS records in none`, problems: [`Give the token Zone → DNS → Edit for the zones of your certificates; it needs ${NEEDS}.`, ...problems.filter((p) => !p.startsWith("It can read"))] };
  }
  const summary = editable.length
    ? `The token is active and may edit DNS records in ${editable.length} zone${editable.length === 1 ? "" : "s"}: ${listNames(editable)}`
    : `The token is active and can read ${zones.length} zone${zones.length === 1 ? "" : "s"}: ${listNames(zones)}`;
  return { ...base, ok: true, tokenStatus: "active", summary, problems };
}

function listNames(zones: { name: string }[], max = 8): string {
  const names = zones.map((z) => z.name);
  return names.length > max ? `${names.slice(0, max).join(", ")} and ${names.length - max} more` : names.join(", ");
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export type CredentialOptions = { settings: DnsSettings; providerFactory?: (kind: DnsProviderKind, token: string) => DnsProvider; now?: Date };

/** Saves a credential; unless verify is false, only once the provider has accepted the token. Nothing is saved on failure. */
export async function createCredential(db: Db, keyring: Keyring, actor: Actor, input: unknown, opts: CredentialOptions): Promise<DnsCredentialView> {
  requireObject(input, '{"name":"prod Cloudflare","provider":"cloudflare","token":"…"}');
  const parsed = credentialInputSchema.safeParse(input);
  if (!parsed.success) {
    throw new AppError("validation_failed", "the DNS credential was not saved: check the highlighted fields", z.flattenError(parsed.error).fieldErrors as Record<string, string[]>);
  }
  const v = parsed.data;
  const now = opts.now ?? new Date();
  const taken = await db.selectFrom("dns_credentials").select("id").where("name", "=", v.name).executeTakeFirst();
  if (taken) throw nameConflict(v.name);
  let verification: Verification | null = null;
  if (v.verify !== false) {
    const provider = (opts.providerFactory ?? ((kind, token) => providerFor(kind, token, opts.settings)))(v.provider, v.token);
    verification = await runVerification(provider, now);
    if (!verification.ok) {
      const message = verification.transient
        ? `the credential was not saved: ${lowerFirst(verification.summary)}. Try again in a minute${verification.raw ? ` (${verification.raw})` : ""}`
        : `the credential was not saved: ${lowerFirst(verification.summary)}${verification.raw ? ` (${verification.raw})` : ""}`;
      throw new AppError("validation_failed", message, { token: [`${verification.summary}. ${verification.problems.join(" ")}`.trim()] });
    }
  }
  const id = newId("dns");
  const at = nowIso(now);
  try {
    await db
      .insertInto("dns_credentials")
      .values({
        id,
        name: v.name,
        provider: v.provider,
        sealed_token: keyring.seal(v.token, tokenContext(id)),
        token_hint: v.token.slice(-4),
        verified_at: verification ? at : null,
        verification: verification ? JSON.stringify(verification) : null,
        created_by: actor.id,
        created_at: at,
        updated_at: at,
      })
      .execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw nameConflict(v.name);
    throw err;
  }
  await writeAudit(db, actor, "dns_credential.create", { type: "dns_credential", id }, { name: v.name, provider: v.provider, tokenHint: v.token.slice(-4), verified: Boolean(verification) });
  await recordEvent(db, { type: "dns.credential_added", message: `DNS credential "${v.name}" (${PROVIDER_LABELS[v.provider]}, token …${v.token.slice(-4)}) added by ${actor.label}${verification ? `: ${lowerFirst(verification.summary)}` : " without verifying it"}`, detail: { credentialId: id } }, now);
  return (await getCredential(db, id))!;
}

/** "The token is…" continues a sentence as "the token is…"; "Cloudflare rejected…" stays as it is. */
function lowerFirst(text: string): string {
  return /^(The|Could) /.test(text) ? text.charAt(0).toLowerCase() + text.slice(1) : text;
}

function requireObject(input: unknown, example: string) {
  if (typeof input !== "object" || input === null || Array.isArray(input)) throw new AppError("bad_request", `the body must be a JSON object, like ${example}`);
}

const nameConflict = (name: string) => new AppError("conflict", `there is already a DNS credential named "${name}"`, { name: ["pick another name, or delete the existing credential first"] });

export const credentialUpdateSchema = z.object({
  name: credentialInputSchema.shape.name.optional(),
  token: tokenField.optional(),
  verify: credentialInputSchema.shape.verify,
});

/**
 * Renames a credential or replaces its token (a rolled or expiring token, while certificates keep
 * using the credential). A new token is verified first, and nothing changes when it is refused.
 */
export async function updateCredential(db: Db, keyring: Keyring, actor: Actor, id: string, input: unknown, opts: CredentialOptions): Promise<DnsCredentialView> {
  const current = await requireCredential(db, id);
  requireObject(input, '{"token":"…"} or {"name":"…"}');
  const parsed = credentialUpdateSchema.safeParse(input);
  if (!parsed.success) {
    throw new AppError("validation_failed", "the DNS credential was not changed: check the highlighted fields", z.flattenError(parsed.error).fieldErrors as Record<string, string[]>);
  }
  const v = parsed.data;
  if (v.name === undefined && v.token === undefined) throw new AppError("validation_failed", "nothing to change: send a new name or token", { token: ["paste the new token"] });
  const now = opts.now ?? new Date();
  if (v.name !== undefined && v.name !== current.name) {
    const taken = await db.selectFrom("dns_credentials").select("id").where("name", "=", v.name).where("id", "!=", id).executeTakeFirst();
    if (taken) throw nameConflict(v.name);
  }
  const values: Record<string, string | null> = { updated_at: nowIso(now) };
  if (v.name !== undefined) values.name = v.name;
  if (v.token !== undefined) {
    let verification: Verification | null = null;
    if (v.verify !== false) {
      const provider = (opts.providerFactory ?? ((kind, token) => providerFor(kind, token, opts.settings)))(current.provider, v.token);
      verification = await runVerification(provider, now);
      if (!verification.ok) {
        throw new AppError("validation_failed", `the token was not replaced: ${lowerFirst(verification.summary)}${verification.raw ? ` (${verification.raw})` : ""}`, { token: [`${verification.summary}. ${verification.problems.join(" ")}`.trim()] });
      }
    }
    Object.assign(values, { sealed_token: keyring.seal(v.token, tokenContext(id)), token_hint: v.token.slice(-4), verified_at: verification ? nowIso(now) : null, verification: verification ? JSON.stringify(verification) : null });
  }
  try {
    await db.updateTable("dns_credentials").set(values).where("id", "=", id).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw nameConflict(v.name ?? current.name);
    throw err;
  }
  const what = [v.name !== undefined && v.name !== current.name ? `renamed to "${v.name}"` : "", v.token !== undefined ? `token replaced (now …${v.token.slice(-4)})` : ""].filter(Boolean).join(", ") || "unchanged";
  await writeAudit(db, actor, "dns_credential.update", { type: "dns_credential", id }, { name: v.name ?? current.name, tokenReplaced: v.token !== undefined, tokenHint: v.token?.slice(-4) });
  await recordEvent(db, { type: "dns.credential_updated", message: `DNS credential "${current.name}" ${what} by ${actor.label}`, detail: { credentialId: id } }, now);
  return (await getCredential(db, id))!;
}

/** Asks the provider again and stores the result (also when the token is refused). */
export async function verifyCredential(db: Db, keyring: Keyring, actor: Actor, id: string, opts: CredentialOptions): Promise<DnsCredentialView> {
  const credential = await requireCredential(db, id);
  const now = opts.now ?? new Date();
  const row = (await db.selectFrom("dns_credentials").selectAll().where("id", "=", id).executeTakeFirst())!;
  const token = keyring.open(row.sealed_token, tokenContext(id));
  const provider = (opts.providerFactory ?? ((kind, t) => providerFor(kind, t, opts.settings)))(row.provider, token);
  const verification = await runVerification(provider, now);
  await db.updateTable("dns_credentials").set({ verified_at: nowIso(now), verification: JSON.stringify(verification), updated_at: nowIso(now) }).where("id", "=", id).execute();
  await recordEvent(
    db,
    {
      type: verification.ok ? "dns.credential_verified" : "dns.credential_verify_failed",
      severity: verification.ok ? "info" : verification.transient ? "warning" : "error",
      message: `DNS credential "${credential.name}" verified by ${actor.label}: ${lowerFirst(verification.summary)}${verification.raw ? ` (${verification.raw})` : ""}`,
      detail: { credentialId: id, ok: verification.ok, problems: verification.problems },
    },
    now,
  );
  await writeAudit(db, actor, "dns_credential.verify", { type: "dns_credential", id }, { ok: verification.ok });
  return (await getCredential(db, id))!;
}

/** Refused while certificates use it, with their names. */
export async function deleteCredential(db: Db, actor: Actor, id: string): Promise<DnsCredentialView> {
  const credential = await requireCredential(db, id);
  if (credential.certificates.length) {
    const names = credential.certificates.slice(0, 10).map((c) => `"${c.name}"`).join(", ");
    const more = credential.certificates.length > 10 ? ` and ${credential.certificates.length - 10} more` : "";
    throw new AppError("conflict", `"${credential.name}" is used by ${names}${more} for DNS-01; delete those certificates or move them to another credential first`);
  }
  const held = await db.selectFrom("dns_records").select("fqdn").where("credential_id", "=", id).executeTakeFirst();
  if (held) throw new AppError("conflict", `"${credential.name}" still has a TXT record to remove (${held.fqdn}); wait a minute until the worker has removed it, then delete the credential`);
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom("dns_tests").where("credential_id", "=", id).execute();
    await trx.deleteFrom("dns_credentials").where("id", "=", id).execute();
  });
  await writeAudit(db, actor, "dns_credential.delete", { type: "dns_credential", id }, { name: credential.name, provider: credential.provider });
  await recordEvent(db, { type: "dns.credential_deleted", message: `DNS credential "${credential.name}" deleted by ${actor.label}`, detail: { credentialId: id } });
  return credential;
}

// ---------------------------------------------------------------------------------------------
// Zone tests: create a TXT record, wait until the name servers answer it, delete it. The worker
// runs them (the console only writes the request); each step is an event, so the page shows it live.

export type ZoneTestView = {
  id: string;
  credentialId: string;
  zone: string;
  status: DnsTestsTable["status"];
  message: string | null;
  createdAt: string;
  finishedAt: string | null;
  steps: { id: number; at: string; type: string; severity: string; message: string }[];
};

const zoneField = z
  .string({ error: "name the zone to test, like example.com" })
  .trim()
  .toLowerCase()
  .transform((v) => v.replace(/\.$/, ""))
  .pipe(z.string().min(1, "name the zone to test, like example.com").max(253, "a zone name has at most 253 characters").regex(/^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$/, "give a DNS zone name, like example.com"));

export const zoneTestInputSchema = z.object({ zone: zoneField });

export const ZONE_TEST_EVENT_TYPES = ["dns.test_queued", "dns.test_started", "dns.test_record_created", "dns.test_propagation", "dns.test_record_deleted", "dns.test_passed", "dns.test_failed"];

export async function requestZoneTest(db: Db, actor: Actor, credentialId: string, input: unknown, now = new Date()): Promise<ZoneTestView> {
  const credential = await requireCredential(db, credentialId);
  requireObject(input, '{"zone":"example.com"}');
  const parsed = zoneTestInputSchema.safeParse(input);
  if (!parsed.success) throw new AppError("validation_failed", "the test was not started: check the zone", z.flattenError(parsed.error).fieldErrors as Record<string, string[]>);
  const { zone } = parsed.data;
  const known = credential.verification?.zones;
  if (known?.length && !known.some((z) => z.name === zone)) {
    throw new AppError("validation_failed", `"${credential.name}" cannot see the zone ${zone}`, { zone: [`the token can see: ${listNames(known, 12)}; press Verify if you have given it more zones since`] });
  }
  const busy = await db.selectFrom("dns_tests").select("zone").where("credential_id", "=", credentialId).where("status", "in", ["queued", "running"]).executeTakeFirst();
  if (busy) throw new AppError("conflict", `a test of "${credential.name}" on ${busy.zone} is still running; wait for it to finish`);
  const id = newId("dnt");
  await db
    .insertInto("dns_tests")
    .values({ id, credential_id: credentialId, zone, status: "queued", message: null, lease_owner: null, lease_expires_at: null, created_by: actor.id, created_at: nowIso(now), finished_at: null })
    .execute();
  await recordEvent(db, { type: "dns.test_queued", message: `Test of "${credential.name}" on ${zone} requested by ${actor.label}; the worker starts it within a second`, detail: { credentialId, testId: id, zone } }, now);
  await writeAudit(db, actor, "dns_credential.test", { type: "dns_credential", id: credentialId }, { zone, testId: id });
  return (await getZoneTest(db, credentialId, id))!;
}

export async function getZoneTest(db: Db, credentialId: string, testId: string): Promise<ZoneTestView | undefined> {
  const row = await db.selectFrom("dns_tests").selectAll().where("id", "=", testId).where("credential_id", "=", credentialId).executeTakeFirst();
  if (!row) return undefined;
  return { ...testView(row), steps: await testSteps(db, testId, row.created_at) };
}

/** The newest test of each credential, for the settings page. */
export async function latestZoneTests(db: Db): Promise<Record<string, ZoneTestView>> {
  const rows = await db.selectFrom("dns_tests").selectAll().orderBy("created_at", "desc").limit(200).execute();
  const out: Record<string, ZoneTestView> = {};
  for (const row of rows) {
    if (out[row.credential_id]) continue;
    out[row.credential_id] = { ...testView(row), steps: await testSteps(db, row.id, row.created_at) };
  }
  return out;
}

function testView(row: DnsTestsTable): Omit<ZoneTestView, "steps"> {
  return { id: row.id, credentialId: row.credential_id, zone: row.zone, status: row.status, message: row.message, createdAt: row.created_at, finishedAt: row.finished_at };
}

async function testSteps(db: Db, testId: string, since: string): Promise<ZoneTestView["steps"]> {
  // Test ids are [A-Za-z0-9_] only, so the LIKE pattern needs no escaping.
  const rows = await db
    .selectFrom("events")
    .select(["id", "at", "type", "severity", "message"])
    .where("type", "in", ZONE_TEST_EVENT_TYPES)
    .where("at", ">=", since)
    .where("detail", "like", `%"testId":"${testId}"%`)
    .orderBy("id")
    .limit(500)
    .execute();
  return rows.map((r) => ({ id: Number(r.id), at: r.at, type: r.type, severity: r.severity, message: r.message }));
}
