import net from "node:net";
import { z } from "zod";
import { writeAudit, type Actor } from "../audit";
import type { Db } from "../db";
import { isUniqueViolation } from "../db/connection";
import type { ListenersTable } from "../db/schema";
import { AppError, notFound } from "../errors";
import { newId, nowIso } from "../ids";
import { parseSubjectAltName } from "../pki/names";
import { bumpEdgeRevision } from "./revision";

// Listeners: where the worker's edge serves certificates (HTTPS, by SNI name) and answers
// HTTP (redirect to HTTPS or proxy, and always ACME HTTP-01 tokens).

const portField = z.coerce
  .number({ error: "the port must be a number between 1 and 65535" })
  .int("the port must be a whole number")
  .min(1, "the port must be between 1 and 65535")
  .max(65535, "the port must be between 1 and 65535");

const bindField = z
  .string()
  .trim()
  .min(1, "enter the address to listen on, like 0.0.0.0 (every IPv4 address) or :: (every address)")
  .refine((v) => net.isIP(v) !== 0, "the bind address must be an IP address, like 0.0.0.0, ::, or 127.0.0.1");

const upstreamField = z
  .string()
  .trim()
  .max(2000)
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === "http:" || u.protocol === "https:") && Boolean(u.hostname);
    } catch {
      return false;
    }
  }, "the upstream must be an http:// or https:// URL, like http://127.0.0.1:3000");

const optionalText = (schema: z.ZodType<string>) =>
  z
    .union([z.literal(""), z.null(), schema])
    .optional()
    .transform((v) => (v === "" || v === null ? undefined : v));

const booleanish = (error?: string) =>
  z.union([z.boolean(), z.enum(["true", "false", "on", "1", "0"])], error ? { error } : undefined).transform((v) => v === true || v === "true" || v === "on" || v === "1");

export const listenerInputSchema = z
  .object({
    name: z.string().trim().min(1, "give the listener a name, like 'public https'").max(100, "use at most 100 characters"),
    kind: z.enum(["https", "http"], { error: "kind must be https or http" }),
    bindAddress: bindField.default("0.0.0.0"),
    port: portField,
    upstreamUrl: optionalText(upstreamField),
    /** For an https:// upstream: false accepts whatever certificate it serves (self-signed, expired, another name). */
    upstreamTlsVerify: booleanish("upstreamTlsVerify must be true (check an https upstream's certificate) or false (accept any)").default(true),
    minTlsVersion: z.enum(["TLSv1.2", "TLSv1.3"], { error: "minimum TLS version must be TLSv1.2 or TLSv1.3" }).default("TLSv1.2"),
    defaultCertificateId: optionalText(z.string().max(100)),
    fallbackPolicy: z.enum(["self_signed", "refuse"], { error: "fallback must be self_signed or refuse" }).default("self_signed"),
    httpAction: z.enum(["redirect", "proxy"], { error: "the HTTP action must be redirect or proxy" }).default("redirect"),
    redirectPort: portField.default(443),
    enabled: booleanish().default(true),
  })
  .superRefine((v, ctx) => {
    if (v.kind === "https" && !v.upstreamUrl) {
      ctx.addIssue({ code: "custom", path: ["upstreamUrl"], message: "an HTTPS listener needs the upstream URL it proxies to, like http://127.0.0.1:3000" });
    }
    if (v.kind === "http" && v.httpAction === "proxy" && !v.upstreamUrl) {
      ctx.addIssue({ code: "custom", path: ["upstreamUrl"], message: "to proxy plain HTTP, give the upstream URL; or choose redirect to HTTPS" });
    }
  });

export type ListenerInput = z.input<typeof listenerInputSchema>;

export type ListenerView = {
  id: string;
  name: string;
  kind: "https" | "http";
  bindAddress: string;
  port: number;
  upstreamUrl: string | null;
  upstreamTlsVerify: boolean;
  minTlsVersion: "TLSv1.2" | "TLSv1.3";
  defaultCertificateId: string | null;
  fallbackPolicy: "self_signed" | "refuse";
  httpAction: "redirect" | "proxy" | null;
  redirectPort: number | null;
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
};

