import crypto from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

// A local stand-in for the Cloudflare v4 API, driven by the real `cloudflare` SDK: the response
// envelope ({success, errors, messages, result, result_info}), page-number pagination (an empty page
// past the last one), Bearer tokens with per-zone read and DNS-edit permissions, and Cloudflare's
// error codes. TXT records are kept in memory and written into DNS (pebble-challtestsrv) so that
// a CA validating DNS-01 sees them. It can be told to answer 429 or 5xx, or to stop writing to DNS.

export type FakeZone = { id?: string; name: string; status?: string; nameServers?: string[] };

export type FakeToken = {
  status?: "active" | "disabled" | "expired";
  /** Zones (by name) the token may read; "all" for every zone. */
  read?: string[] | "all";
  /** Zones (by name) where the token may edit DNS records; "all" for every zone. */
  edit?: string[] | "all";
  /** Whether zone objects carry the legacy `permissions` list (real Cloudflare does for tokens). */
  reportPermissions?: boolean;
  expiresOn?: string;
};

export type FakeRecord = { id: string; zone_id: string; zone_name: string; type: string; name: string; content: string; ttl: number; comment?: string; created_on: string };

export type DnsSink = { setTxt(host: string, value: string): Promise<void>; clearTxt(host: string): Promise<void> };

export type Fault = { status: number; code?: number; message?: string; retryAfter?: string; match?: (req: { method: string; path: string }) => boolean };

export type FakeCloudflare = {
  /** http://127.0.0.1:<port>/client/v4 — PORTCULLIS_CLOUDFLARE_API_URL. */
  url: string;
  zones: Required<FakeZone>[];
  tokens: Map<string, FakeToken>;
  records(): FakeRecord[];
  /** Every request seen: method, path and query (no headers: the token stays out of test output). */
  requests: { method: string; path: string; query: string }[];
  /** The next `count` matching requests fail with this status and Cloudflare error. */
  failNext(count: number, fault: Fault): void;
  /** false: records are accepted and listed, but never reach DNS (a provider that does not serve the zone). */
  setDnsWrites(on: boolean): void;
  addZone(zone: FakeZone): Required<FakeZone>;
  stop(): Promise<void>;
};

const PER_PAGE_DEFAULT = 20;

