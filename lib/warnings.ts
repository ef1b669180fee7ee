import type { Config } from "./config";
import { consoleTlsWarnings, effectiveTlsMode } from "./console/tls-status";
import type { Db } from "./db";

export type ServiceWarning = { id: string; message: string; href: string; linkText: string };

const LOOPBACK = /^(127\.|::1$|localhost$)/;
const FALLBACK_WINDOW_MS = 24 * 60 * 60_000;

/**
 * What the console and listeners serve that an operator should fix: the banner on every page.
 * "In service" means mapped to, or the default of, an enabled HTTPS listener.
 */
export async function serviceWarnings(db: Db, config: Config, now: Date = new Date()): Promise<ServiceWarning[]> {
  // The console's own certificate first (self-signed, local CA, plain HTTP beyond loopback): what it serves right now.
  const warnings: ServiceWarning[] = [...(await consoleTlsWarnings(db, config))];
  // "off" may come from the environment or from Settings → TLS (with PORTCULLIS_ALLOW_INSECURE_HTTP beyond loopback).
  const { mode } = await effectiveTlsMode(db, config);
  if (mode === "off" && !LOOPBACK.test(config.host) && !warnings.some((w) => w.id === "console-plain-http")) {
    warnings.push({
      id: "console-plain-http",
      message: `The console is served over plain HTTP on ${config.host}: passwords and sessions cross the network unencrypted.`,
      href: "/settings/tls",
      linkText: "Open Settings → TLS",
    });
  }

  const selfSignedMapped = await db
    .selectFrom("certificate_mappings")
    .innerJoin("certificates", "certificates.id", "certificate_mappings.certificate_id")
    .innerJoin("listeners", "listeners.id", "certificate_mappings.listener_id")
    .select(["listeners.id as listenerId", "listeners.name as listenerName", "certificates.name as certificateName", "certificates.source as source"])
    .where("listeners.enabled", "=", 1)
    .where("certificates.source", "in", ["self_signed", "local_ca"])
    .execute();
  const selfSignedDefault = await db
    .selectFrom("listeners")
    .innerJoin("certificates", "certificates.id", "listeners.default_certificate_id")
    .select(["listeners.id as listenerId", "listeners.name as listenerName", "certificates.name as certificateName", "certificates.source as source"])
    .where("listeners.enabled", "=", 1)
    .where("certificates.source", "in", ["self_signed", "local_ca"])
    .execute();
  const byListener = new Map<string, { name: string; certificates: Map<string, string> }>();
  for (const row of [...selfSignedMapped, ...selfSignedDefault]) {
    const entry = byListener.get(row.listenerId) ?? { name: row.listenerName, certificates: new Map<string, string>() };
    entry.certificates.set(row.certificateName, row.source);
    byListener.set(row.listenerId, entry);
  }
  for (const [listenerId, entry] of byListener) {
    const names = [...entry.certificates.keys()];
    const kinds = new Set(entry.certificates.values());
    // Which kind, in words: a local CA's certificates are trusted where that CA is installed, self-signed ones nowhere.
    const kind = kinds.size > 1 ? "self-signed and local-CA" : kinds.has("local_ca") ? "local-CA" : "self-signed";
    const trust = kinds.has("self_signed") ? "clients will not trust" : "only clients that trust the local CA accept";
    warnings.push({
      id: `self-signed-${listenerId}`,
      message: `Listener "${entry.name}" serves ${kind} ${names.length === 1 ? "certificate" : "certificates"} ${names.map((n) => `"${n}"`).join(", ")}: ${trust} ${names.length === 1 ? "it" : "them"}.`,
      href: `/listeners/${listenerId}`,
      linkText: "Open the listener",
    });
  }

  const fallbacks = await db
    .selectFrom("events")
    .innerJoin("listeners", "listeners.id", "events.listener_id")
    .select(["listeners.id as listenerId", "listeners.name as listenerName"])
    .where("events.type", "=", "tls.fallback_served")
    .where("events.at", ">=", new Date(now.getTime() - FALLBACK_WINDOW_MS).toISOString())
    .where("listeners.enabled", "=", 1)
    .where("listeners.fallback_policy", "=", "self_signed")
    .groupBy(["listeners.id", "listeners.name"])
    .execute();
  for (const f of fallbacks) {
    warnings.push({
      id: `fallback-${f.listenerId}`,
      message: `Listener "${f.listenerName}" served its self-signed fallback certificate in the last 24 hours, for names that have no certificate mapped.`,
      href: `/listeners/${f.listenerId}`,
      linkText: "Map the missing names",
    });
  }
  return warnings;
}
