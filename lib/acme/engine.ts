import crypto from "node:crypto";
import type { Selectable, Updateable } from "kysely";
import type { Logger } from "pino";
import { keyContext } from "../certificates";
import type { Keyring } from "../crypto/seal";
import type { Db } from "../db";
import { type DnsSettings } from "../dns/credentials";
import { formatElapsed, type PropagationOptions } from "../dns/propagation";
import { DnsProblem } from "../dns/provider";
import { DnsSolver, type PresentedRecord } from "../dns/solver";
import { runQueuedZoneTests } from "../dns/zone-tests";
import type { AcmeChallengeType, CertificatesTable, CertificateStatus } from "../db/schema";
import { recordEvent } from "../events";
import { WakeableLoop } from "../events/wake-loop";
import { newId, nowIso } from "../ids";
import { bumpEdgeRevision } from "../listeners/revision";
import { inspectCertificatePem } from "../pki/inspect";
import { exportPrivateKeyPem, generateKeyPair, isKeyType } from "../pki/keys";
import { accountClient } from "./accounts";
import { acme, AcmeProblemError, readDirectory } from "./client";
import { caName, explainAcmeError, formatFailure, type AcmeFailure } from "./errors";
import { checkNewOrder, recordFailedValidation, recordNewOrder } from "./ratelimit";
import { ARI_RECHECK_MS, ariCertId, ariRenewal, lifetimeRenewal, nextAttemptAfterFailure, type RenewalPlan, type RenewalWindow } from "./schedule";

// The engine role: claims certificates that are due with a lease, runs their ACME orders step by
// step, stores what the CA issues as a new version, and schedules the next renewal. Everything it
// knows lives in the database, so a worker killed at any step leaves work the next one can finish.

export type EngineStep = "claimed" | "order_created" | "challenge_presented" | "challenge_valid" | "finalizing" | "finalized" | "stored";

export type EngineOptions = {
  db: Db;
  keyring: Keyring;
  log: Logger;
  /** How long a claim holds without a heartbeat; a killed worker's claim lapses after this. */
  leaseMs?: number;
  /** Orders run at the same time by this worker. */
  concurrency?: number;
  pollMs?: number;
  now?: () => Date;
  workerId?: string;
  /** Called after each step is durable: tests kill the process here. */
  onStep?: (step: EngineStep, certificateId: string) => void | Promise<void>;
  /** DNS-01: where providers are reached, the resolvers to ask, and the propagation timeout (tests shorten it). */
  dns?: { settings: DnsSettings; propagation?: PropagationOptions };
};

const CHALLENGE_TTL_MS = 60 * 60_000;
const MIN_RENEWAL_GAP_MS = 60 * 60_000;
const DATABASE_RETRY_MS = 15_000;
const DNS_SWEEP_MS = 60_000;
const challengeKeyContext = (id: string) => `acme-challenge:${id}`;
export const pendingKeyContext = (certificateId: string) => `certificate-pending-key:${certificateId}`;

class LeaseLost extends Error {
  constructor() {
    super("another worker took over this certificate (the lease lapsed)");
  }
}

type Row = Selectable<CertificatesTable>;
type Challenge = Parameters<acme.Client["completeChallenge"]>[0];
type OrderRequest = Parameters<acme.Client["createOrder"]>[0];

export class AcmeEngine {
  private readonly running = new Map<string, Promise<void>>();
  private readonly directoryInfo = new Map<string, { renewalInfo?: string; at: number }>();
  private readonly loop: WakeableLoop;
  private zoneTests?: Promise<void>;
  private lastDnsSweep = 0;
  readonly workerId: string;
  readonly dns: DnsSolver;

  constructor(private readonly opts: EngineOptions) {
    this.workerId = opts.workerId ?? `worker-${process.pid}-${crypto.randomBytes(3).toString("hex")}`;
    this.dns = new DnsSolver({ db: opts.db, keyring: opts.keyring, log: opts.log, settings: opts.dns?.settings ?? {}, propagation: opts.dns?.propagation, now: () => this.now });
    this.loop = new WakeableLoop({
      db: opts.db,
      pass: () => this.tick(),
      nextDelayMs: () => opts.pollMs ?? 1000,
      onError: (err) => opts.log.error({ err }, "engine: could not look for due certificates; trying again"),
    });
  }

  private get now() {
    return this.opts.now?.() ?? new Date();
  }
  private get leaseMs() {
    return this.opts.leaseMs ?? 120_000;
  }

  start() {
    // New certificates and "Renew now" arrive as events: look at once instead of at the next poll.
    this.loop.start();
  }

  async stop() {
    await this.loop.stop();
    await Promise.allSettled(this.running.values());
    await this.zoneTests;
  }

