import Cloudflare from "cloudflare";
import { DnsProblem, type DnsProvider, type DnsZone, type TokenState } from "./provider";

// Cloudflare through its official SDK. Every SDK error becomes a DnsProblem in plain words with
// Cloudflare's own code beside them; the token never appears in a message.

export const CLOUDFLARE_API_URL = "https://api.cloudflare.com/client/v4";
const REQUEST_TIMEOUT_MS = 30_000;
const TXT_TTL_SECONDS = 60;

const NEEDS = "Zone → Zone → Read and Zone → DNS → Edit";
const NEW_TOKEN_FIX = `Create an API token in the Cloudflare dashboard (My Profile → API Tokens → Create Token, "Edit zone DNS" template) with ${NEEDS} for your zones, and paste it into Settings → DNS.`;

// Cloudflare's codes for a token it does not accept at all.
const TOKEN_CODES = new Set([1000, 1001, 9103, 9106, 9109, 10001]);
const HEADER_CODES = new Set([6003, 6111, 6100, 6101, 6102, 6103]);
const RATE_CODES = new Set([971, 10013, 10429, 10502]);
const EXISTS_CODES = new Set([81057, 81058]);
const ZONE_CODES = new Set([1003, 7003, 7000, 1049]);

type SdkError = { status?: number; errors?: { code?: number; message?: string; error_chain?: { code?: number; message?: string }[] }[]; headers?: Headers; message?: string; cause?: unknown };

export type CloudflareOptions = { apiUrl?: string; timeoutMs?: number };

export class CloudflareProvider implements DnsProvider {
  readonly kind = "cloudflare" as const;
  readonly label = "Cloudflare";
  private readonly client: Cloudflare;
  private readonly apiHost: string;

  constructor(token: string, opts: CloudflareOptions = {}) {
    const baseURL = opts.apiUrl ?? CLOUDFLARE_API_URL;
    this.apiHost = safeHost(baseURL);
    // Explicit nulls: the SDK would otherwise pick up CLOUDFLARE_API_KEY / CLOUDFLARE_EMAIL from the environment.
    this.client = new Cloudflare({ apiToken: token, apiKey: null, apiEmail: null, userServiceKey: null, baseURL, maxRetries: 0, timeout: opts.timeoutMs ?? REQUEST_TIMEOUT_MS, logLevel: "off" });
  }

  async verifyToken(): Promise<TokenState> {
    const result = await this.call("checking the API token", () => this.client.user.tokens.verify());
    const now = Date.now();
    if (result.not_before && new Date(result.not_before).getTime() > now) return { status: "not_yet_valid", notBefore: result.not_before, expiresOn: result.expires_on };
    return { status: result.status, expiresOn: result.expires_on, notBefore: result.not_before };
  }

  async listZones(): Promise<DnsZone[]> {
    return this.call("listing the zones the token can read", async () => {
      const zones: DnsZone[] = [];
      for await (const zone of this.client.zones.list({ per_page: 50 })) {
        zones.push(toZone(zone));
        if (zones.length >= 5000) break;
      }
      return zones;
    });
  }

  async findZone(name: string): Promise<DnsZone | undefined> {
    const wanted = name.toLowerCase();
    const page = await this.call(`looking up the zone ${wanted}`, () => this.client.zones.list({ name: wanted }));
    const zone = page.result.find((z) => z.name.toLowerCase() === wanted);
    return zone ? toZone(zone) : undefined;
  }

  async createTxt(zone: DnsZone, fqdn: string, value: string): Promise<string> {
    const record = await this.call(
      `creating the TXT record ${fqdn} in the zone ${zone.name}`,
      () => this.client.dns.records.create({ zone_id: zone.id, type: "TXT", name: fqdn, content: value, ttl: TXT_TTL_SECONDS, comment: "ACME DNS-01 challenge (Portcullis); removed after validation" }),
      zone.name,
    );
    if (!record.id) throw new DnsProblem("provider_error", `Cloudflare created the TXT record ${fqdn} but returned no record id`, "Retry; if it repeats, report it with the raw answer.", "no result.id in the answer", { retryable: true });
    return record.id;
  }

