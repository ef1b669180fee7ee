import "server-only";
import { listCertificates } from "@/lib/certificates";
import type { Db } from "@/lib/db";
import { certificateCovers, listListeners, listMappings, suggestCertificates, type MappingView } from "@/lib/listeners";

// What the listener pages and the certificate page show, assembled from lib/ functions. The one
// query of its own (recent fallback names) reads the events table, which lib/events does not filter
// by listener or type.

export type CertificateOption = { id: string; name: string; domains: string[]; status: string; fingerprint: string };

/** Certificates that can be served: issued ones (with a chain), by name. */
export async function loadIssuedCertificates(db: Db): Promise<CertificateOption[]> {
  const options: CertificateOption[] = [];
  let cursor: string | undefined;
  do {
    const page = await listCertificates(db, { limit: 200, cursor });
    for (const c of page.items) if (c.fingerprintSha256) options.push({ id: c.id, name: c.name, domains: c.domains, status: c.status, fingerprint: c.fingerprintSha256 });
    cursor = page.nextCursor ?? undefined;
  } while (cursor && options.length < 5000);
  return options.sort((a, b) => a.name.localeCompare(b.name));
}

export type UnmappedName = {
  serverName: string;
  lastSeen: string;
  times: number;
  suggestions: { id: string; name: string; status: string; notAfter: string | null }[];
};

const UNMAPPED_WINDOW_MS = 7 * 86_400_000;
const UNMAPPED_LIMIT = 50;

/** SNI names this listener answered with its fallback in the last 7 days and that no mapping covers yet. */
export async function loadUnmappedNames(db: Db, listenerId: string, mappings: MappingView[], now: Date = new Date()): Promise<UnmappedName[]> {
  const rows = await db
    .selectFrom("events")
    .select(["at", "detail"])
    .where("listener_id", "=", listenerId)
    .where("type", "=", "tls.fallback_served")
    .where("at", ">=", new Date(now.getTime() - UNMAPPED_WINDOW_MS).toISOString())
    .orderBy("id", "desc")
    .limit(2000)
    .execute();
  const mapped = mappings.map((m) => m.hostname);
  const byName = new Map<string, { serverName: string; lastSeen: string; times: number }>();
  for (const row of rows) {
    const serverName = readServerName(row.detail);
    if (!serverName || certificateCovers(mapped, serverName)) continue;
    const seen = byName.get(serverName);
    if (seen) seen.times += 1;
    else byName.set(serverName, { serverName, lastSeen: row.at, times: 1 });
  }
  const names = [...byName.values()].slice(0, UNMAPPED_LIMIT);
  return Promise.all(names.map(async (n) => ({ ...n, suggestions: (await suggestCertificates(db, n.serverName)).slice(0, 5) })));
}

function readServerName(detail: string | null): string | null {
  if (!detail) return null;
  try {
    const value = (JSON.parse(detail) as { serverName?: unknown }).serverName;
    return typeof value === "string" && value ? value.toLowerCase() : null;
  } catch {
    return null;
  }
}

export type ListenerChoice = { id: string; name: string; address: string };
export type CertificatePlacement = { listenerId: string; listenerName: string; enabled: boolean; hostnames: string[]; isDefault: boolean };

/** For a certificate's page: the HTTPS listeners it can be served on, and where it is served now. */
export async function loadCertificateListeners(db: Db, certificateId: string): Promise<{ listeners: ListenerChoice[]; placements: CertificatePlacement[] }> {
  const https = (await listListeners(db)).filter((l) => l.kind === "https");
  const placements: CertificatePlacement[] = [];
  for (const l of https) {
    const hostnames = (await listMappings(db, l.id)).filter((m) => m.certificateId === certificateId).map((m) => m.hostname);
    const isDefault = l.defaultCertificateId === certificateId;
    if (hostnames.length || isDefault) placements.push({ listenerId: l.id, listenerName: l.name, enabled: l.enabled, hostnames, isDefault });
  }
  return {
    listeners: https.filter((l) => l.enabled).map((l) => ({ id: l.id, name: l.name, address: formatAddress(l.bindAddress, l.port) })),
    placements,
  };
}

/** 0.0.0.0:443, [::]:443 */
export function formatAddress(bindAddress: string, port: number): string {
  return bindAddress.includes(":") ? `[${bindAddress}]:${port}` : `${bindAddress}:${port}`;
}