  /** One look at the database: start every due certificate there is room for, and refresh renewal information. */
  async tick(): Promise<void> {
    const { db } = this.opts;
    const now = nowIso(this.now);
    const room = (this.opts.concurrency ?? 8) - this.running.size;
    if (room > 0) {
      const due = await db
        .selectFrom("certificates")
        .select("id")
        .where("source", "=", "acme")
        .where("next_attempt_at", "<=", now)
        .where((eb) => eb.or([eb("lease_expires_at", "is", null), eb("lease_expires_at", "<", now)]))
        .orderBy("next_attempt_at")
        .limit(room + this.running.size)
        .execute();
      for (const { id } of due) {
        if (this.running.size >= (this.opts.concurrency ?? 8)) break;
        if (this.running.has(id) || !(await this.claim(id))) continue;
        const run = this.run(id).finally(() => {
          this.running.delete(id);
          this.loop.wake(); // room for the next one in the queue
        });
        this.running.set(id, run);
      }
    }
    await this.refreshRenewalInformation().catch((err: unknown) => this.opts.log.warn({ err }, "engine: renewal information check failed"));
    this.zoneTests ??= runQueuedZoneTests(db, this.dns, this.workerId, () => this.now)
      .then(() => undefined)
      .catch((err: unknown) => this.opts.log.error({ err }, "engine: a DNS zone test failed to run"))
      .finally(() => (this.zoneTests = undefined));
    if (Date.now() - this.lastDnsSweep >= DNS_SWEEP_MS) {
      this.lastDnsSweep = Date.now();
      await this.sweepDnsRecords();
    }
  }

  /** TXT records left by crashed workers or failed deletes are removed here, at start and every minute. */
  async sweepDnsRecords() {
    const outcome = await this.dns.sweep().catch((err: unknown) => {
      this.opts.log.warn({ err }, "engine: the DNS record sweep failed");
      return undefined;
    });
    if (outcome?.removed.length) this.opts.log.info({ removed: outcome.removed }, "engine: removed TXT records left behind by earlier orders");
  }

  /** Runs every due certificate to its end; for tests and the CLI. */
  async drain() {
    await this.tick();
    while (this.running.size) {
      await Promise.allSettled(this.running.values());
      await this.tick();
    }
    await this.zoneTests;
  }

