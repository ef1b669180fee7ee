import type { Logger } from "pino";
import type { Keyring } from "../crypto/seal";
import type { Db } from "../db";
import type { DnsRecordsTable } from "../db/schema";
import { newId, nowIso } from "../ids";
import { openProvider, type DnsSettings } from "./credentials";
import { formatDuration, formatElapsed, nameServersFor, waitForTxt, type NameServer, type PropagationOptions, type Progress } from "./propagation";
import { challengeRecordName, DnsProblem, zoneCandidates, type DnsProvider, type DnsZone } from "./provider";

// The DNS-01 solver: publishes `_acme-challenge` TXT records through a credential's provider, waits
// until the zone's name servers answer them, and removes them again. Every record is written to
// dns_records before the provider is asked to create it, so a worker that dies at any point leaves
// a row that the next run or the sweep uses to delete the record. A wildcard and its apex share one
// name with two values; records are counted by (zone, name, value), and one is deleted at the
// provider only when no other order or test still holds it.

export type RecordOwner = { certificateId: string; testId?: undefined } | { testId: string; certificateId?: undefined };

export type PresentedRecord = {
  rowId: string;
  credentialId: string;
  identifier: string;
  zone: DnsZone;
  fqdn: string;
  value: string;
  providerLabel: string;
  /** True when an identical record existed already (another order for the same authorization). */
  adopted: boolean;
};

export type SolverOptions = {
  db: Db;
  keyring: Keyring;
  log: Logger;
  settings: DnsSettings;
  /** Propagation timeout and poll interval (tests shorten them), lookup servers and the authoritative port. */
  propagation?: PropagationOptions;
  /** How long a record may live before the sweep removes it whatever holds it. */
  recordTtlMs?: number;
  now?: () => Date;
};

export type ReleaseOutcome = { removed: string[]; kept: string[]; failed: { fqdn: string; problem: DnsProblem }[] };

const RECORD_TTL_MS = 60 * 60_000;
const ZONE_CACHE_MS = 60_000;

export class DnsSolver {
  private readonly zoneCache = new Map<string, { zone: DnsZone | null; at: number }>();
  constructor(private readonly opts: SolverOptions) {}

  private get now() {
    return this.opts.now?.() ?? new Date();
  }

  get propagationTimeoutMs(): number {
    return this.opts.propagation?.timeoutMs ?? 120_000;
  }

  private provider(credentialId: string): Promise<{ provider: DnsProvider; name: string }> {
    return openProvider(this.opts.db, this.opts.keyring, credentialId, this.opts.settings);
  }

  /** The zone holding `name`: its labels are walked from the longest candidate to the shortest. */
  async findZone(credentialId: string, provider: DnsProvider, name: string): Promise<DnsZone> {
    const candidates = zoneCandidates(name);
    for (const candidate of candidates) {
      const key = `${credentialId}|${candidate}`;
      const cached = this.zoneCache.get(key);
      let zone: DnsZone | null;
      if (cached && Date.now() - cached.at < ZONE_CACHE_MS) zone = cached.zone;
      else {
        zone = (await provider.findZone(candidate)) ?? null;
        this.zoneCache.set(key, { zone, at: Date.now() });
      }
      if (zone) {
        if (zone.status !== "active") {
          throw new DnsProblem(
            "zone_inactive",
            `the ${provider.label} zone ${zone.name} is "${zone.status}", so ${provider.label} does not answer DNS for it yet`,
            `Finish adding the zone: point ${zone.name}'s name servers at the registrar to ${zone.nameServers.join(" and ") || `${provider.label}'s`}, then retry.`,
            `zone ${zone.id} status ${zone.status}`,
            { retryable: true },
          );
        }
        return zone;
      }
    }
    throw new DnsProblem(
      "zone_not_found",
      `none of the ${provider.label} zones this credential can see contains ${name.replace(/^\*\./, "")} (looked for ${candidates.join(", ")})`,
      `Add the domain's zone to ${provider.label}, or give the token Zone → Zone → Read and Zone → DNS → Edit for it; Settings → DNS → Verify lists the zones it can edit.`,
      `zones looked up: ${candidates.join(", ")}`,
      { retryable: false },
    );
  }

