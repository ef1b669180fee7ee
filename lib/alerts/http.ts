import http from "node:http";
import https from "node:https";
import packageJson from "../../package.json" with { type: "json" };
import { DELIVERY_TIMEOUT_MS } from "./constants";

export const USER_AGENT = `Portcullis/${packageJson.version}`;

export type PostResult = { statusCode: number | null; error: string | null; durationMs: number };

const MAX_ERROR_BODY = 200;

/** POSTs a body and says in plain words what happened; never throws. 2xx is success; redirects are not followed. */
export function postJson(url: string, body: string, headers: Record<string, string>, timeoutMs = DELIVERY_TIMEOUT_MS): Promise<PostResult> {
  const started = performance.now();
  const elapsed = () => Math.max(0, Math.round(performance.now() - started));
  return new Promise((resolve) => {
    let settled = false;
    const done = (statusCode: number | null, error: string | null) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ statusCode, error, durationMs: elapsed() });
    };
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      done(null, "the URL is not valid");
      return;
    }
    const client = target.protocol === "https:" ? https : http;
    const req = client.request(
      target,
      { method: "POST", headers: { ...headers, "Content-Length": String(Buffer.byteLength(body)) }, agent: false },
      (res) => {
        const status = res.statusCode ?? 0;
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk: string) => {
          if (text.length < MAX_ERROR_BODY) text += chunk;
        });
        res.on("error", () => done(status, describeStatus(status, text)));
        res.on("end", () => done(status, describeStatus(status, text)));
      },
    );
    const timer = setTimeout(() => {
      done(null, `no answer within ${Math.round(timeoutMs / 1000)} s (timed out)`);
      req.destroy();
    }, timeoutMs);
    req.on("error", (err) => done(null, describeNetworkError(err as NodeJS.ErrnoException, target)));
    req.end(body);
  });
}

function describeStatus(status: number, body: string): string | null {
  if (status >= 200 && status < 300) return null;
  const snippet = body.replace(/\s+/g, " ").trim().slice(0, MAX_ERROR_BODY);
  const what = status >= 300 && status < 400 ? `the receiver answered HTTP ${status} (a redirect; redirects are not followed: use the final URL)` : `the receiver answered HTTP ${status}`;
  return snippet ? `${what}: ${snippet}` : what;
}

/** Node's error codes in the words an operator uses. */
export function describeNetworkError(err: NodeJS.ErrnoException, target: URL): string {
  const where = `${target.hostname}:${target.port || (target.protocol === "https:" ? 443 : 80)}`;
  switch (err.code) {
    case "ECONNREFUSED":
      return `connection refused by ${where} (nothing is listening there)`;
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return `host name not found: ${target.hostname} does not resolve`;
    case "ECONNRESET":
      return `connection reset by ${where}`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return `${where} is unreachable (no route to the host)`;
    case "ETIMEDOUT":
      return `connecting to ${where} timed out`;
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
    case "SELF_SIGNED_CERT_IN_CHAIN":
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
      return `the receiver's TLS certificate is not trusted (${err.code}); use a publicly trusted certificate, or add its CA with NODE_EXTRA_CA_CERTS`;
    case "CERT_HAS_EXPIRED":
      return "the receiver's TLS certificate has expired";
    case "ERR_TLS_CERT_ALTNAME_INVALID":
      return `the receiver's TLS certificate is not valid for ${target.hostname}`;
    default:
      return err.code ? `could not deliver: ${err.message} (${err.code})` : `could not deliver: ${err.message}`;
  }
}
