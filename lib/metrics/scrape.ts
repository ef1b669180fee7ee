import { collectDefaultMetrics, Counter, Gauge, Registry } from "prom-client";
import type { Db } from "../db";
import type { CertificateStatus } from "../db/schema";

// /metrics, computed from the database at each scrape into a fresh registry: every console (and every
// replica behind a load balancer) answers the same, whichever worker did the work. A handful of aggregate
// queries, whatever the number of certificates (no query per row). Only ids and names leave the database:
// no domains, keys, errors or messages.

export const CERTIFICATE_STATUSES: readonly CertificateStatus[] = ["pending", "requesting", "active", "renewing", "failed", "expired"];
/** Event types that start an ACME order: a first issuance, and a renewal. */
export const ATTEMPT_EVENT_TYPES = ["tls.requesting", "tls.renewing"];
export const FAILURE_EVENT_TYPE = "tls.renewal_failed";
export const MISMATCH_EVENT_TYPE = "tls.served_mismatch";

export const METRICS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

const globalHolder = globalThis as unknown as { __portcullisProcessMetrics?: Registry };

/** Node.js process metrics of this process (process_*, nodejs_*): one registry for the life of the process. */
function processRegistry(): Registry {
  if (!globalHolder.__portcullisProcessMetrics) {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    // prom-client counts CPU from the moment its collector is made (the first scrape here); Prometheus means
    // these counters as totals since the process started, so they are read whole from process.cpuUsage().
    const totals: [string, string, (usage: NodeJS.CpuUsage) => number][] = [
      ["process_cpu_user_seconds_total", "Total user CPU time spent in seconds.", (u) => u.user],
      ["process_cpu_system_seconds_total", "Total system CPU time spent in seconds.", (u) => u.system],
      ["process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", (u) => u.user + u.system],
    ];
    for (const [name, help, micros] of totals) {
      registry.removeSingleMetric(name);
      new Counter({
        name,
        help,
        registers: [registry],
        collect() {
          this.reset();
          this.inc(micros(process.cpuUsage()) / 1e6);
        },
      });
    }
    globalHolder.__portcullisProcessMetrics = registry;
  }
  return globalHolder.__portcullisProcessMetrics;
}

const seconds = (iso: string | null): number | undefined => {
  if (!iso) return undefined;
  const ms = Date.parse(iso);
  return Number.isFinite(ms) ? ms / 1000 : undefined;
};