export function toListenerView(r: ListenersTable): ListenerView {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    bindAddress: r.bind_address,
    port: Number(r.port),
    upstreamUrl: r.upstream_url,
    upstreamTlsVerify: Boolean(Number(r.upstream_tls_verify)),
    minTlsVersion: r.min_tls_version,
    defaultCertificateId: r.default_certificate_id,
    fallbackPolicy: r.fallback_policy,
    httpAction: r.http_action,
    redirectPort: r.redirect_port === null ? null : Number(r.redirect_port),
    enabled: Boolean(r.enabled),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

function fieldErrorsOf(error: z.ZodError): Record<string, string[]> {
  return z.flattenError(error).fieldErrors as Record<string, string[]>;
}

const WILDCARD_V4 = "0.0.0.0";
const WILDCARD_V6 = "::";

/** Two binds collide when their ports match and one address covers the other. */
function bindsOverlap(a: string, b: string): boolean {
  if (a === b) return true;
  const family = (x: string) => net.isIP(x);
  if (a === WILDCARD_V6 || b === WILDCARD_V6) return true; // :: takes IPv4 too (dual stack)
  if (a === WILDCARD_V4) return family(b) === 4;
  if (b === WILDCARD_V4) return family(a) === 4;
  return false;
}

/** Can this process open the port? Catches "in use by another program" and "needs root" before saving. */
export function probePort(bindAddress: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE") resolve(`port ${port} on ${bindAddress} is already in use by another program; stop it or pick another port`);
      else if (err.code === "EACCES") resolve(`not allowed to listen on port ${port}: ports below 1024 need root or the CAP_NET_BIND_SERVICE capability`);
      else if (err.code === "EADDRNOTAVAIL") resolve(`${bindAddress} is not an address of this machine`);
      else resolve(`cannot listen on ${bindAddress}:${port} (${err.code ?? err.message})`);
    });
    server.listen({ host: bindAddress, port, exclusive: true }, () => server.close(() => resolve(null)));
  });
}

async function validateListener(db: Db, input: unknown, existing?: ListenersTable) {
  const parsed = listenerInputSchema.safeParse(input);
  if (!parsed.success) throw new AppError("validation_failed", "the listener was not saved: check the highlighted fields", fieldErrorsOf(parsed.error));
  const v = parsed.data;
  const fieldErrors: Record<string, string[]> = {};
  const others = await db.selectFrom("listeners").select(["id", "name", "bind_address", "port"]).where("port", "=", v.port).execute();
  const clash = others.find((o) => o.id !== existing?.id && bindsOverlap(o.bind_address, v.bindAddress));
  if (clash) fieldErrors.port = [`listener "${clash.name}" already uses ${clash.bind_address}:${clash.port}`];
  if (v.defaultCertificateId) {
    const cert = await db.selectFrom("certificates").select("id").where("id", "=", v.defaultCertificateId).executeTakeFirst();
    if (!cert) fieldErrors.defaultCertificateId = ["that certificate does not exist"];
  }
  // The edge already holds this listener's port: moving it between addresses on the same port
  // (127.0.0.1 → 0.0.0.0) cannot be probed from here, and the edge reports a failure itself.
  const portChanged = !existing || existing.port !== v.port || !existing.enabled;
  if (!clash && v.enabled && portChanged) {
    const problem = await probePort(v.bindAddress, v.port);
    if (problem) fieldErrors.port = [problem];
  }
  if (Object.keys(fieldErrors).length) throw new AppError("validation_failed", "the listener was not saved: check the highlighted fields", fieldErrors);
  return v;
}

function rowValues(v: z.output<typeof listenerInputSchema>) {
  return {
    name: v.name,
    kind: v.kind,
    bind_address: v.bindAddress,
    port: v.port,
    upstream_url: v.upstreamUrl ?? null,
    upstream_tls_verify: v.upstreamTlsVerify ? 1 : 0,
    min_tls_version: v.minTlsVersion,
    default_certificate_id: v.kind === "https" ? (v.defaultCertificateId ?? null) : null,
    fallback_policy: v.fallbackPolicy,
    http_action: v.kind === "http" ? v.httpAction : null,
    redirect_port: v.kind === "http" ? v.redirectPort : null,
    enabled: v.enabled ? 1 : 0,
  };
}

