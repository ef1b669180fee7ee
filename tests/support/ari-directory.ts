import { X509Certificate } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import type { Pebble } from "./pebble";

// Pebble 2.4 has no ARI (RFC 9773): this HTTPS front passes the whole ACME flow through to pebble and
// adds a renewalInfo endpoint whose window the test controls.

const DEFAULT_RETRY_AFTER_SECONDS = 6 * 60 * 60;
const RENEWAL_INFO_PATH = "/renewal-info";

export type RenewalWindow = { start: Date; end: Date };

export type AriDirectoryOptions = {
  /** The window every renewalInfo answer suggests; without one, see `setWindow(null)`. */
  window?: RenewalWindow;
  retryAfterSeconds?: number;
  explanationURL?: string;
};

export type AriDirectory = {
  /** https://127.0.0.1:<port>/dir: pebble's directory plus renewalInfo, every URL pointing here. */
  directoryUrl: string;
  /** The directory's renewalInfo URL; a client asks `${renewalInfoUrl}/${certID}`. */
  renewalInfoUrl: string;
  /** The certID of every renewalInfo request, in order. */
  requests: string[];
  /** The decoded JWS payload of every newOrder request, in order (look for `replaces`). */
  orderPayloads: Record<string, unknown>[];
  /**
   * Sets the suggested window. `null` derives it from the certificate pebble issued:
   * from half to two thirds of its lifetime (404 when pebble does not know the certificate).
   */
  setWindow(window: RenewalWindow | null): void;
  stop(): Promise<void>;
};

type Upstream = { origin: string; ca: string; newOrderPath: string; managementUrl: string };

type BufferedResponse = { status: number; headers: http.IncomingHttpHeaders; body: Buffer };