export async function renderMetrics(db: Db, opts: { processMetrics?: boolean } = {}): Promise<string> {
  const started = performance.now();
  const [certificates, events, listeners, counters, mismatches, mismatchEvents] = await Promise.all([
    db.selectFrom("certificates").select(["id", "name", "source", "status", "not_after", "renew_at"]).execute(),
    db
      .selectFrom("events")
      .select(["type", "severity", (eb) => eb.fn.countAll().as("count")])
      .groupBy(["type", "severity"])
      .execute(),
    db.selectFrom("listeners").select(["id", "name"]).execute(),
    db
      .selectFrom("listener_counters")
      .select((eb) => [
        "listener_id",
        eb.fn.sum<string | number>("handshakes").as("handshakes"),
        eb.fn.sum<string | number>("handshake_errors").as("handshake_errors"),
        eb.fn.sum<string | number>("fallback_served").as("fallback_served"),
        eb.fn.sum<string | number>("requests").as("requests"),
        eb.fn.sum<string | number>("upstream_errors").as("upstream_errors"),
      ])
      .groupBy("listener_id")
      .execute(),
    db
      .selectFrom("listener_checks")
      .select(["listener_id", (eb) => eb.fn.countAll().as("count")])
      .where("status", "=", "mismatch")
      .groupBy("listener_id")
      .execute(),
    db
      .selectFrom("events")
      .select(["listener_id", (eb) => eb.fn.countAll().as("count")])
      .where("type", "=", MISMATCH_EVENT_TYPE)
      .where("listener_id", "is not", null)
      .groupBy("listener_id")
      .execute(),
  ]);

  const registry = new Registry();
  const registers = [registry];
  const certLabels = ["id", "name", "source"] as const;

  const expiry = new Gauge({ name: "portcullis_certificate_expiry_timestamp_seconds", help: "When the certificate's current version expires (not_after), as a Unix timestamp.", labelNames: certLabels, registers });
  const renewAt = new Gauge({ name: "portcullis_certificate_renew_at_timestamp_seconds", help: "When Portcullis plans to renew the certificate, as a Unix timestamp.", labelNames: certLabels, registers });
  const status = new Gauge({ name: "portcullis_certificate_status", help: "The certificate's current status: one series per certificate, with value 1, labelled with that status.", labelNames: [...certLabels, "status"], registers });
  const byStatus = new Gauge({ name: "portcullis_certificates", help: "Number of certificates in each status.", labelNames: ["status"], registers });
  const statusCounts = new Map<string, number>(CERTIFICATE_STATUSES.map((s) => [s, 0]));
  for (const c of certificates) {
    const labels = { id: c.id, name: c.name, source: c.source };
    const notAfter = seconds(c.not_after);
    if (notAfter !== undefined) expiry.set(labels, notAfter);
    const renew = seconds(c.renew_at);
    if (renew !== undefined) renewAt.set(labels, renew);
    status.set({ ...labels, status: c.status }, 1);
    statusCounts.set(c.status, (statusCounts.get(c.status) ?? 0) + 1);
  }
  for (const [s, count] of statusCounts) byStatus.set({ status: s }, count);

  const eventsTotal = new Counter({ name: "portcullis_events_total", help: "Events recorded, by type and severity.", labelNames: ["type", "severity"], registers });
  const attempted = new Counter({ name: "portcullis_renewals_attempted_total", help: "ACME orders started: first issuances (tls.requesting) and renewals (tls.renewing).", registers });
  const failed = new Counter({ name: "portcullis_renewals_failed_total", help: "ACME orders that failed (tls.renewal_failed events), issuances and renewals.", registers });
  attempted.inc(0);
  failed.inc(0);
  for (const e of events) {
    const count = Number(e.count);
    eventsTotal.inc({ type: e.type, severity: e.severity }, count);
    if (ATTEMPT_EVENT_TYPES.includes(e.type)) attempted.inc(count);
    if (e.type === FAILURE_EVENT_TYPE) failed.inc(count);
  }

  const listenerLabels = ["listener_id", "listener_name"] as const;
  const listenerCounter = (name: string, help: string) => new Counter({ name, help, labelNames: listenerLabels, registers });
  const handshakes = listenerCounter("portcullis_listener_handshakes_total", "TLS handshakes completed, summed over every edge worker.");
  const handshakeErrors = listenerCounter("portcullis_listener_handshake_errors_total", "TLS handshakes that failed: refused (no certificate for the name), not TLS, a TLS error or alert, or a client that gave up.");
  const fallbackServed = listenerCounter("portcullis_listener_fallback_served_total", "Handshakes answered with the listener's self-signed fallback certificate, because no certificate matched the name.");
  const requests = listenerCounter("portcullis_listener_requests_total", "HTTP requests received (HTTP/1.1, HTTP/2 and upgrades), summed over every edge worker.");
  const upstreamErrors = listenerCounter("portcullis_listener_upstream_errors_total", "Requests whose upstream could not be reached or broke off (answered 502 Bad Gateway).");
  const mismatchGauge = new Gauge({ name: "portcullis_listener_served_mismatches", help: "Host names on the listener whose served certificate differs from the mapped one, at the last check.", labelNames: listenerLabels, registers });
  const mismatchEventCounter = listenerCounter("portcullis_listener_served_mismatch_events_total", "tls.served_mismatch events recorded for the listener.");
  const countersById = new Map(counters.map((c) => [c.listener_id, c]));
  const mismatchesById = new Map(mismatches.map((m) => [m.listener_id, Number(m.count)]));
  const mismatchEventsById = new Map(mismatchEvents.map((m) => [m.listener_id, Number(m.count)]));
  // Counters of deleted listeners are left out: their series end with the listener.
  for (const l of listeners) {
    const labels = { listener_id: l.id, listener_name: l.name };
    const c = countersById.get(l.id);
    handshakes.inc(labels, Number(c?.handshakes ?? 0));
    handshakeErrors.inc(labels, Number(c?.handshake_errors ?? 0));
    fallbackServed.inc(labels, Number(c?.fallback_served ?? 0));
    requests.inc(labels, Number(c?.requests ?? 0));
    upstreamErrors.inc(labels, Number(c?.upstream_errors ?? 0));
    mismatchGauge.set(labels, mismatchesById.get(l.id) ?? 0);
    mismatchEventCounter.inc(labels, mismatchEventsById.get(l.id) ?? 0);
  }

  new Gauge({ name: "portcullis_metrics_scrape_duration_seconds", help: "Time spent reading the database and building this answer.", registers }).set((performance.now() - started) / 1000);
  const text = await registry.metrics();
  return opts.processMetrics ? text + (await processRegistry().metrics()) : text;
}