  /** Creates (or adopts) the TXT record `_acme-challenge.<identifier>` holding `value`. */
  async present(owner: RecordOwner, credentialId: string, identifier: string, value: string, fqdnOverride?: string): Promise<PresentedRecord> {
    const { db } = this.opts;
    const { provider } = await this.provider(credentialId);
    const zone = await this.findZone(credentialId, provider, identifier);
    const fqdn = fqdnOverride ?? challengeRecordName(identifier);
    const at = this.now;
    const rowId = newId("dnr");
    await db
      .insertInto("dns_records")
      .values({
        id: rowId,
        credential_id: credentialId,
        certificate_id: owner.certificateId ?? null,
        test_id: owner.testId ?? null,
        zone_id: zone.id,
        zone_name: zone.name,
        fqdn,
        value,
        provider_record_id: null,
        state: "active",
        last_error: null,
        expires_at: nowIso(new Date(at.getTime() + (this.opts.recordTtlMs ?? RECORD_TTL_MS))),
        created_at: nowIso(at),
      })
      .execute();
    let recordId: string;
    let adopted = false;
    try {
      recordId = await provider.createTxt(zone, fqdn, value);
    } catch (err) {
      if (!(err instanceof DnsProblem) || err.code !== "record_exists") {
        // Refused outright: nothing was created. Otherwise (timeout, 5xx, 429) it may have been: the
        // row stays, released, and the release looks the record up by name and value to delete it.
        const refused = err instanceof DnsProblem && ["token_invalid", "token_inactive", "permission", "zone_not_found", "bad_request"].includes(err.code);
        if (refused) await db.deleteFrom("dns_records").where("id", "=", rowId).execute();
        else await db.updateTable("dns_records").set({ state: "released" }).where("id", "=", rowId).execute();
        throw err;
      }
      // The same value is there already: another order for the same authorization, or a run that died. Share it.
      const [existing] = await provider.findTxt(zone, fqdn, value);
      if (!existing) {
        await db.deleteFrom("dns_records").where("id", "=", rowId).execute();
        throw err;
      }
      recordId = existing;
      adopted = true;
    }
    await db.updateTable("dns_records").set({ provider_record_id: recordId }).where("id", "=", rowId).execute();
    return { rowId, credentialId, identifier, zone, fqdn, value, providerLabel: provider.label, adopted };
  }

  /**
   * Waits until every server answers every value of every record. `onProgress` hears of each change
   * ("2 of 3 servers see it"); `check` runs before each round (the engine's lease check).
   */
  async waitForPropagation(records: PresentedRecord[], hooks: { onProgress?: (message: string, progress: Progress) => Promise<unknown> | void; check?: () => void } = {}): Promise<{ servers: Record<string, NameServer[]>; elapsedMs: number }> {
    const started = Date.now();
    const byName = new Map<string, { zone: DnsZone; values: string[]; providerLabel: string }>();
    for (const r of records) {
      const entry = byName.get(r.fqdn) ?? { zone: r.zone, values: [], providerLabel: r.providerLabel };
      if (!entry.values.includes(r.value)) entry.values.push(r.value);
      byName.set(r.fqdn, entry);
    }
    const propagation: PropagationOptions = { ...this.opts.propagation, resolvers: this.opts.settings.resolvers?.length ? this.opts.settings.resolvers : this.opts.propagation?.resolvers };
    const serversByZone = new Map<string, NameServer[]>();
    const servers: Record<string, NameServer[]> = {};
    for (const [fqdn, { zone }] of byName) {
      if (!serversByZone.has(zone.name)) serversByZone.set(zone.name, await nameServersFor(zone.name, zone.nameServers, propagation));
      servers[fqdn] = serversByZone.get(zone.name)!;
    }
    const timeout = formatDuration(propagation.timeoutMs ?? 120_000);
    await Promise.all(
      [...byName].map(([fqdn, { zone, values, providerLabel }]) =>
        waitForTxt(fqdn, values, servers[fqdn], {
          ...propagation,
          zone: zone.name,
          providerLabel,
          check: hooks.check,
          onProgress: (p) => {
            const where = propagation.resolvers?.length ? "the configured resolvers" : "the authoritative name servers";
            const list = p.servers.join(", ");
            const message = p.seen === p.total
              ? `The TXT record ${fqdn} is visible on all ${p.total} of ${where} (${list}) after ${formatElapsed(p.elapsedMs)}`
              : `Waiting for the TXT record ${fqdn} on ${list}: ${p.seen} of ${p.total} servers see it${values.length > 1 ? ` (all ${values.length} values)` : ""}; giving up after ${timeout}`;
            return hooks.onProgress?.(message, p);
          },
        }),
      ),
    );
    return { servers, elapsedMs: Date.now() - started };
  }