/** The unique index that a concurrent save ran into: the name, or the address and port. */
function conflictFor(err: unknown, v: { name: string; bindAddress: string; port: number }): AppError {
  const text = `${(err as { constraint?: string }).constraint ?? ""} ${(err as Error).message}`;
  if (/bind_port|bind_address/.test(text)) {
    return new AppError("conflict", `another listener already uses ${v.bindAddress}:${v.port}`, { port: [`another listener already uses ${v.bindAddress}:${v.port}`] });
  }
  return new AppError("conflict", `a listener named "${v.name}" already exists`, { name: ["choose another name"] });
}

export async function createListener(db: Db, actor: Actor, input: unknown): Promise<ListenerView> {
  const v = await validateListener(db, input);
  const at = nowIso();
  const row: ListenersTable = { id: newId("lst"), ...rowValues(v), fallback_chain_pem: null, fallback_sealed_key: null, created_at: at, updated_at: at };
  try {
    await db.insertInto("listeners").values(row).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw conflictFor(err, v);
    throw err;
  }
  await bumpEdgeRevision(db);
  await writeAudit(db, actor, "listener.create", { type: "listener", id: row.id }, { name: row.name, bind: `${row.bind_address}:${row.port}`, upstreamTlsVerify: v.upstreamTlsVerify });
  return toListenerView(row);
}

export async function updateListener(db: Db, actor: Actor, id: string, input: unknown): Promise<ListenerView> {
  const existing = await db.selectFrom("listeners").selectAll().where("id", "=", id).executeTakeFirst();
  if (!existing) throw notFound("that listener");
  const v = await validateListener(db, input, existing);
  if (v.kind !== existing.kind) throw new AppError("validation_failed", "a listener's kind cannot change; create a new listener instead", { kind: ["cannot change"] });
  try {
    await db.updateTable("listeners").set({ ...rowValues(v), updated_at: nowIso() }).where("id", "=", id).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw conflictFor(err, v);
    throw err;
  }
  await bumpEdgeRevision(db);
  await writeAudit(db, actor, "listener.update", { type: "listener", id }, { name: v.name, bind: `${v.bindAddress}:${v.port}`, enabled: v.enabled, upstreamTlsVerify: v.upstreamTlsVerify });
  return (await getListener(db, id))!;
}

export async function deleteListener(db: Db, actor: Actor, id: string) {
  const existing = await getListener(db, id);
  if (!existing) throw notFound("that listener");
  await db.deleteFrom("listeners").where("id", "=", id).execute();
  await bumpEdgeRevision(db);
  await writeAudit(db, actor, "listener.delete", { type: "listener", id }, { name: existing.name });
  return existing;
}

export async function getListener(db: Db, id: string): Promise<ListenerView | undefined> {
  const row = await db.selectFrom("listeners").selectAll().where("id", "=", id).executeTakeFirst();
  return row ? toListenerView(row) : undefined;
}

export async function listListeners(db: Db): Promise<ListenerView[]> {
  const rows = await db.selectFrom("listeners").selectAll().orderBy("port").orderBy("name").execute();
  return rows.map(toListenerView);
}

// ---------------------------------------------------------------------------------------------
// Mappings: hostname → certificate on a listener.

/** Does a certificate with these names cover this SNI hostname? Exact, or a one-label wildcard. */
export function certificateCovers(domains: string[], hostname: string): boolean {
  const host = hostname.toLowerCase();
  return domains.some((d) => {
    const name = d.toLowerCase();
    if (name === host) return true;
    if (name.startsWith("*.") && !host.startsWith("*.")) {
      const dot = host.indexOf(".");
      return dot > 0 && host.slice(dot + 1) === name.slice(2);
    }
    return false;
  });
}