export async function startAriDirectory(pebble: Pebble, options: AriDirectoryOptions = {}): Promise<AriDirectory> {
  const upstream = await describeUpstream(pebble);
  const agent = new https.Agent({ keepAlive: true, ca: pebble.caBundlePem });
  let window = options.window ?? null;
  const requests: string[] = [];
  const orderPayloads: Record<string, unknown>[] = [];

  const server = https.createServer({ cert: pebble.serverCertificate.certPem, key: pebble.serverCertificate.keyPem });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const rewrite = (text: string) => text.split(upstream.origin).join(origin);

  const answerDirectory = async (incoming: http.IncomingMessage, response: http.ServerResponse) => {
    const upstreamResponse = await forward(upstream, agent, incoming, Buffer.alloc(0));
    const directory = JSON.parse(rewrite(upstreamResponse.body.toString("utf8"))) as Record<string, unknown>;
    sendJson(response, 200, { ...directory, renewalInfo: `${origin}${RENEWAL_INFO_PATH}` });
  };

  const answerRenewalInfo = async (certId: string, response: http.ServerResponse) => {
    requests.push(certId);
    const suggested = window ?? (await windowFromIssuedCertificate(upstream, certId));
    if (!suggested) return sendProblem(response, 404, "malformed", `no certificate is known for certID ${certId}`);
    const body = {
      suggestedWindow: { start: suggested.start.toISOString(), end: suggested.end.toISOString() },
      ...(options.explanationURL ? { explanationURL: options.explanationURL } : {}),
    };
    sendJson(response, 200, body, { "retry-after": String(options.retryAfterSeconds ?? DEFAULT_RETRY_AFTER_SECONDS) });
  };

  const proxy = async (incoming: http.IncomingMessage, body: Buffer, response: http.ServerResponse) => {
    if (incoming.method === "POST" && pathOf(incoming) === upstream.newOrderPath) {
      const payload = decodeJwsPayload(body);
      if (payload) orderPayloads.push(payload);
    }
    const upstreamResponse = await forward(upstream, agent, incoming, body);
    sendRewritten(response, upstreamResponse, rewrite);
  };

  server.on("request", (incoming: http.IncomingMessage, response: http.ServerResponse) => {
    void (async () => {
      const body = await readBody(incoming);
      const pathname = pathOf(incoming);
      if (incoming.method === "GET" && pathname === "/dir") return answerDirectory(incoming, response);
      if (incoming.method === "GET" && pathname.startsWith(`${RENEWAL_INFO_PATH}/`)) {
        return answerRenewalInfo(decodeURIComponent(pathname.slice(RENEWAL_INFO_PATH.length + 1)), response);
      }
      return proxy(incoming, body, response);
    })().catch((error: unknown) => {
      if (!response.headersSent) sendProblem(response, 502, "serverInternal", `ARI directory wrapper: ${String(error)}`);
      else response.destroy();
    });
  });

  return {
    directoryUrl: `${origin}/dir`,
    renewalInfoUrl: `${origin}${RENEWAL_INFO_PATH}`,
    requests,
    orderPayloads,
    setWindow: (next) => {
      window = next;
    },
    stop: async () => {
      agent.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

async function describeUpstream(pebble: Pebble): Promise<Upstream> {
  const directoryUrl = new URL(pebble.directoryUrl);
  const directory = await getJson(pebble.directoryUrl, pebble.caBundlePem);
  if (typeof directory.newOrder !== "string") throw new Error(`pebble's directory has no newOrder: ${JSON.stringify(directory)}`);
  return {
    origin: directoryUrl.origin,
    ca: pebble.caBundlePem,
    newOrderPath: new URL(directory.newOrder).pathname,
    managementUrl: pebble.managementUrl,
  };
}

/** Sends the request on to pebble as it came, Host included: pebble checks each JWS `url` against it. */
function forward(upstream: Upstream, agent: https.Agent, incoming: http.IncomingMessage, body: Buffer): Promise<BufferedResponse> {
  const target = new URL(incoming.url ?? "/", upstream.origin);
  return new Promise((resolve, reject) => {
    const outgoing = https.request(target, { method: incoming.method, headers: incoming.headers, agent }, (response) => {
      readBody(response).then(
        (responseBody) => resolve({ status: response.statusCode ?? 502, headers: response.headers, body: responseBody }),
        reject,
      );
    });
    outgoing.on("error", reject);
    outgoing.end(body);
  });
}

function sendRewritten(response: http.ServerResponse, upstreamResponse: BufferedResponse, rewrite: (text: string) => string): void {
  const headers: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(upstreamResponse.headers)) {
    if (value === undefined || name === "content-length" || name === "transfer-encoding" || name === "connection") continue;
    headers[name] = Array.isArray(value) ? value.map(rewrite) : rewrite(value);
  }
  const body = isText(upstreamResponse.headers["content-type"])
    ? Buffer.from(rewrite(upstreamResponse.body.toString("utf8")), "utf8")
    : upstreamResponse.body;
  headers["content-length"] = String(body.length);
  response.writeHead(upstreamResponse.status, headers);
  response.end(body);
}

function isText(contentType: string | undefined): boolean {
  return contentType === undefined || /json|text|pem/i.test(contentType);
}

function decodeJwsPayload(body: Buffer): Record<string, unknown> | null {
  try {
    const jws = JSON.parse(body.toString("utf8")) as { payload?: string };
    if (!jws.payload) return null;
    return JSON.parse(Buffer.from(jws.payload, "base64url").toString("utf8")) as Record<string, unknown>;
  } catch {
    return null;
  }
}

/** RFC 9773 certID: base64url(Authority Key Identifier) "." base64url(serial number). */
async function windowFromIssuedCertificate(upstream: Upstream, certId: string): Promise<RenewalWindow | null> {
  const serial = certId.split(".")[1];
  if (!serial) return null;
  const serialHex = Buffer.from(serial, "base64url").toString("hex");
  const status = await getJson(`${upstream.managementUrl}/cert-status-by-serial/${serialHex}`, upstream.ca).catch(() => null);
  if (!status || typeof status.Certificate !== "string") return null;
  const certificate = new X509Certificate(status.Certificate);
  const notBefore = new Date(certificate.validFrom).getTime();
  const lifetime = new Date(certificate.validTo).getTime() - notBefore;
  return { start: new Date(notBefore + Math.floor(lifetime / 2)), end: new Date(notBefore + Math.floor((lifetime * 2) / 3)) };
}

function getJson(url: string, ca: string): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    https
      .get(url, { ca, agent: false }, (response) => {
        readBody(response).then((body) => {
          if (response.statusCode !== 200) return reject(new Error(`GET ${url}: HTTP ${response.statusCode} ${body.toString("utf8")}`));
          resolve(JSON.parse(body.toString("utf8")) as Record<string, unknown>);
        }, reject);
      })
      .on("error", reject);
  });
}

function readBody(stream: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}

function pathOf(incoming: http.IncomingMessage): string {
  return new URL(incoming.url ?? "/", "https://wrapper.invalid").pathname;
}

function sendJson(response: http.ServerResponse, status: number, body: unknown, headers: http.OutgoingHttpHeaders = {}): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text), ...headers });
  response.end(text);
}

function sendProblem(response: http.ServerResponse, status: number, type: string, detail: string): void {
  const text = JSON.stringify({ type: `urn:ietf:params:acme:error:${type}`, detail, status });
  response.writeHead(status, { "content-type": "application/problem+json", "content-length": Buffer.byteLength(text) });
  response.end(text);
}