  async findTxt(zone: DnsZone, fqdn: string, value: string): Promise<string[]> {
    return this.call(
      `looking up the TXT records at ${fqdn}`,
      async () => {
        const ids: string[] = [];
        for await (const record of this.client.dns.records.list({ zone_id: zone.id, type: "TXT", name: { exact: fqdn }, per_page: 100 })) {
          if (unquote(record.content ?? "") === value && record.id) ids.push(record.id);
        }
        return ids;
      },
      zone.name,
    );
  }

  async deleteTxt(zone: DnsZone, recordId: string): Promise<void> {
    try {
      await this.client.dns.records.delete(recordId, { zone_id: zone.id });
    } catch (err) {
      const e = err as SdkError;
      // Already gone (deleted by hand, or by an earlier attempt whose answer was lost): nothing to do.
      if (e.status === 404 || codesOf(e).some((c) => c === 81044 || c === 1032)) return;
      throw this.explain(err, `deleting a TXT record in the zone ${zone.name}`, zone.name);
    }
  }

  private async call<T>(what: string, fn: () => Promise<T>, zoneName?: string): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.explain(err, what, zoneName);
    }
  }

  /** Cloudflare's answer in plain words, its codes beside them. */
  explain(err: unknown, what: string, zoneName?: string): DnsProblem {
    if (err instanceof DnsProblem) return err;
    const e = (err ?? {}) as SdkError;
    const status = typeof e.status === "number" ? e.status : undefined;
    const codes = codesOf(e);
    const raw = rawOf(e, status);
    const has = (set: Set<number>) => codes.some((c) => set.has(c));
    const httpStatus = status;
    if (err instanceof Cloudflare.APIConnectionTimeoutError) {
      return new DnsProblem("unreachable", `the Cloudflare API at ${this.apiHost} did not answer in time while ${what}`, "Retry later; if it lasts, check this server's outbound HTTPS connections (firewall, proxy).", raw || "timeout", { retryable: true });
    }
    if (err instanceof Cloudflare.APIConnectionError || (status === undefined && !codes.length)) {
      const reason = connectionReason(e);
      return new DnsProblem("unreachable", `could not reach the Cloudflare API at ${this.apiHost} while ${what}${reason ? `: ${reason}` : ""}`, "Check that this server can make outbound HTTPS connections to api.cloudflare.com (firewall, proxy, DNS), and PORTCULLIS_CLOUDFLARE_API_URL if it is set.", raw || (e.message ?? "connection error"), { retryable: true });
    }
    if (status === 429 || has(RATE_CODES)) {
      const retryAfter = retryAfterOf(e.headers);
      return new DnsProblem("rate_limited", `Cloudflare rate limited the requests while ${what}${retryAfter ? ` until ${retryAfter.toISOString().slice(11, 19)} UTC` : ""}`, "Wait a few minutes: Portcullis retries with backoff. Many certificates renewing at once share Cloudflare's limit of 1200 requests per 5 minutes.", raw, { retryable: true, retryAfter, httpStatus });
    }
    if (status !== undefined && status >= 500) {
      return new DnsProblem("provider_error", `Cloudflare had an internal error (HTTP ${status}) while ${what}`, "Nothing to change here: Portcullis retries with backoff. If it lasts, check www.cloudflarestatus.com.", raw, { retryable: true, httpStatus });
    }
    if (has(HEADER_CODES)) {
      return new DnsProblem("token_invalid", "Cloudflare did not accept the API token's format", `Paste the API token itself (about 40 letters, digits, - and _), not the Global API Key, an Origin CA key or "Bearer …". ${NEW_TOKEN_FIX}`, raw, { retryable: false, httpStatus });
    }
    if (status === 401 || has(TOKEN_CODES)) {
      return new DnsProblem("token_invalid", "Cloudflare rejected the API token: it is invalid, expired or was deleted", NEW_TOKEN_FIX, raw, { retryable: false, httpStatus });
    }
    if (status === 403 || codes.includes(10000)) {
      const where = zoneName ? ` in the zone ${zoneName}` : "";
      const missing = /record/i.test(what) ? "Zone → DNS → Edit" : "Zone → Zone → Read";
      return new DnsProblem("permission", `the Cloudflare token is not allowed to do this${where} (${what})`, `Edit the token in the Cloudflare dashboard (My Profile → API Tokens) and give it ${missing}${zoneName ? ` for ${zoneName}` : ""}; it needs ${NEEDS}.`, raw, { retryable: false, httpStatus });
    }
    if (has(EXISTS_CODES)) {
      return new DnsProblem("record_exists", `Cloudflare already has this TXT record (${what})`, "Portcullis reuses an identical record; remove stale _acme-challenge records by hand if this repeats.", raw, { retryable: true, httpStatus });
    }
    if (status === 404 || has(ZONE_CODES)) {
      return new DnsProblem("zone_not_found", `Cloudflare has no zone${zoneName ? ` ${zoneName}` : ""} that this token can see (${what})`, `Check that the zone exists in this Cloudflare account and that the token covers it (${NEEDS}).`, raw, { retryable: false, httpStatus });
    }
    const message = e.errors?.[0]?.message ?? "";
    return new DnsProblem("bad_request", `Cloudflare refused the request while ${what}${message ? `: ${message}` : ""}`, "Check the names and the token; if it repeats, report it with the raw error.", raw, { retryable: false, httpStatus });
  }
}