const mappingsSchema = z.object({
  mappings: z
    .array(
      z.object({
        hostname: z.string({ error: "each mapping needs a hostname" }).trim().max(300),
        certificateId: z.string({ error: "each mapping needs a certificateId" }).trim().min(1, "choose a certificate").max(100),
      }),
      { error: "mappings must be a list of {hostname, certificateId}" },
    )
    .max(10_000, "at most 10,000 mappings per listener"),
});

export type MappingView = {
  hostname: string;
  certificateId: string;
  certificateName: string;
  certificateStatus: string;
  notAfter: string | null;
  covers: boolean;
  warnings: string[];
};

/** Refuses bad names, IP addresses, duplicates and unknown or unissued certificates, all at once. */
async function validateMappingEntries(db: Db, mappings: { hostname: string; certificateId: string }[]) {
  const errors: string[] = [];
  const seen = new Set<string>();
  const entries: { hostname: string; certificateId: string }[] = [];
  for (const m of mappings) {
    const name = parseSubjectAltName(m.hostname);
    if (!name.ok) {
      errors.push(`${JSON.stringify(m.hostname)}: ${name.message}`);
      continue;
    }
    if (name.entry.type === "ip") {
      errors.push(`${m.hostname}: clients do not send IP addresses as SNI names; make the certificate the listener's default instead`);
      continue;
    }
    if (seen.has(name.entry.value)) {
      errors.push(`${name.entry.value} is mapped twice; a name can point at one certificate only`);
      continue;
    }
    seen.add(name.entry.value);
    entries.push({ hostname: name.entry.value, certificateId: m.certificateId });
  }
  const certIds = [...new Set(entries.map((e) => e.certificateId))];
  const certs = certIds.length
    ? await db.selectFrom("certificates").select(["id", "name", "domains", "status", "not_after", "chain_pem"]).where("id", "in", certIds).execute()
    : [];
  const byId = new Map(certs.map((c) => [c.id, c]));
  for (const e of entries) {
    const cert = byId.get(e.certificateId);
    if (!cert) errors.push(`${e.hostname}: certificate ${e.certificateId} does not exist`);
    else if (!cert.chain_pem) errors.push(`${e.hostname}: certificate "${cert.name}" has not been issued yet`);
  }
  if (errors.length) throw new AppError("validation_failed", `the mappings were not saved: ${errors.join("; ")}`, { mappings: errors });
  return entries;
}

