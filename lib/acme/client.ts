import fs from "node:fs";
import https from "node:https";
import tls from "node:tls";
import * as acme from "acme-client";
import axios, { type AxiosAdapter } from "axios";

// acme-client talks through one shared axios instance; everything about transport is set here once.

export type AcmeProblem = { type?: string; detail?: string; status?: number; subproblems?: unknown[] };

/** A CA's error answer, with the RFC 8555 problem document kept (acme-client keeps only its detail text). */
export class AcmeProblemError extends Error {
  constructor(
    readonly problem: AcmeProblem,
    readonly httpStatus: number,
    readonly retryAfterHeader?: string,
  ) {
    super(problem.detail ?? problem.type ?? `the ACME server answered ${httpStatus}`);
    this.name = "AcmeProblemError";
  }
}

let configuredBundle: string | undefined | null = null;

/**
 * Trust the system roots plus PORTCULLIS_ACME_CA_BUNDLE (for private ACME servers), and turn off
 * acme-client's own transparent retries: they sleep up to a minute (or a CA's Retry-After of hours)
 * inside one request, where the engine's schedule should decide instead.
 */
export function configureAcmeTransport(caBundle: string | undefined) {
  if (configuredBundle === caBundle) return;
  let ca: string[] | undefined;
  if (caBundle) {
    let pem: string;
    try {
      pem = fs.readFileSync(caBundle, "utf8");
    } catch (err) {
      throw new Error(`PORTCULLIS_ACME_CA_BUNDLE: cannot read ${caBundle} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    }
    if (!pem.includes("-----BEGIN CERTIFICATE-----")) throw new Error(`PORTCULLIS_ACME_CA_BUNDLE: ${caBundle} holds no PEM certificate`);
    ca = [...tls.rootCertificates, pem];
  }
  // One secure context for every connection: with `ca` given per connection, OpenSSL parses all
  // ~145 roots again for each new socket (34 ms of CPU each, measured in bench/acme).
  const secureContext = ca ? tls.createSecureContext({ ca }) : undefined;
  acme.axios.defaults.httpsAgent = new https.Agent({ keepAlive: true, secureContext });
  // acme-client's retry hook turns a transport error (refused, unknown host, untrusted certificate)
  // into "Cannot read properties of undefined (reading 'config')"; an error without `config` passes
  // through it untouched, so the real code (ECONNREFUSED, SELF_SIGNED_CERT_IN_CHAIN …) reaches us.
  const httpAdapter = axios.getAdapter("http") as AxiosAdapter;
  acme.axios.defaults.adapter = async (config) => {
    try {
      return await httpAdapter(config);
    } catch (err) {
      const e = err as Error & { code?: string; response?: unknown; cause?: unknown };
      if (e.response) throw err;
      throw Object.assign(new Error(e.message), { code: e.code, cause: e.cause });
    }
  };
  acme.axios.defaults.timeout = 30_000;
  const settings = (acme.axios.defaults as unknown as { acmeSettings: { retryMaxAttempts: number } }).acmeSettings;
  settings.retryMaxAttempts = 0;
  acme.setLogger(() => {});
  configuredBundle = caBundle;
}

type ApiRequest = (url: string, payload?: unknown, validStatusCodes?: number[], opts?: Record<string, unknown>) => Promise<{ status: number; data: unknown; headers: Record<string, string> }>;
type ClientInternals = {
  api: { apiRequest: ApiRequest; getAccountUrl(): string };
  http: { signedRequest: (url: string, payload: unknown, opts: Record<string, unknown>) => Promise<{ status: number; data: unknown; headers: Record<string, string> }>; getDirectory(): Promise<Record<string, unknown>> };
};

/** An acme-client Client whose failed requests throw AcmeProblemError with the CA's problem document. */
export function createAcmeClient(opts: acme.ClientOptions): acme.Client {
  const client = new acme.Client({ backoffAttempts: 150, backoffMin: 200, backoffMax: 2_000, ...opts });
  const { api, http } = client as unknown as ClientInternals;
  api.apiRequest = async (url, payload = null, validStatusCodes = [], { includeJwsKid = true, includeExternalAccountBinding = false } = {}) => {
    const kid = includeJwsKid ? api.getAccountUrl() : null;
    const resp = await http.signedRequest(url, payload, { kid, includeExternalAccountBinding });
    if (validStatusCodes.length && !validStatusCodes.includes(resp.status)) {
      const data = (resp.data ?? {}) as AcmeProblem & { error?: AcmeProblem };
      const problem = data.error ?? (data.type || data.detail ? data : { detail: `the ACME server answered HTTP ${resp.status}` });
      throw new AcmeProblemError(problem, resp.status, resp.headers?.["retry-after"]);
    }
    return resp;
  };
  return client;
}

export async function readDirectory(client: acme.Client): Promise<Record<string, unknown>> {
  return (client as unknown as ClientInternals).http.getDirectory();
}

export { acme };
