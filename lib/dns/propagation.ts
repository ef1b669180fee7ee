import { Resolver } from "node:dns/promises";
import net from "node:net";
import { DnsProblem } from "./provider";

// Is the TXT record there yet? Asked of the zone's authoritative name servers directly (found by
// an NS lookup), or of the resolvers in PORTCULLIS_DNS_RESOLVERS when the operator names them.

export type NameServer = { label: string; address: string };

export type PropagationOptions = {
  /** PORTCULLIS_DNS_RESOLVERS: host:port entries asked instead of the zone's name servers. */
  resolvers?: string[];
  /** Servers for the NS and address lookups (default: the system's resolvers). Tests point this at a local server. */
  lookupServers?: string[];
  /** The port authoritative servers are asked on (53; tests use another). */
  authoritativePort?: number;
  timeoutMs?: number;
  intervalMs?: number;
  /** Per query. */
  queryTimeoutMs?: number;
};

export const DEFAULT_PROPAGATION_TIMEOUT_MS = 120_000;
const DEFAULT_INTERVAL_MS = 2_000;
const DEFAULT_QUERY_TIMEOUT_MS = 2_000;

export type Progress = { fqdn: string; seen: number; total: number; missing: string[]; servers: string[]; elapsedMs: number };

/** "1.2.3.4", "1.2.3.4:5353", "[::1]:53", "dns.example.net:53" as given in PORTCULLIS_DNS_RESOLVERS. */
export function parseResolver(entry: string): { host: string; port: number } {
  const trimmed = entry.trim();
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(trimmed);
  if (bracketed) return { host: bracketed[1], port: Number(bracketed[2] ?? 53) };
  if (net.isIPv6(trimmed)) return { host: trimmed, port: 53 };
  const m = /^([^:]+)(?::(\d+))?$/.exec(trimmed);
  if (!m) throw new Error(`"${entry}" is not host or host:port`);
  return { host: m[1], port: Number(m[2] ?? 53) };
}

function serverAddress(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

function resolver(opts: PropagationOptions, servers?: string[]): Resolver {
  const r = new Resolver({ timeout: opts.queryTimeoutMs ?? DEFAULT_QUERY_TIMEOUT_MS, tries: 2 });
  if (servers?.length) r.setServers(servers);
  return r;
}

async function addressesOf(host: string, opts: PropagationOptions): Promise<string[]> {
  if (net.isIP(host)) return [host];
  const r = resolver(opts, opts.lookupServers);
  const v4 = await r.resolve4(host).catch(() => [] as string[]);
  if (v4.length) return v4.slice(0, 1);
  return (await r.resolve6(host).catch(() => [] as string[])).slice(0, 1);
}

/**
 * The servers to ask about a record in `zone`: PORTCULLIS_DNS_RESOLVERS when set, else the zone's
 * NS records (or, when the NS lookup fails, the name servers the provider assigned), each resolved.
 */
export async function nameServersFor(zone: string, providerNameServers: string[], opts: PropagationOptions): Promise<NameServer[]> {
  if (opts.resolvers?.length) {
    return Promise.all(
      opts.resolvers.map(async (entry) => {
        const { host, port } = parseResolver(entry);
        const [address] = await addressesOf(host, opts);
        if (!address) throw new DnsProblem("no_name_servers", `the DNS resolver ${entry} from PORTCULLIS_DNS_RESOLVERS does not resolve to an address`, "Fix PORTCULLIS_DNS_RESOLVERS: give host:port entries, like 1.1.1.1:53.", "", { retryable: false });
        return { label: entry, address: serverAddress(address, port) };
      }),
    );
  }
  const port = opts.authoritativePort ?? 53;
  let hosts = await resolver(opts, opts.lookupServers)
    .resolveNs(zone)
    .catch(() => [] as string[]);
  let lookupFailed = false;
  if (!hosts.length) {
    lookupFailed = true;
    hosts = providerNameServers;
  }
  const servers: NameServer[] = [];
  for (const host of [...new Set(hosts.map((h) => h.toLowerCase().replace(/\.$/, "")))].sort()) {
    const [address] = await addressesOf(host, opts);
    if (address) servers.push({ label: host, address: serverAddress(address, port) });
  }
  if (!servers.length) {
    throw new DnsProblem(
      "no_name_servers",
      `could not find the authoritative name servers of ${zone}${lookupFailed ? " (the NS lookup found none)" : " (their names do not resolve)"}`,
      `Check that ${zone} is delegated to the DNS provider (its NS records at the registrar), or set PORTCULLIS_DNS_RESOLVERS to resolvers that can answer for it.`,
      hosts.length ? `NS: ${hosts.join(", ")}` : "NS lookup: no answer",
      { retryable: true },
    );
  }
  return servers;
}

/** Whether `server` answers every one of `values` for `fqdn`. A failed query counts as not yet. */
export async function serverSees(server: NameServer, fqdn: string, values: string[], opts: PropagationOptions): Promise<boolean> {
  try {
    const records = await resolver(opts, [server.address]).resolveTxt(fqdn);
    const found = new Set(records.map((chunks) => chunks.join("")));
    return values.every((v) => found.has(v));
  } catch {
    return false;
  }
}

/**
 * Polls every server until each answers all `values` at `fqdn`, reporting progress when it changes;
 * throws a DnsProblem (propagation_timeout) naming the servers that never did.
 */
export async function waitForTxt(
  fqdn: string,
  values: string[],
  servers: NameServer[],
  opts: PropagationOptions & { onProgress?: (p: Progress) => Promise<unknown> | void; check?: () => void; zone?: string; providerLabel?: string },
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_PROPAGATION_TIMEOUT_MS;
  const intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
  const started = Date.now();
  let last = -1;
  for (;;) {
    opts.check?.();
    const results = await Promise.all(servers.map((s) => serverSees(s, fqdn, values, opts)));
    const missing = servers.filter((_, i) => !results[i]).map((s) => s.label);
    const seen = servers.length - missing.length;
    const elapsedMs = Date.now() - started;
    if (seen !== last) {
      last = seen;
      await opts.onProgress?.({ fqdn, seen, total: servers.length, missing, servers: servers.map((s) => s.label), elapsedMs });
    }
    if (!missing.length) return;
    if (elapsedMs + intervalMs > timeoutMs) {
      const where = opts.resolvers?.length ? `the resolvers in PORTCULLIS_DNS_RESOLVERS (${missing.join(", ")})` : `the authoritative name servers (${missing.join(", ")})`;
      throw new DnsProblem(
        "propagation_timeout",
        `the TXT record ${fqdn} was not visible on ${where} after ${formatDuration(timeoutMs)}: ${seen} of ${servers.length} servers saw it`,
        `Check that ${opts.providerLabel ?? "the DNS provider"} really serves ${opts.zone ?? "the zone"} (compare its NS records at the registrar with the provider's name servers) and that nothing else (a second provider, DNSSEC trouble) answers for it; Portcullis retries with backoff.`,
        `servers asked: ${servers.map((s) => `${s.label} (${s.address})`).join(", ")}; values: ${values.length}`,
        { retryable: true },
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** "350 ms", "2.4 s": how long a wait took. */
export function formatElapsed(ms: number): string {
  return ms < 1000 ? `${Math.max(1, Math.round(ms))} ms` : `${(ms / 1000).toFixed(1)} s`;
}

export function formatDuration(ms: number): string {
  if (ms % 60_000 === 0) return ms === 60_000 ? "1 minute" : `${ms / 60_000} minutes`;
  const s = Math.round(ms / 1000);
  return s === 1 ? "1 second" : `${s} seconds`;
}