export async function startFakeCloudflare(opts: { zones: FakeZone[]; tokens: Record<string, FakeToken>; dns?: DnsSink; port?: number }): Promise<FakeCloudflare> {
  const zones: Required<FakeZone>[] = [];
  const addZone = (z: FakeZone) => {
    const zone = { id: z.id ?? crypto.randomBytes(16).toString("hex"), name: z.name.toLowerCase(), status: z.status ?? "active", nameServers: z.nameServers ?? ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"] };
    zones.push(zone);
    return zone;
  };
  opts.zones.forEach(addZone);
  const tokens = new Map(Object.entries(opts.tokens));
  const records: (FakeRecord & { inDns: boolean })[] = [];
  const requests: FakeCloudflare["requests"] = [];
  const faults: { remaining: number; fault: Fault }[] = [];
  let dnsWrites = true;
  // DNS writes happen one at a time, in order.
  let dnsQueue: Promise<void> = Promise.resolve();
  const clearDnsUnlessKept = (name: string) => {
    dnsQueue = dnsQueue.then(async () => {
      if (!opts.dns) return;
      // The sink can only clear every value of a name (pebble-challtestsrv's clear-txt). Clearing and putting
      // back the others would leave a moment with no value at all, in which a CA validating another order
      // for the same name finds none; so a removed value stays in DNS, like one still cached, until the
      // last record of its name goes.
      if (records.some((x) => x.name === name && x.type === "TXT" && x.inDns)) return;
      await opts.dns.clearTxt(name);
    });
    return dnsQueue;
  };

  const can = (token: FakeToken, zone: Required<FakeZone>, what: "read" | "edit") => {
    const list = what === "read" ? (token.read ?? "all") : (token.edit ?? "all");
    return list === "all" || list.includes(zone.name);
  };

  const zoneJson = (zone: Required<FakeZone>, token: FakeToken) => ({
    id: zone.id,
    name: zone.name,
    status: zone.status,
    paused: false,
    type: "full",
    development_mode: 0,
    name_servers: zone.nameServers,
    original_name_servers: null,
    original_registrar: null,
    original_dnshost: null,
    created_on: "2024-01-01T00:00:00Z",
    modified_on: "2024-01-01T00:00:00Z",
    activated_on: "2024-01-01T00:00:00Z",
    meta: { step: 4, custom_certificate_quota: 0, page_rule_quota: 3, phishing_detected: false },
    owner: { id: null, type: "user", email: null },
    account: { id: "acc0000000000000000000000000000", name: "Example account" },
    plan: { id: "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", name: "Free Website", price: 0, currency: "USD", frequency: "", is_subscribed: false, can_subscribe: false, legacy_id: "free", legacy_discount: false, externally_managed: false },
    ...(token.reportPermissions === false ? {} : { permissions: [...(can(token, zone, "read") ? ["#zone:read"] : []), ...(can(token, zone, "edit") ? ["#dns_records:edit", "#dns_records:read"] : [])] }),
  });

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      void handle(req, res, Buffer.concat(chunks).toString("utf8")).catch((err: unknown) => send(res, 500, envelope(false, null, [{ code: 10000, message: `fake failure: ${String(err)}` }])));
    });
  });

  const send = (res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    res.writeHead(status, { "content-type": "application/json", ...headers });
    res.end(JSON.stringify(body));
  };
  const envelope = (success: boolean, result: unknown, errors: { code: number; message: string; error_chain?: unknown[] }[] = [], resultInfo?: unknown) => ({ success, errors, messages: [], result, ...(resultInfo ? { result_info: resultInfo } : {}) });
  const fail = (res: http.ServerResponse, status: number, code: number, message: string, extra: Record<string, unknown> = {}) => send(res, status, envelope(false, null, [{ code, message, ...extra }]));

  const page = <T>(items: T[], query: URLSearchParams) => {
    const perPage = Math.max(1, Math.min(Number(query.get("per_page") ?? PER_PAGE_DEFAULT) || PER_PAGE_DEFAULT, 1000));
    const pageNo = Math.max(1, Number(query.get("page") ?? 1) || 1);
    const slice = items.slice((pageNo - 1) * perPage, pageNo * perPage);
    return { slice, info: { page: pageNo, per_page: perPage, count: slice.length, total_count: items.length, total_pages: Math.ceil(items.length / perPage) } };
  };

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, body: string) {
    const url = new URL(req.url ?? "/", "http://fake");
    const method = req.method ?? "GET";
    const path = url.pathname.replace(/^\/client\/v4/, "");
    requests.push({ method, path, query: url.search });
    const faultAt = faults.findIndex((f) => f.remaining > 0 && (!f.fault.match || f.fault.match({ method, path })));
    if (faultAt >= 0) {
      const { fault } = faults[faultAt];
      if (--faults[faultAt].remaining === 0) faults.splice(faultAt, 1);
      const code = fault.code ?? (fault.status === 429 ? 10013 : 10000);
      return send(res, fault.status, envelope(false, null, [{ code, message: fault.message ?? (fault.status === 429 ? "Rate limited. Please wait and consider throttling your request speed" : "Internal server error") }]), fault.retryAfter ? { "retry-after": fault.retryAfter } : {});
    }

    const auth = req.headers.authorization ?? "";
    const bearer = /^Bearer ([A-Za-z0-9._~+/=-]+)$/.exec(auth);
    if (!bearer) return fail(res, 400, 6003, "Invalid request headers", { error_chain: [{ code: 6111, message: "Invalid format for Authorization header" }] });
    const token = tokens.get(bearer[1]);
    if (path === "/user/tokens/verify" && method === "GET") {
      if (!token) return fail(res, 401, 1000, "Invalid API Token");
      return send(res, 200, envelope(true, { id: crypto.createHash("sha256").update(bearer[1]).digest("hex").slice(0, 32), status: token.status ?? "active", ...(token.expiresOn ? { expires_on: token.expiresOn } : {}) }, [], undefined));
    }
    if (!token || (token.status ?? "active") !== "active") return fail(res, 401, 9109, "Invalid access token");

    if (path === "/zones" && method === "GET") {
      const name = url.searchParams.get("name")?.toLowerCase();
      const visible = zones.filter((z) => can(token, z, "read") && (!name || z.name === name)).sort((a, b) => a.name.localeCompare(b.name));
      const { slice, info } = page(visible, url.searchParams);
      return send(res, 200, envelope(true, slice.map((z) => zoneJson(z, token)), [], info));
    }

    const m = /^\/zones\/([^/]+)\/dns_records(?:\/([^/]+))?$/.exec(path);
    if (!m) return fail(res, 404, 7000, "No route for that URI");
    const zone = zones.find((z) => z.id === m[1]);
    if (!zone || !can(token, zone, "read")) return fail(res, 404, 7003, `Could not route to /zones/${m[1]}/dns_records, perhaps your object identifier is invalid?`);

    if (!m[2] && method === "GET") {
      const q = url.searchParams;
      const matching = records.filter(
        (r) =>
          r.zone_id === zone.id &&
          (!q.get("type") || r.type === q.get("type")) &&
          (!q.get("name.exact") && !q.get("name") ? true : r.name === (q.get("name.exact") ?? q.get("name"))!.toLowerCase()) &&
          (!q.get("content.exact") && !q.get("content") ? true : r.content === (q.get("content.exact") ?? q.get("content"))),
      );
      const { slice, info } = page(matching, q);
      return send(res, 200, envelope(true, slice.map(recordJson), [], info));
    }
    if (!can(token, zone, "edit")) return fail(res, 403, 10000, "Authentication error");
    if (!m[2] && method === "POST") {
      let input: { type?: string; name?: string; content?: string; ttl?: number; comment?: string };
      try {
        input = JSON.parse(body) as typeof input;
      } catch {
        return fail(res, 400, 9207, "Request body is invalid.");
      }
      const name = (input.name ?? "").toLowerCase().replace(/\.$/, "");
      if (input.type !== "TXT" || !name || typeof input.content !== "string") return fail(res, 400, 9005, "Content for TXT record is invalid.");
      if (name !== zone.name && !name.endsWith(`.${zone.name}`)) return fail(res, 400, 9007, `DNS record name ${name} is not in the zone ${zone.name}`);
      if (records.some((r) => r.zone_id === zone.id && r.type === "TXT" && r.name === name && r.content === input.content)) return fail(res, 400, 81058, "An identical record already exists.");
      const record: FakeRecord & { inDns: boolean } = { id: crypto.randomBytes(16).toString("hex"), zone_id: zone.id, zone_name: zone.name, type: "TXT", name, content: input.content, ttl: input.ttl ?? 1, comment: input.comment, created_on: new Date().toISOString(), inDns: dnsWrites };
      records.push(record);
      if (record.inDns && opts.dns) {
        await dnsQueue;
        await opts.dns.setTxt(name, record.content);
      }
      return send(res, 200, envelope(true, recordJson(record)));
    }
    if (m[2] && method === "DELETE") {
      const at = records.findIndex((r) => r.zone_id === zone.id && r.id === m[2]);
      if (at < 0) return fail(res, 404, 81044, "Record does not exist.");
      const [removed] = records.splice(at, 1);
      await clearDnsUnlessKept(removed.name);
      return send(res, 200, envelope(true, { id: removed.id }));
    }
    return fail(res, 405, 10405, "Method not allowed");
  }

  await new Promise<void>((resolve) => server.listen(opts.port ?? 0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/client/v4`,
    zones,
    tokens,
    records: () => records.map(({ inDns: _inDns, ...r }) => r),
    requests,
    failNext: (count, fault) => faults.push({ remaining: count, fault }),
    setDnsWrites: (on) => {
      dnsWrites = on;
    },
    addZone,
    stop: async () => {
      await dnsQueue.catch(() => {});
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function recordJson(r: FakeRecord) {
  return { id: r.id, zone_id: r.zone_id, zone_name: r.zone_name, type: r.type, name: r.name, content: r.content, ttl: r.ttl, proxied: false, proxiable: false, comment: r.comment ?? null, tags: [], settings: {}, meta: {}, created_on: r.created_on, modified_on: r.created_on };
}