  /** Gives up the owner's records: each is deleted at the provider unless another active record shares it. */
  async release(owner: RecordOwner): Promise<ReleaseOutcome> {
    const { db } = this.opts;
    let q = db.updateTable("dns_records").set({ state: "released" });
    q = owner.certificateId ? q.where("certificate_id", "=", owner.certificateId) : q.where("test_id", "=", owner.testId!);
    await q.execute();
    let rows = db.selectFrom("dns_records").selectAll().where("state", "=", "released");
    rows = owner.certificateId ? rows.where("certificate_id", "=", owner.certificateId) : rows.where("test_id", "=", owner.testId!);
    return this.removeReleased(await rows.execute());
  }

  /**
   * Removes what nobody will: released records whose delete failed earlier, records past their expiry,
   * and records of orders whose worker died (the certificate's lease lapsed) or of tests that ended.
   */
  async sweep(): Promise<ReleaseOutcome> {
    const { db } = this.opts;
    const now = nowIso(this.now);
    const orphaned = await db
      .selectFrom("dns_records")
      .leftJoin("certificates", "certificates.id", "dns_records.certificate_id")
      .leftJoin("dns_tests", "dns_tests.id", "dns_records.test_id")
      .select("dns_records.id")
      .where("dns_records.state", "=", "active")
      .where((eb) =>
        eb.or([
          eb("dns_records.expires_at", "<", now),
          eb.and([eb("dns_records.certificate_id", "is not", null), eb.or([eb("certificates.id", "is", null), eb("certificates.lease_expires_at", "is", null), eb("certificates.lease_expires_at", "<", now)])]),
          eb.and([eb("dns_records.test_id", "is not", null), eb.or([eb("dns_tests.id", "is", null), eb("dns_tests.status", "in", ["passed", "failed"]), eb("dns_tests.lease_expires_at", "<", now)])]),
        ]),
      )
      .execute();
    if (orphaned.length) await db.updateTable("dns_records").set({ state: "released" }).where("id", "in", orphaned.map((r) => r.id)).where("state", "=", "active").execute();
    const released = await db.selectFrom("dns_records").selectAll().where("state", "=", "released").limit(200).execute();
    return this.removeReleased(released);
  }

  private async removeReleased(rows: DnsRecordsTable[]): Promise<ReleaseOutcome> {
    const { db, log } = this.opts;
    const outcome: ReleaseOutcome = { removed: [], kept: [], failed: [] };
    // One provider delete per (zone, name, value); rows sharing it go together.
    const groups = new Map<string, DnsRecordsTable[]>();
    for (const row of rows) {
      const key = `${row.zone_id}|${row.fqdn}|${row.value}`;
      groups.set(key, [...(groups.get(key) ?? []), row]);
    }
    for (const group of groups.values()) {
      const first = group[0];
      const ids = group.map((r) => r.id);
      const stillHeld = await db
        .selectFrom("dns_records")
        .select("id")
        .where("zone_id", "=", first.zone_id)
        .where("fqdn", "=", first.fqdn)
        .where("value", "=", first.value)
        .where("state", "=", "active")
        .where("id", "not in", ids)
        .limit(1)
        .executeTakeFirst();
      if (stillHeld) {
        await db.deleteFrom("dns_records").where("id", "in", ids).execute();
        outcome.kept.push(first.fqdn);
        continue;
      }
      try {
        const { provider } = await this.provider(first.credential_id);
        const zone: DnsZone = { id: first.zone_id, name: first.zone_name, status: "active", nameServers: [], canEditDns: null };
        const recordIds = new Set(group.map((r) => r.provider_record_id).filter((id): id is string => Boolean(id)));
        // A row without the provider's id: the worker died between asking and hearing back; look it up.
        if (group.some((r) => !r.provider_record_id) || !recordIds.size) for (const id of await provider.findTxt(zone, first.fqdn, first.value)) recordIds.add(id);
        for (const id of recordIds) await provider.deleteTxt(zone, id);
        await db.deleteFrom("dns_records").where("id", "in", ids).execute();
        // Nothing found at the provider: a create that failed before it took effect.
        if (recordIds.size) outcome.removed.push(first.fqdn);
      } catch (err) {
        const problem = err instanceof DnsProblem ? err : new DnsProblem("provider_error", `could not remove the TXT record ${first.fqdn}`, "Portcullis tries again every minute.", err instanceof Error ? err.message.slice(0, 300) : String(err), { retryable: true });
        await db.updateTable("dns_records").set({ last_error: `${problem.summary} [${problem.raw}]`.slice(0, 1000) }).where("id", "in", ids).execute();
        outcome.failed.push({ fqdn: first.fqdn, problem });
        log.warn({ fqdn: first.fqdn, zone: first.zone_name, code: problem.code, raw: problem.raw }, "dns: could not remove a TXT record; the sweep retries");
      }
    }
    return outcome;
  }
}