/** Replaces a listener's mappings. Refuses bad names and unknown certificates; warns about the rest. */
export async function setMappings(db: Db, actor: Actor, listenerId: string, input: unknown): Promise<{ mappings: MappingView[]; warnings: string[] }> {
  const listener = await getListener(db, listenerId);
  if (!listener) throw notFound("that listener");
  if (listener.kind !== "https") throw new AppError("validation_failed", "only HTTPS listeners serve certificates; map names on an HTTPS listener");
  const parsed = mappingsSchema.safeParse(input);
  if (!parsed.success) throw new AppError("validation_failed", parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  const entries = await validateMappingEntries(db, parsed.data.mappings);

  const at = nowIso();
  // Only the rows that differ are written: the API replaces the whole list, and at 10,000 mappings
  // rewriting every row for one change took most of a second.
  const changed = await db.transaction().execute(async (trx) => {
    const current = new Map(
      (await trx.selectFrom("certificate_mappings").select(["hostname", "certificate_id"]).where("listener_id", "=", listenerId).execute()).map((m) => [m.hostname, m.certificate_id]),
    );
    const wanted = new Set(entries.map((e) => e.hostname));
    const removed = [...current.keys()].filter((h) => !wanted.has(h));
    const added = entries.filter((e) => !current.has(e.hostname));
    const moved = new Map<string, string[]>(); // certificate id → hostnames that now point at it
    for (const e of entries) {
      const before = current.get(e.hostname);
      if (before === undefined || before === e.certificateId) continue;
      const hostnames = moved.get(e.certificateId);
      if (hostnames) hostnames.push(e.hostname);
      else moved.set(e.certificateId, [e.hostname]);
    }
    for (let i = 0; i < removed.length; i += 500) {
      await trx.deleteFrom("certificate_mappings").where("listener_id", "=", listenerId).where("hostname", "in", removed.slice(i, i + 500)).execute();
    }
    for (const [certificateId, hostnames] of moved) {
      for (let i = 0; i < hostnames.length; i += 500) {
        await trx.updateTable("certificate_mappings").set({ certificate_id: certificateId }).where("listener_id", "=", listenerId).where("hostname", "in", hostnames.slice(i, i + 500)).execute();
      }
    }
    for (let i = 0; i < added.length; i += 500) {
      await trx
        .insertInto("certificate_mappings")
        .values(added.slice(i, i + 500).map((e) => ({ id: newId("map"), listener_id: listenerId, hostname: e.hostname, certificate_id: e.certificateId, created_at: at })))
        .execute();
    }
    return removed.length + added.length + moved.size > 0;
  });
  if (changed) await bumpEdgeRevision(db);
  await writeAudit(db, actor, "listener.mappings", { type: "listener", id: listenerId }, { count: entries.length });
  const mappings = await listMappings(db, listenerId);
  return { mappings, warnings: mappings.flatMap((m) => m.warnings.map((w) => `${m.hostname}: ${w}`)) };
}

/** "Serve on <listener>": maps every DNS name the certificate covers to it, replacing earlier mappings of those names. */
export async function serveCertificateOnListener(db: Db, actor: Actor, listenerId: string, certificateId: string) {
  const cert = await db.selectFrom("certificates").select(["id", "name", "domains"]).where("id", "=", certificateId).executeTakeFirst();
  if (!cert) throw notFound("that certificate");
  const names = (JSON.parse(cert.domains) as string[]).filter((d) => net.isIP(d) === 0);
  const current = await db.selectFrom("certificate_mappings").select(["hostname", "certificate_id"]).where("listener_id", "=", listenerId).execute();
  const kept = current.filter((m) => !names.includes(m.hostname)).map((m) => ({ hostname: m.hostname, certificateId: m.certificate_id }));
  const result = await setMappings(db, actor, listenerId, { mappings: [...kept, ...names.map((hostname) => ({ hostname, certificateId }))] });
  return { ...result, mapped: names };
}

export async function listMappings(db: Db, listenerId: string, now: Date = new Date()): Promise<MappingView[]> {
  const rows = await db
    .selectFrom("certificate_mappings")
    .innerJoin("certificates", "certificates.id", "certificate_mappings.certificate_id")
    .select([
      "certificate_mappings.hostname",
      "certificate_mappings.certificate_id",
      "certificates.name",
      "certificates.status",
      "certificates.domains",
      "certificates.not_after",
    ])
    .where("certificate_mappings.listener_id", "=", listenerId)
    .orderBy("certificate_mappings.hostname")
    .execute();
  const otherListeners = await db
    .selectFrom("certificate_mappings")
    .innerJoin("listeners", "listeners.id", "certificate_mappings.listener_id")
    .select(["certificate_mappings.hostname", "certificate_mappings.certificate_id", "listeners.name", "listeners.port", "listeners.bind_address"])
    .where("certificate_mappings.listener_id", "!=", listenerId)
    .execute();
  const listener = await getListener(db, listenerId);
  return rows.map((r) => {
    const domains = JSON.parse(r.domains) as string[];
    // A wildcard mapping is covered only by the same wildcard name.
    const covers = domains.includes(r.hostname) || certificateCovers(domains, r.hostname);
    const warnings: string[] = [];
    if (!covers) warnings.push(`certificate "${r.name}" does not cover ${r.hostname}; clients will reject it`);
    if (r.not_after && Date.parse(r.not_after) <= now.getTime()) warnings.push(`certificate "${r.name}" expired on ${r.not_after.slice(0, 10)}`);
    const twin = otherListeners.find(
      (o) => o.hostname === r.hostname && listener && Number(o.port) === listener.port && bindsOverlap(o.bind_address, listener.bindAddress) && o.certificate_id !== r.certificate_id,
    );
    if (twin) warnings.push(`also mapped to another certificate on listener "${twin.name}", which shares this address and port`);
    return {
      hostname: r.hostname,
      certificateId: r.certificate_id,
      certificateName: r.name,
      certificateStatus: r.status,
      notAfter: r.not_after,
      covers,
      warnings,
    };
  });
}

/** Certificates that cover a hostname, best first (active, latest expiry). */
export async function suggestCertificates(db: Db, hostname: string) {
  const rows = await db
    .selectFrom("certificates")
    .select(["id", "name", "domains", "status", "not_after"])
    .where("chain_pem", "is not", null)
    .execute();
  return rows
    .filter((r) => certificateCovers(JSON.parse(r.domains) as string[], hostname))
    .sort((a, b) => Number(b.status === "active") - Number(a.status === "active") || String(b.not_after).localeCompare(String(a.not_after)))
    .map((r) => ({ id: r.id, name: r.name, status: r.status, notAfter: r.not_after }));
}

export async function listChecks(db: Db, listenerId: string) {
  return db.selectFrom("listener_checks").selectAll().where("listener_id", "=", listenerId).orderBy("hostname").execute();
}

/** A served-certificate check as the REST API and the CLI's --json show it. */
export function checkView(c: Awaited<ReturnType<typeof listChecks>>[number]) {
  return {
    hostname: c.hostname,
    status: c.status,
    checkedAt: c.checked_at,
    expectedFingerprint: c.expected_fingerprint,
    servedFingerprint: c.served_fingerprint,
    servedSubject: c.served_subject,
    detail: c.detail,
  };
}

/** The edge's latest word on opening this listener's port: a failure still in force, or nothing. */
export async function listenerBindProblem(db: Db, listenerId: string): Promise<{ at: string; message: string } | null> {
  const latest = await db
    .selectFrom("events")
    .select(["type", "at", "message"])
    .where("listener_id", "=", listenerId)
    .where("type", "in", ["listener.bind_failed", "listener.bound"])
    .orderBy("id", "desc")
    .executeTakeFirst();
  return latest?.type === "listener.bind_failed" ? { at: latest.at, message: latest.message } : null;
}


/** Adds one mapping; a name already mapped on this listener is refused, also under a race. */
export async function addMapping(db: Db, actor: Actor, listenerId: string, mapping: { hostname: string; certificateId: string }) {
  const listener = await getListener(db, listenerId);
  if (!listener) throw notFound("that listener");
  if (listener.kind !== "https") throw new AppError("validation_failed", "only HTTPS listeners serve certificates");
  const [entry] = await validateMappingEntries(db, [mapping]).catch((err: unknown) => {
    if (err instanceof AppError && err.fieldErrors?.mappings) throw new AppError(err.code, "the mapping was not added", { hostname: err.fieldErrors.mappings });
    throw err;
  });
  try {
    await db.insertInto("certificate_mappings").values({ id: newId("map"), listener_id: listenerId, hostname: entry.hostname, certificate_id: entry.certificateId, created_at: nowIso() }).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw new AppError("conflict", `${entry.hostname} is already mapped`, { hostname: ["already mapped; change or remove it in the table"] });
    throw err;
  }
  await bumpEdgeRevision(db);
  await writeAudit(db, actor, "listener.mapping_add", { type: "listener", id: listenerId }, entry);
  return (await listMappings(db, listenerId)).find((m) => m.hostname === entry.hostname)!;
}

export async function removeMapping(db: Db, actor: Actor, listenerId: string, hostname: string) {
  const removed = await db.deleteFrom("certificate_mappings").where("listener_id", "=", listenerId).where("hostname", "=", hostname).executeTakeFirst();
  if (Number(removed.numDeletedRows) === 0) throw notFound(`a mapping for ${hostname}`);
  await bumpEdgeRevision(db);
  await writeAudit(db, actor, "listener.mapping_remove", { type: "listener", id: listenerId }, { hostname });
}