  private async claim(id: string): Promise<boolean> {
    const now = this.now;
    const result = await this.opts.db
      .updateTable("certificates")
      .set({ lease_owner: this.workerId, lease_expires_at: nowIso(new Date(now.getTime() + this.leaseMs)) })
      .where("id", "=", id)
      .where("next_attempt_at", "<=", nowIso(now))
      .where((eb) => eb.or([eb("lease_expires_at", "is", null), eb("lease_expires_at", "<", nowIso(now))]))
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  private async heartbeat(id: string): Promise<boolean> {
    const result = await this.opts.db
      .updateTable("certificates")
      .set({ lease_expires_at: nowIso(new Date(this.now.getTime() + this.leaseMs)) })
      .where("id", "=", id)
      .where("lease_owner", "=", this.workerId)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  private async run(id: string) {
    let lost = false;
    const beat = setInterval(() => {
      this.heartbeat(id)
        .then((held) => (lost ||= !held))
        .catch(() => {});
    }, Math.max(200, this.leaseMs / 3));
    const ctx: RunContext = {
      id,
      assertLease: () => {
        if (lost) throw new LeaseLost();
      },
      step: async (step) => {
        if (lost) throw new LeaseLost();
        await this.opts.onStep?.(step, id);
      },
    };
    try {
      await this.order(ctx);
    } catch (err) {
      if (err instanceof LeaseLost) this.opts.log.warn({ certificateId: id }, err.message);
      else if (isDatabaseError(err)) await this.databaseTrouble(ctx, err);
      else await this.fail(ctx, err).catch((e: unknown) => this.opts.log.error({ err: e, certificateId: id }, "engine: could not record a failure"));
    } finally {
      clearInterval(beat);
      await this.opts.db.deleteFrom("acme_challenges").where("certificate_id", "=", id).execute().catch(() => {});
      await this.releaseDnsRecords(ctx).catch((err: unknown) => this.opts.log.warn({ err, certificateId: id }, "engine: could not release DNS records; the sweep removes them"));
      await this.opts.db
        .updateTable("certificates")
        .set({ lease_owner: null, lease_expires_at: null })
        .where("id", "=", id)
        .where("lease_owner", "=", this.workerId)
        .execute()
        .catch(() => {});
    }
  }

  private async load(id: string): Promise<Row> {
    return this.opts.db.selectFrom("certificates").selectAll().where("id", "=", id).executeTakeFirstOrThrow();
  }

  private async update(ctx: RunContext, values: Updateable<CertificatesTable>) {
    ctx.assertLease();
    await this.opts.db
      .updateTable("certificates")
      .set({ ...values, updated_at: nowIso(this.now) })
      .where("id", "=", ctx.id)
      .where("lease_owner", "=", this.workerId)
      .execute();
  }

  private event(ctx: RunContext, type: string, message: string, detail?: Record<string, unknown>, severity: "info" | "warning" | "error" = "info") {
    return recordEvent(this.opts.db, { type, certificateId: ctx.id, message, detail, severity }, this.now);
  }

  /** The whole order, resumed from whatever a previous (possibly killed) run left. */
  private async order(ctx: RunContext) {
    const { db, keyring } = this.opts;
    let row = await this.load(ctx.id);
    const domains = JSON.parse(row.domains) as string[];
    const renewing = Boolean(row.chain_pem);
    const status: CertificateStatus = renewing ? "renewing" : "requesting";
    ctx.row = row;
    ctx.challenge = (row.challenge ?? "http-01") as AcmeChallengeType;
    if (!row.acme_account_id) throw new Error("the certificate has no ACME account; delete it and request it again");
    const { client, directoryUrl } = await accountClient(db, keyring, row.acme_account_id);
    ctx.directoryUrl = directoryUrl;
    const ca = caName(directoryUrl);
    await this.update(ctx, { status, acme_step: row.order_url ? row.acme_step : "ordering" });
    await this.event(ctx, renewing ? "tls.renewing" : "tls.requesting", renewing ? `Renewing "${row.name}" with ${ca}: ${row.renew_reason ?? "renewal due"}` : `Requesting "${row.name}" from ${ca}`, { status, attempt: row.attempts + 1 });
    await ctx.step("claimed");

    let order: acme.Order | undefined;
    if (row.order_url) {
      order = await client.getOrder({ url: row.order_url } as unknown as acme.Order).catch(() => undefined);
      if (!order || order.status === "invalid" || (order.status === "valid" && !row.pending_sealed_key)) order = undefined;
      else await this.event(ctx, "acme.order_resumed", `Resumed the order left by an earlier run (status ${order.status})`, { orderUrl: row.order_url, orderStatus: order.status });
    }
    if (!order) order = await this.newOrder(ctx, client, row, domains);

    if (order.status === "pending") {
      await this.authorize(ctx, client, order);
      order = await client.getOrder(order);
    }

    // The key the CSR is made from is sealed into the row before finalizing, so that a run killed
    // after the CA issued can still pair the certificate with its key.
    row = await this.load(ctx.id);
    let keyPem: string;
    if (row.pending_sealed_key) {
      keyPem = keyring.open(row.pending_sealed_key, pendingKeyContext(ctx.id));
    } else {
      const keyType = isKeyType(row.key_type) ? row.key_type : "ecdsa-p256";
      keyPem = await exportPrivateKeyPem((await generateKeyPair(keyType)).privateKey);
      await this.update(ctx, { pending_sealed_key: keyring.seal(keyPem, pendingKeyContext(ctx.id)), acme_step: "finalizing" });
    }
    await ctx.step("finalizing");
    if (order.status === "ready") {
      const [, csr] = await acme.crypto.createCsr({ commonName: domains.find((d) => !d.startsWith("*.")) ?? domains[0], altNames: domains }, keyPem);
      order = await client.finalizeOrder(order, csr);
      await this.event(ctx, "acme.finalized", `Sent the certificate signing request; ${ca} is issuing`, { orderStatus: order.status });
    }
    if (order.status !== "valid") order = await client.waitForValidStatus(order);
    await this.update(ctx, { acme_step: "downloading" });
    await ctx.step("finalized");
    const chainPem = await client.getCertificate(order);
    await this.store(ctx, chainPem, keyPem);
    await ctx.step("stored");
  }

  private async newOrder(ctx: RunContext, client: acme.Client, row: Row, domains: string[]): Promise<acme.Order> {
    const directoryUrl = ctx.directoryUrl!;
    const renewalInfo = await this.renewalInfoUrl(client, directoryUrl);
    const window = parseWindow(row.ari_window);
    const now = this.now;
    // A renewal inside the CA's suggested window is exempt from Let's Encrypt's limits.
    const exempt = Boolean(row.chain_pem && renewalInfo && window && window.start <= now);
    const verdict = await checkNewOrder(this.opts.db, { directoryUrl, names: domains, exempt, now });
    if (!verdict.allowed && !row.force_next_order) {
      throw new RateLimitRefusal(verdict.message, verdict.nextSlotAt);
    }
    const replaces = row.chain_pem && renewalInfo ? certIdOf(row.chain_pem) : undefined;
    const payload: Record<string, unknown> = { identifiers: domains.map((value) => ({ type: "dns", value })) };
    if (replaces) payload.replaces = replaces;
    let order: acme.Order;
    try {
      order = await client.createOrder(payload as unknown as OrderRequest);
    } catch (err) {
      // A CA that refuses the replacement hint (already replaced, unknown certificate) still takes a plain order.
      if (!replaces || !(err instanceof AcmeProblemError) || !/alreadyReplaced|malformed|conflict/i.test(`${err.problem.type} ${err.httpStatus === 409 ? "conflict" : ""}`)) throw err;
      delete payload.replaces;
      order = await client.createOrder(payload as unknown as OrderRequest);
    }
    await recordNewOrder(this.opts.db, { directoryUrl, names: domains, certificateId: ctx.id, exempt, now });
    await this.update(ctx, { order_url: order.url, pending_sealed_key: null, acme_step: "authorizing", force_next_order: null });
    await this.event(ctx, "acme.order_created", `Order created at ${caName(directoryUrl)} for ${domains.join(", ")}${payload.replaces ? " (replacing the current certificate)" : ""}${exempt ? "; inside the renewal window, so not counted against rate limits" : ""}`, {
      orderUrl: order.url,
      replaces: payload.replaces ?? null,
      exempt,
    });
    await ctx.step("order_created");
    return order;
  }

  private async authorize(ctx: RunContext, client: acme.Client, order: acme.Order) {
    const type = ctx.challenge!;
    const authorizations = await client.getAuthorizations(order);
    const pending = authorizations.filter((a) => a.status !== "valid");
    await this.update(ctx, { acme_step: "validating" });
    // Publish every answer first, then ask the CA to check them all at once.
    const presented = [] as { authz: acme.Authorization; challenge: Challenge }[];
    for (const authz of pending) {
      const challenge = authz.challenges.find((c) => c.type === type);
      const name = authz.identifier.value;
      if (!challenge) {
        const offered = authz.challenges.map((c) => c.type).join(", ") || "none";
        throw new Error(`${caName(ctx.directoryUrl!)} does not offer ${type} for ${name} (it offers: ${offered}); pick another challenge type`);
      }
      const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
      const record = await this.publishAnswer(ctx, type, authz, challenge, keyAuthorization);
      presented.push({ authz, challenge });
      if (record) {
        const shown = authz.wildcard ? `*.${name}` : name;
        await this.event(ctx, "acme.challenge_presented", `DNS-01 answer for ${shown} is published: TXT ${record.fqdn} in the ${record.providerLabel} zone ${record.zone.name}${record.adopted ? " (an identical record existed and is shared)" : ""}`, { identifier: shown, challenge: type, fqdn: record.fqdn, zone: record.zone.name });
      } else {
        await this.event(ctx, "acme.challenge_presented", `${type.toUpperCase()} answer for ${name} is published; asking ${caName(ctx.directoryUrl!)} to check it`, { identifier: name, challenge: type });
      }
    }
    if (type === "dns-01" && ctx.dnsRecords?.length) {
      // The CA is told only once every name server answers: a CA that looks too early fails the order for good.
      await this.update(ctx, { acme_step: "propagating" });
      const { elapsedMs } = await this.dns.waitForPropagation(ctx.dnsRecords, {
        check: () => ctx.assertLease(),
        onProgress: (message, p) => this.event(ctx, "dns.propagation", message, { fqdn: p.fqdn, seen: p.seen, total: p.total, missing: p.missing }),
      });
      await this.update(ctx, { acme_step: "validating" });
      await this.event(ctx, "dns.propagated", `Every TXT record is visible after ${formatElapsed(elapsedMs)}; asking ${caName(ctx.directoryUrl!)} to check them`, { elapsedMs });
    }
    await ctx.step("challenge_presented");
    await Promise.all(
      presented.map(async ({ authz, challenge }) => {
        const name = authz.identifier.value;
        ctx.identifier = name;
        try {
          if (challenge.status === "pending") await client.completeChallenge(challenge);
          await client.waitForValidStatus(challenge);
        } catch (err) {
          throw await this.challengeFailure(client, challenge, name, err);
        }
        const shown = authz.wildcard ? `*.${name}` : name;
        await this.event(ctx, "acme.challenge_valid", `${caName(ctx.directoryUrl!)} validated ${shown}`, { identifier: shown, challenge: type });
      }),
    );
    ctx.identifier = undefined;
    await this.opts.db.deleteFrom("acme_challenges").where("certificate_id", "=", ctx.id).execute();
    await this.releaseDnsRecords(ctx);
    await ctx.step("challenge_valid");
  }

  /** Removes the TXT records this order created, unless another order still needs one; a failed delete is retried by the sweep. */
  private async releaseDnsRecords(ctx: RunContext) {
    if (ctx.challenge !== "dns-01" && !ctx.dnsRecords?.length) return;
    ctx.dnsRecords = undefined;
    const outcome = await this.dns.release({ certificateId: ctx.id });
    const names = (list: string[]) => [...new Set(list)].join(", ");
    const count = outcome.removed.length;
    if (count) await this.event(ctx, "dns.records_removed", count === 1 ? `Removed the TXT record ${outcome.removed[0]}` : `Removed ${count} TXT records: ${names(outcome.removed)}`, { removed: outcome.removed });
    if (outcome.kept.length) await this.event(ctx, "dns.records_removed", `Left ${names(outcome.kept)} in place: another order still needs the same value`, { kept: outcome.kept });
    for (const f of outcome.failed) {
      await this.event(ctx, "dns.record_removal_failed", `Could not remove the TXT record ${f.fqdn} yet: ${f.problem.summary}${f.problem.raw ? ` (${f.problem.raw})` : ""}; the worker tries again every minute`, { fqdn: f.fqdn, code: f.problem.code, raw: f.problem.raw }, "warning");
    }
  }

  /** The challenge's own problem document says why the CA refused, better than the poller's text. */
  private async challengeFailure(client: acme.Client, challenge: Challenge, name: string, err: unknown) {
    const api = (client as unknown as { api: { apiRequest(url: string, payload: null, codes: number[]): Promise<{ data: { error?: { type?: string; detail?: string; status?: number } } }> } }).api;
    const fresh = await api.apiRequest(challenge.url, null, [200]).catch(() => undefined);
    const problem = fresh?.data.error;
    const failure = problem ? new AcmeProblemError(problem, problem.status ?? 400) : err;
    return new ChallengeFailed(failure, name);
  }

  private async publishAnswer(ctx: RunContext, type: AcmeChallengeType, authz: acme.Authorization, challenge: Challenge, keyAuthorization: string): Promise<PresentedRecord | undefined> {
    const { db, keyring } = this.opts;
    const id = newId("chl");
    const at = this.now;
    const expires = nowIso(new Date(at.getTime() + CHALLENGE_TTL_MS));
    if (type === "http-01") {
      await db.deleteFrom("acme_challenges").where("kind", "=", "http-01").where("token", "=", challenge.token).execute();
      await db
        .insertInto("acme_challenges")
        .values({ id, kind: "http-01", certificate_id: ctx.id, identifier: authz.identifier.value, token: challenge.token, key_authorization: keyAuthorization, certificate_pem: null, sealed_key: null, expires_at: expires, created_at: nowIso(at) })
        .execute();
    } else if (type === "tls-alpn-01") {
      const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization);
      await db
        .insertInto("acme_challenges")
        .values({ id, kind: "tls-alpn-01", certificate_id: ctx.id, identifier: authz.identifier.value, token: challenge.token, key_authorization: null, certificate_pem: cert.toString(), sealed_key: keyring.seal(key.toString(), challengeKeyContext(id)), expires_at: expires, created_at: nowIso(at) })
        .execute();
    } else {
      const credentialId = ctx.row?.dns_credential_id;
      if (!credentialId) {
        throw new DnsProblem("token_invalid", "the certificate has no DNS credential for DNS-01", "Delete it and request it again with a credential from Settings → DNS.", "", { retryable: false });
      }
      ctx.identifier = authz.identifier.value;
      // For DNS-01, acme-client's key authorization is already the TXT value (base64url SHA-256).
      const record = await this.dns.present({ certificateId: ctx.id }, credentialId, authz.identifier.value, keyAuthorization);
      (ctx.dnsRecords ??= []).push(record);
      return record;
    }
    return undefined;
  }

  private async store(ctx: RunContext, chainPem: string, keyPem: string) {
    const { db, keyring } = this.opts;
    const row = await this.load(ctx.id);
    const facts = inspectCertificatePem(chainPem);
    const leafKey = crypto.createPublicKey(chainPem).export({ format: "der", type: "spki" });
    const ownKey = crypto.createPublicKey(keyPem).export({ format: "der", type: "spki" });
    if (!leafKey.equals(ownKey)) throw new Error("the CA returned a certificate for another key; the order is started again");
    const now = this.now;
    const renewing = Boolean(row.chain_pem);
    const ca = caName(ctx.directoryUrl!);
    const { plan, window, checked } = await this.planRenewal(ctx, chainPem, facts.notBefore, facts.notAfter);
    const sealedKey = keyring.seal(keyPem, keyContext(ctx.id));
    await db.transaction().execute(async (trx) => {
      const held = await trx.selectFrom("certificates").select("lease_owner").where("id", "=", ctx.id).executeTakeFirst();
      if (held?.lease_owner !== this.workerId) throw new LeaseLost();
      const last = await trx.selectFrom("certificate_versions").select((eb) => eb.fn.max("version").as("v")).where("certificate_id", "=", ctx.id).executeTakeFirst();
      await trx
        .insertInto("certificate_versions")
        .values({
          id: newId("ver"),
          certificate_id: ctx.id,
          version: Number(last?.v ?? 0) + 1,
          chain_pem: chainPem,
          sealed_key: sealedKey,
          fingerprint_sha256: facts.fingerprintSha256,
          serial: facts.serialNumber,
          issuer: facts.issuer,
          not_before: facts.notBefore.toISOString(),
          not_after: facts.notAfter.toISOString(),
          reason: renewing ? `renewed by ${ca}` : `issued by ${ca}`,
          created_at: nowIso(now),
        })
        .execute();
      await trx
        .updateTable("certificates")
        .set({
          status: "active",
          chain_pem: chainPem,
          sealed_key: sealedKey,
          subject: facts.subject,
          issuer: facts.issuer,
          serial: facts.serialNumber,
          fingerprint_sha256: facts.fingerprintSha256,
          not_before: facts.notBefore.toISOString(),
          not_after: facts.notAfter.toISOString(),
          renew_at: nowIso(plan.renewAt),
          renew_reason: plan.reason,
          // A certificate that is due again at once (a clock ahead of the CA's, a very short lifetime)
          // must not loop: the next automatic order waits at least an hour.
          next_attempt_at: nowIso(new Date(Math.max(plan.renewAt.getTime(), now.getTime() + MIN_RENEWAL_GAP_MS))),
          attempts: 0,
          last_error: null,
          last_error_detail: null,
          order_url: null,
          pending_sealed_key: null,
          acme_step: null,
          force_next_order: null,
          ari_window: window ? JSON.stringify(window) : null,
          ari_checked_at: checked ? nowIso(now) : null,
          updated_at: nowIso(now),
        })
        .where("id", "=", ctx.id)
        .execute();
    });
    await bumpEdgeRevision(db);
    await this.event(ctx, renewing ? "tls.renewed" : "tls.issued", `${renewing ? "Renewed" : "Issued"} "${row.name}" by ${ca}, valid until ${facts.notAfter.toISOString().slice(0, 10)}; next renewal ${plan.renewAt.toISOString().slice(0, 16).replace("T", " ")} UTC`, {
      status: "active",
      fingerprintSha256: facts.fingerprintSha256,
      notAfter: facts.notAfter.toISOString(),
      renewAt: plan.renewAt.toISOString(),
      renewReason: plan.reason,
    });
  }

  private async fail(ctx: RunContext, err: unknown) {
    const row = ctx.row ?? (await this.load(ctx.id));
    const now = this.now;
    const directoryUrl = ctx.directoryUrl ?? "";
    let failure: AcmeFailure;
    if (err instanceof DnsProblem) {
      failure = {
        kind: err.code === "propagation_timeout" || err.code === "no_name_servers" ? "dns" : "dns_provider",
        cause: err.summary,
        fix: err.fix,
        raw: err.raw || err.code,
        retryable: err.retryable,
        ...(err.opts.retryAfter ? { retryAfter: err.opts.retryAfter } : {}),
        ...(ctx.identifier ? { identifier: ctx.identifier } : {}),
      };
    } else if (err instanceof RateLimitRefusal) {
      failure = { kind: "rate_limited", cause: err.message, fix: "wait for the next slot, or press Retry now with force to send the order anyway", raw: "refused by Portcullis's rate-limit ledger before contacting the CA", retryable: true, retryAfter: err.nextSlotAt };
    } else if (err instanceof ChallengeFailed) {
      failure = explainAcmeError(err.failure, { directoryUrl, step: "validation", identifier: err.identifier, challenge: ctx.challenge, now });
      await recordFailedValidation(this.opts.db, { directoryUrl, identifier: err.identifier, certificateId: ctx.id, now }).catch(() => {});
    } else {
      failure = explainAcmeError(err, { directoryUrl, step: row.acme_step ?? undefined, identifier: ctx.identifier, challenge: ctx.challenge, now });
    }
    const attempts = row.attempts + 1;
    const expired = row.not_after ? new Date(row.not_after) <= now : false;
    // Until success or actual expiry: an expired certificate waits for "Retry now".
    const next = expired ? null : nextAttemptAfterFailure(attempts, now, failure.retryAfter);
    const status: CertificateStatus = expired ? "expired" : "failed";
    const serving = row.chain_pem && !expired ? ` The current certificate keeps serving until ${row.not_after!.slice(0, 10)}.` : "";
    const retry = next ? ` Next try ${next.toISOString().slice(0, 16).replace("T", " ")} UTC.` : " Not retried automatically: the certificate has expired; press Retry now.";
    await this.opts.db
      .updateTable("certificates")
      .set({
        status,
        attempts,
        last_error: formatFailure(failure),
        last_error_detail: failure.raw,
        next_attempt_at: next ? nowIso(next) : null,
        order_url: null,
        pending_sealed_key: null,
        acme_step: null,
        updated_at: nowIso(now),
      })
      .where("id", "=", ctx.id)
      .where("lease_owner", "=", this.workerId)
      .execute();
    await recordEvent(this.opts.db, {
      type: "tls.renewal_failed",
      severity: "error",
      certificateId: ctx.id,
      message: `${row.chain_pem ? "Renewal" : "Issuance"} of "${row.name}" failed: ${failure.cause}.${serving}${retry}`,
      detail: { status, cause: failure.cause, fix: failure.fix, raw: failure.raw, kind: failure.kind, attempts, nextAttemptAt: next?.toISOString() ?? null, identifier: failure.identifier ?? null },
    }, now);
    this.opts.log.warn({ certificateId: ctx.id, kind: failure.kind, raw: failure.raw, attempts }, "engine: order failed");
  }

  /**
   * The database, not the CA, failed: that is no reason to back off for an hour or to count an attempt.
   * The order stays as it is (its URL and key are in the row) and is resumed shortly.
   */
  private async databaseTrouble(ctx: RunContext, err: unknown) {
    this.opts.log.warn({ err, certificateId: ctx.id }, "engine: the database failed during an order; it is resumed shortly");
    const soon = nowIso(new Date(this.now.getTime() + DATABASE_RETRY_MS));
    await this.opts.db
      .updateTable("certificates")
      .set({ next_attempt_at: soon })
      .where("id", "=", ctx.id)
      .where("lease_owner", "=", this.workerId)
      .execute()
      .catch(() => {
        // Still down: the lease lapses and the next look at the database resumes the order.
      });
  }

  private async renewalInfoUrl(client: acme.Client, directoryUrl: string): Promise<string | undefined> {
    const cached = this.directoryInfo.get(directoryUrl);
    if (cached && Date.now() - cached.at < ARI_RECHECK_MS) return cached.renewalInfo;
    const dir = await readDirectory(client);
    const renewalInfo = typeof dir.renewalInfo === "string" ? dir.renewalInfo : undefined;
    this.directoryInfo.set(directoryUrl, { renewalInfo, at: Date.now() });
    return renewalInfo;
  }

  private async fetchWindow(renewalInfo: string, chainPem: string): Promise<RenewalWindow | undefined> {
    const certId = certIdOf(chainPem);
    if (!certId) return undefined;
    const resp = await acme.axios.get(`${renewalInfo.replace(/\/$/, "")}/${certId}`, { validateStatus: () => true } as never);
    if (resp.status !== 200) return undefined;
    const data = resp.data as { suggestedWindow?: { start?: string; end?: string }; explanationURL?: string };
    const start = new Date(data.suggestedWindow?.start ?? "");
    const end = new Date(data.suggestedWindow?.end ?? "");
    if (Number.isNaN(start.getTime()) || Number.isNaN(end.getTime()) || end < start) return undefined;
    return { start, end, explanationUrl: typeof data.explanationURL === "string" ? data.explanationURL : undefined };
  }

  private async planRenewal(ctx: RunContext, chainPem: string, notBefore: Date, notAfter: Date): Promise<{ plan: RenewalPlan; window?: RenewalWindow; checked: boolean }> {
    const { client } = await accountClient(this.opts.db, this.opts.keyring, ctx.row!.acme_account_id!);
    const renewalInfo = await this.renewalInfoUrl(client, ctx.directoryUrl!).catch(() => undefined);
    const window = renewalInfo ? await this.fetchWindow(renewalInfo, chainPem).catch(() => undefined) : undefined;
    return { plan: window ? ariRenewal(window, this.now) : lifetimeRenewal(notBefore, notAfter), window, checked: Boolean(renewalInfo) };
  }

  /** RFC 9773: ask again about twice a day; a changed window moves the renewal time. */
  private async refreshRenewalInformation() {
    const { db, keyring } = this.opts;
    const now = this.now;
    const stale = nowIso(new Date(now.getTime() - ARI_RECHECK_MS));
    const rows = await db
      .selectFrom("certificates")
      .selectAll()
      .where("source", "=", "acme")
      .where("status", "=", "active")
      .where("chain_pem", "is not", null)
      .where((eb) => eb.or([eb("ari_checked_at", "is", null), eb("ari_checked_at", "<", stale)]))
      .where((eb) => eb.or([eb("lease_expires_at", "is", null), eb("lease_expires_at", "<", nowIso(now))]))
      .limit(20)
      .execute();
    for (const row of rows) {
      if (!row.acme_account_id || !row.chain_pem) continue;
      const { client, directoryUrl } = await accountClient(db, keyring, row.acme_account_id);
      const renewalInfo = await this.renewalInfoUrl(client, directoryUrl).catch(() => undefined);
      const window = renewalInfo ? await this.fetchWindow(renewalInfo, row.chain_pem).catch(() => undefined) : undefined;
      const values: Updateable<CertificatesTable> = { ari_checked_at: nowIso(now) };
      const previous = parseWindow(row.ari_window);
      const moved = window && (!previous || previous.start.getTime() !== window.start.getTime() || previous.end.getTime() !== window.end.getTime());
      if (window && moved) {
        const plan = ariRenewal(window, now);
        Object.assign(values, { ari_window: JSON.stringify(window), renew_at: nowIso(plan.renewAt), renew_reason: plan.reason, next_attempt_at: nowIso(plan.renewAt) });
      }
      await db.updateTable("certificates").set(values).where("id", "=", row.id).where("status", "=", "active").execute();
      if (window && moved && previous) {
        await recordEvent(db, { type: "tls.renewal_rescheduled", certificateId: row.id, message: `${caName(directoryUrl)} changed its suggested renewal window: ${values.renew_reason}`, detail: { window } }, now);
      }
    }
  }
}

type RunContext = {
  id: string;
  row?: Row;
  directoryUrl?: string;
  challenge?: AcmeChallengeType;
  identifier?: string;
  /** DNS-01 records published by this run, waited for together. */
  dnsRecords?: PresentedRecord[];
  assertLease(): void;
  step(step: EngineStep): Promise<void>;
};

class RateLimitRefusal extends Error {
  constructor(message: string, readonly nextSlotAt: Date) {
    super(message);
  }
}

class ChallengeFailed extends Error {
  constructor(readonly failure: unknown, readonly identifier: string) {
    super(failure instanceof Error ? failure.message : String(failure));
  }
}

/** Errors of the database driver (a dropped PostgreSQL connection, a locked SQLite file), not of the CA. */
export function isDatabaseError(err: unknown): boolean {
  const e = err as { name?: string; code?: string; message?: string; constructor?: { name?: string } } | null;
  if (!e || typeof e !== "object") return false;
  if (e.constructor?.name === "DatabaseError") return true; // pg's server-side errors
  if (typeof e.code === "string" && /^SQLITE_/.test(e.code)) return true;
  return /Connection terminated|terminating connection|connection to the database|database is locked|driver has already been destroyed|Client has encountered a connection error/i.test(e.message ?? "");
}

function parseWindow(text: string | null): RenewalWindow | undefined {
  if (!text) return undefined;
  try {
    const w = JSON.parse(text) as { start: string; end: string; explanationUrl?: string };
    return { start: new Date(w.start), end: new Date(w.end), explanationUrl: w.explanationUrl };
  } catch {
    return undefined;
  }
}

function certIdOf(chainPem: string): string | undefined {
  try {
    const leaf = new crypto.X509Certificate(chainPem);
    const aki = authorityKeyId(leaf.raw);
    return aki ? ariCertId(aki, leaf.serialNumber) : undefined;
  } catch {
    return undefined;
  }
}

// The authority key identifier's keyIdentifier, found by its OID (2.5.29.35) in the DER.
function authorityKeyId(der: Buffer): string | undefined {
  const oid = Buffer.from([0x06, 0x03, 0x55, 0x1d, 0x23]);
  const at = der.indexOf(oid);
  if (at < 0) return undefined;
  // OID, optional critical BOOLEAN, OCTET STRING { SEQUENCE { [0] keyIdentifier } }
  let i = at + oid.length;
  if (der[i] === 0x01) i += 3;
  if (der[i] !== 0x04) return undefined;
  i += 2 + (der[i + 1] & 0x80 ? der[i + 1] & 0x7f : 0);
  if (der[i] !== 0x30) return undefined;
  i += 2 + (der[i + 1] & 0x80 ? der[i + 1] & 0x7f : 0);
  if (der[i] !== 0x80) return undefined;
  const len = der[i + 1];
  return der.subarray(i + 2, i + 2 + len).toString("hex");
}