function toZone(zone: { id: string; name: string; status?: string; name_servers?: string[]; permissions?: string[] }): DnsZone {
  const permissions = Array.isArray(zone.permissions) ? zone.permissions : undefined;
  return {
    id: zone.id,
    name: zone.name.toLowerCase().replace(/\.$/, ""),
    status: zone.status ?? "active",
    nameServers: zone.name_servers ?? [],
    canEditDns: permissions ? permissions.includes("#dns_records:edit") : null,
  };
}

function codesOf(e: SdkError): number[] {
  const out: number[] = [];
  for (const item of e.errors ?? []) {
    if (typeof item.code === "number") out.push(item.code);
    for (const link of item.error_chain ?? []) if (typeof link.code === "number") out.push(link.code);
  }
  return out;
}

/** "Cloudflare 9109: Invalid access token (HTTP 401)": the codes and messages Cloudflare sent, nothing else. */
function rawOf(e: SdkError, status: number | undefined): string {
  const parts = (e.errors ?? []).flatMap((item) => [item, ...(item.error_chain ?? [])]).map((item) => `${item.code ?? "?"}: ${String(item.message ?? "").slice(0, 200)}`);
  const codes = parts.length ? `Cloudflare ${parts.join("; ")}` : "";
  const http = status !== undefined ? `HTTP ${status}` : "";
  return codes && http ? `${codes} (${http})` : codes || http;
}

function connectionReason(e: SdkError): string | undefined {
  let cause: unknown = e.cause;
  for (let i = 0; i < 4 && cause; i++) {
    const c = cause as { code?: string; cause?: unknown };
    if (c.code === "ECONNREFUSED") return "connection refused";
    if (c.code === "ENOTFOUND") return "its host name does not resolve";
    if (c.code === "ECONNRESET") return "the connection was reset";
    if (c.code === "ETIMEDOUT" || c.code === "UND_ERR_CONNECT_TIMEOUT") return "the connection timed out";
    if (c.code && /CERT|SSL|TLS/.test(c.code)) return `its TLS certificate was not accepted (${c.code})`;
    cause = c.cause;
  }
  return undefined;
}

function retryAfterOf(headers: Headers | undefined): Date | undefined {
  const value = headers?.get?.("retry-after");
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return new Date(Date.now() + Number(value.trim()) * 1000);
  const at = new Date(value);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return "the configured API URL";
  }
}

/** Cloudflare may store TXT content quoted ("…"); the value is what is inside. */
function unquote(content: string): string {
  return /^".*"$/.test(content) ? content.slice(1, -1) : content;
}
