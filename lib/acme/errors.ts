// Turns whatever an ACME exchange threw (a CA problem document, acme-client's detail-only Error,
// a transport error) into plain words for an operator: what happened, what to do, and the raw error.

export type AcmeFailureKind =
  | "rate_limited"
  | "connection"
  | "dns"
  | "unauthorized"
  | "tls_untrusted"
  | "ca_unreachable"
  | "ca_error"
  | "bad_request"
  | "account"
  | "caa"
  | "rejected_identifier"
  | "timeout"
  | "dns_provider"
  | "unknown";

export type AcmeFailure = {
  /** Plain words for an operator: what happened. */
  cause: string;
  /** What to do about it. */
  fix: string;
  /** The CA's problem type, status and detail, or the transport error code and message. Never a stack. */
  raw: string;
  kind: AcmeFailureKind;
  /** Worth retrying automatically with backoff: a later attempt may succeed without anyone changing anything. */
  retryable: boolean;
  /** When the CA said to come back. */
  retryAfter?: Date;
  /** The name the failure concerns, when known. */
  identifier?: string;
};

export type AcmeChallengeType = "http-01" | "tls-alpn-01" | "dns-01";

export type AcmeErrorContext = {
  directoryUrl: string;
  step?: string;
  identifier?: string;
  challenge?: AcmeChallengeType;
  now?: Date;
};

const ERROR_URN = "urn:ietf:params:acme:error:";
const RAW_MAX = 600;

const KNOWN_CAS: { host: string; name: string; caaDomain?: string }[] = [
  { host: "acme-v02.api.letsencrypt.org", name: "Let's Encrypt", caaDomain: "letsencrypt.org" },
  { host: "acme-staging-v02.api.letsencrypt.org", name: "Let's Encrypt staging", caaDomain: "letsencrypt.org" },
  { host: "acme.zerossl.com", name: "ZeroSSL", caaDomain: "sectigo.com" },
  { host: "dv.acme-v02.api.pki.goog", name: "Google Trust Services", caaDomain: "pki.goog" },
  { host: "dv.acme-v02.test-api.pki.goog", name: "Google Trust Services staging", caaDomain: "pki.goog" },
  { host: "api.buypass.com", name: "Buypass", caaDomain: "buypass.com" },
];

function directoryHost(directoryUrl: string): string {
  try {
    return new URL(directoryUrl).host.toLowerCase();
  } catch {
    return directoryUrl;
  }
}

function knownCa(directoryUrl: string) {
  const host = directoryHost(directoryUrl);
  return KNOWN_CAS.find((ca) => ca.host === host);
}

/** "Let's Encrypt", "Let's Encrypt staging", "ZeroSSL", … or the directory's host. */
export function caName(directoryUrl: string): string {
  return knownCa(directoryUrl)?.name ?? directoryHost(directoryUrl);
}

/** One line for last_error: "cause — fix". */
export function formatFailure(f: AcmeFailure): string {
  return `${f.cause} — ${f.fix}`.replace(/\s*\n\s*/g, " ");
}

// ---------------------------------------------------------------------------------------------
// Normalising the input

type Problem = {
  type?: string; // short RFC 8555 name ("connection"), or a foreign type URI as given
  detail: string;
  status?: number;
  instance?: string;
  identifier?: string;
  challenge?: AcmeChallengeType;
  subproblems: Problem[];
  retryAfterHeader?: string;
};

type Input =
  | { source: "problem"; problem: Problem }
  | { source: "transport"; code: string; message: string }
  // acme-client retries a request that got no answer, then dereferences the missing response:
  // the original error (refused, unresolvable, untrusted certificate) is gone by then.
  | { source: "lost_transport"; message: string };

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null;
const str = (v: unknown) => (typeof v === "string" ? v : undefined);
const num = (v: unknown) => (typeof v === "number" && Number.isFinite(v) ? v : undefined);
const CHALLENGE_TYPES: readonly string[] = ["http-01", "tls-alpn-01", "dns-01"];
const challengeType = (v: unknown) => (CHALLENGE_TYPES.includes(v as string) ? (v as AcmeChallengeType) : undefined);

function shortType(type: string | undefined): string | undefined {
  return type?.startsWith(ERROR_URN) ? type.slice(ERROR_URN.length) : type;
}

function identifierValue(v: unknown): string | undefined {
  return isObject(v) ? str(v.value) : undefined;
}

function isProblemDocument(v: Obj): boolean {
  return typeof v.detail === "string" || (typeof v.type === "string" && v.type.startsWith(ERROR_URN));
}

function problemFromDocument(doc: Obj, extra: Partial<Problem> = {}): Problem {
  const subproblems = Array.isArray(doc.subproblems) ? doc.subproblems.filter(isObject).map((s) => problemFromDocument(s)) : [];
  return {
    type: shortType(str(doc.type)),
    detail: str(doc.detail) ?? "",
    status: num(doc.status) ?? extra.status,
    instance: str(doc.instance),
    identifier: identifierValue(doc.identifier) ?? extra.identifier,
    challenge: extra.challenge,
    subproblems,
    retryAfterHeader: extra.retryAfterHeader,
  };
}

/** A challenge, authorization or order object whose `error` says why it turned invalid. */
function problemFromAcmeObject(obj: Obj): Problem | undefined {
  const identifier = identifierValue(obj.identifier);
  if (isObject(obj.error)) return problemFromDocument(obj.error, { identifier, challenge: challengeType(obj.type) });
  if (!Array.isArray(obj.challenges)) return undefined;
  const failed = obj.challenges.filter(isObject).find((c) => isObject(c.error));
  if (!failed) return undefined;
  return problemFromDocument(failed.error as Obj, { identifier, challenge: challengeType(failed.type) });
}

function problemFromObject(obj: Obj): Problem | undefined {
  return problemFromAcmeObject(obj) ?? (isProblemDocument(obj) ? problemFromDocument(obj) : undefined);
}

/** acme-client's waitForValidStatus throws the whole authorization as JSON text when it has no top-level error. */
function problemFromJsonText(text: string): Problem | undefined {
  if (!text.trimStart().startsWith("{")) return undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    return isObject(parsed) ? problemFromObject(parsed) : undefined;
  } catch {
    return undefined;
  }
}

function problemFromText(text: string): Problem {
  const fromJson = problemFromJsonText(text);
  if (fromJson) return fromJson;
  const urn = /urn:ietf:params:acme:error:(\w+)/.exec(text);
  return { type: urn?.[1], detail: text, subproblems: [] };
}

function headerValue(headers: unknown, name: string): string | undefined {
  if (!isObject(headers)) return undefined;
  const getter = (headers as { get?: unknown }).get;
  if (typeof getter === "function") {
    const value: unknown = getter.call(headers, name);
    if (typeof value === "string") return value;
  }
  return str(headers[name]) ?? str(headers[name.toLowerCase()]);
}

function problemFromResponse(response: Obj): Problem {
  const status = num(response.status);
  const retryAfterHeader = headerValue(response.headers, "retry-after");
  const data = response.data;
  if (isObject(data)) {
    const problem = problemFromObject(isObject(data.error) ? data.error : data);
    if (problem) return { ...problem, status: problem.status ?? status, retryAfterHeader };
  }
  const body = typeof data === "string" && !data.trimStart().startsWith("<") ? data.slice(0, 200) : "";
  return { detail: body || `the server answered HTTP ${status ?? "?"}`, status, subproblems: [], retryAfterHeader };
}

// Socket, DNS and TLS failure codes from Node, undici and OpenSSL; not axios's ERR_BAD_RESPONSE
// (an answer) nor unrelated codes (SQLITE_BUSY) that a caller might pass along.
const TRANSPORT_CODE = /^(E(?!RR_)[A-Z_]+|CERT_\w+|UNABLE_TO_\w+|\w*SELF_SIGNED\w*|ERR_TLS_\w+|ERR_SSL_\w+|UND_ERR_\w+)$/;

function transportCode(err: Obj): string | undefined {
  const code = str(err.code) ?? (isObject(err.cause) ? str(err.cause.code) : undefined);
  return code && TRANSPORT_CODE.test(code) ? code : undefined;
}

function normalize(err: unknown): Input {
  if (typeof err === "string") return { source: "problem", problem: problemFromText(err) };
  if (!isObject(err)) return { source: "problem", problem: { detail: err === undefined || err === null ? "" : String(err), subproblems: [] } };
  // lib/acme/client.ts's AcmeProblemError keeps the CA's problem document, status and Retry-After.
  if (isObject(err.problem)) {
    return {
      source: "problem",
      problem: problemFromDocument(err.problem, { status: num(err.httpStatus), retryAfterHeader: str(err.retryAfterHeader) }),
    };
  }
  if (isObject(err.response) && num(err.response.status) !== undefined) return { source: "problem", problem: problemFromResponse(err.response) };
  const message = str(err.message) ?? "";
  const code = transportCode(err);
  if (code) return { source: "transport", code, message: message || (isObject(err.cause) ? (str(err.cause.message) ?? "") : "") };
  if (err instanceof TypeError && /reading 'config'/.test(message)) return { source: "lost_transport", message };
  if (!(err instanceof Error)) {
    const problem = problemFromObject(err);
    if (problem) return { source: "problem", problem };
  }
  return { source: "problem", problem: problemFromText(message) };
}

// ---------------------------------------------------------------------------------------------
// Classifying a problem: RFC 8555 type first, the detail's words where the type is generic or lost

type Category =
  | "rateLimited"
  | "connection"
  | "dns"
  | "txtMissing"
  | "incorrectResponse"
  | "tls"
  | "caa"
  | "rejectedIdentifier"
  | "malformed"
  | "badCSR"
  | "badKey"
  | "orderNotReady"
  | "externalAccountRequired"
  | "eabRefused"
  | "accountDoesNotExist"
  | "accountDeactivated"
  | "invalidContact"
  | "userActionRequired"
  | "serverInternal"
  | "badNonce"
  | "noDirectory"
  | "stillPending"
  | "accountRefused"
  | "unknown";

// Order matters: the first match wins. Real wording from boulder, pebble and acme-client.
const TEXT_RULES: [RegExp, Category][] = [
  [/too many (certificates|failed authorizations|new orders|new registrations|requests|pending authorizations)|rate ?limit/i, "rateLimited"],
  [/'externalAccountBinding' field|external account (binding )?(is )?required|requires? an? (binding to another|external account)/i, "externalAccountRequired"],
  [/external account binding|field 'kid' references a key|\bEAB\b/i, "eabRefused"],
  [/CAA record/i, "caa"],
  [/No TXT records? found|NXDOMAIN looking up TXT/i, "txtMissing"],
  [/Incorrect TXT record|Correct value not found for DNS challenge|did not match this challenge|Invalid response from|key authorization|Incorrect validation certificate|Cannot negotiate ALPN|No certs presented/i, "incorrectResponse"],
  [/cannot issue for|public suffix|ICANN TLD|forbidden by policy|with an IP address value|illegal character|invalid character|not a valid domain/i, "rejectedIdentifier"],
  [/DNS problem|NXDOMAIN|SERVFAIL|no valid A records|could not resolve|no such host|while resolving/i, "dns"],
  [/connection refused|timeout during connect|timeout after connect|timeout during (read|write)|network unreachable|no route to host|connection reset|failed to connect to|dial tcp|i\/o timeout|error getting validation data|redirect loop|too many (hops|redirects)|redirect target/i, "connection"],
  [/remote error: tls|tls: |tls handshake/i, "tls"],
  [/anti-replay nonce|bad ?nonce/i, "badNonce"],
  [/terms of service|agreement/i, "userActionRequired"],
  [/no account exists|account does not exist|unable to find account/i, "accountDoesNotExist"],
  [/account (is )?(not valid|deactivated)|deactivated account/i, "accountDeactivated"],
  [/contact (email|url)|invalid contact/i, "invalidContact"],
  [/order is not ready|not ready for finali[sz]ation/i, "orderNotReady"],
  [/\bCSR\b/, "badCSR"],
  [/Attempting to read ACME directory returned error|Unable to locate API resource URL in ACME directory/, "noDirectory"],
  [/Operation is pending or processing/, "stillPending"],
];

const TYPE_CATEGORIES: Record<string, Category> = {
  rateLimited: "rateLimited",
  caa: "caa",
  rejectedIdentifier: "rejectedIdentifier",
  unsupportedIdentifier: "rejectedIdentifier",
  externalAccountRequired: "externalAccountRequired",
  accountDoesNotExist: "accountDoesNotExist",
  userActionRequired: "userActionRequired",
  agreementRequired: "userActionRequired",
  serverInternal: "serverInternal",
  badNonce: "badNonce",
  orderNotReady: "orderNotReady",
  badCSR: "badCSR",
  badRevocationReason: "malformed",
  alreadyRevoked: "malformed",
  badSignatureAlgorithm: "badKey",
  badPublicKey: "badKey",
  invalidContact: "invalidContact",
  unsupportedContact: "invalidContact",
  tls: "tls",
  incorrectResponse: "incorrectResponse",
};

// Types whose detail can say something more specific (pebble reports a refused TLS-ALPN-01 dial as
// "unauthorized", boulder a missing TXT record as "unauthorized").
const GENERIC_TYPES: Record<string, Category> = {
  unauthorized: "incorrectResponse",
  connection: "connection",
  dns: "dns",
  malformed: "malformed",
};

function categorize(problem: Problem, step: string | undefined): Category {
  const type = problem.type;
  if (type && TYPE_CATEGORIES[type]) return TYPE_CATEGORIES[type];
  const fromText = TEXT_RULES.find(([pattern]) => pattern.test(problem.detail))?.[1];
  if (fromText) return fromText;
  if (type && GENERIC_TYPES[type]) {
    if (type === "unauthorized" && step && /account/i.test(step)) return "accountRefused";
    return GENERIC_TYPES[type];
  }
  if (problem.status === 429) return "rateLimited";
  if (problem.status !== undefined && problem.status >= 500) return "serverInternal";
  return "unknown";
}

// ---------------------------------------------------------------------------------------------
// Facts pulled out of the detail text

function formatUtc(date: Date): string {
  const iso = date.toISOString();
  return `${iso.slice(0, 10)} ${date.getUTCSeconds() ? iso.slice(11, 19) : iso.slice(11, 16)} UTC`;
}

/** Boulder writes "retry after 2025-01-01 00:00:00 UTC"; accept RFC 3339 too. */
function retryAfterFromDetail(detail: string): Date | undefined {
  const m = /retry after (\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(UTC|GMT|Z|[+-]\d{2}:?\d{2})?/i.exec(detail);
  if (!m) return undefined;
  const zone = !m[3] || /^(UTC|GMT|Z)$/i.test(m[3]) ? "Z" : m[3];
  const at = new Date(`${m[1]}T${m[2]}${zone}`);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

function retryAfterFromHeader(header: string | undefined, now: Date): Date | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+$/.test(trimmed)) return new Date(now.getTime() + Number(trimmed) * 1000);
  const at = new Date(trimmed);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

function latest(...dates: (Date | undefined)[]): Date | undefined {
  return dates.filter((d): d is Date => d !== undefined).sort((a, b) => b.getTime() - a.getTime())[0];
}

/** "168h0m0s" → "7 days", "1h0m0s" → "hour", "3h0m0s" → "3 hours". */
function goDuration(text: string): string {
  const m = /^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?$/.exec(text);
  const hours = Number(m?.[1] ?? 0);
  if (!m || Number(m[2] ?? 0) || Number(m[3] ?? 0) || !hours) return text;
  if (hours % 24 === 0) return hours === 24 ? "day" : `${hours / 24} days`;
  return hours === 1 ? "hour" : `${hours} hours`;
}

const RATE_LIMIT_DESCRIPTIONS: [RegExp, (m: RegExpExecArray) => string][] = [
  [/too many certificates \((\d+)\) already issued for this exact set of (?:domains|identifiers) in the last (\w+)/i, (m) => `${m[1]} certificates were already issued for exactly these names in the last ${goDuration(m[2])}`],
  [/too many certificates \((\d+)\) already issued for "([^"]+)" in the last (\w+)/i, (m) => `${m[1]} certificates were already issued for ${m[2]} in the last ${goDuration(m[3])}`],
  [/too many failed authorizations \((\d+)\) for "([^"]+)" in the last (\w+)/i, (m) => `${m[2]} failed validation ${m[1]} times in the last ${goDuration(m[3])}`],
  [/too many new orders \((\d+)\) from this account in the last (\w+)/i, (m) => `${m[1]} new orders from this account in the last ${goDuration(m[2])}`],
  [/too many new registrations \((\d+)\) from this (IP address|\/48 subnet of IPv6 addresses) in the last (\w+)/i, (m) => `${m[1]} new accounts from this ${m[2]} in the last ${goDuration(m[3])}`],
  [/too many certificates already issued for exact set of domains/i, () => "too many certificates for exactly these names"],
  [/too many certificates already issued/i, () => "too many certificates for this registered domain"],
  [/too many failed authorizations/i, () => "too many failed validations"],
];

function describeRateLimit(detail: string): string | undefined {
  for (const [pattern, describe] of RATE_LIMIT_DESCRIPTIONS) {
    const m = pattern.exec(detail);
    if (m) return describe(m);
  }
  return undefined;
}

const IDENTIFIER_PATTERNS: RegExp[] = [
  /Cannot issue for "([^"]+)"/i,
  /failed authorizations \(\d+\) for "([^"]+)"/i,
  /(?:Fetching|Get|Invalid response from) "?https?:\/\/\[?([^/\s:"\]]+)/i,
  /_acme-challenge\.([^\s"',:;]+?)\.?(?=[\s"',:;]|$)/i,
  /CAA record for ([^\s"',:;]+?)\.? prevents/i,
  /looking up (?:A|AAAA|TXT|CAA) for ([^\s"',:;]+?)\.?(?=[\s"',:;]|$)/i,
  /IP address value: "([^"]+)"/i,
];

function identifierFromDetail(detail: string): string | undefined {
  for (const pattern of IDENTIFIER_PATTERNS) {
    const m = pattern.exec(detail);
    if (m) return m[1].toLowerCase();
  }
  return undefined;
}

function challengeFromDetail(detail: string): AcmeChallengeType | undefined {
  if (/tls-alpn-01|acme-tls\/1|ALPN/i.test(detail)) return "tls-alpn-01";
  if (/_acme-challenge\.|TXT record|DNS challenge/i.test(detail)) return "dns-01";
  if (/\.well-known\/acme-challenge|Fetching http:|Get "http:/i.test(detail)) return "http-01";
  return undefined;
}

/** The port the CA dialled, when the detail names it (pebble dials its configured ports, not 80/443). */
function portFromDetail(detail: string, challenge: AcmeChallengeType | undefined): number | undefined {
  const url = /(?:Fetching|Get) "?(http:\/\/[^\s"]+)/i.exec(detail);
  if (url && challenge === "http-01") {
    try {
      return Number(new URL(url[1].replace(/:$/, "")).port) || 80;
    } catch {
      return 80;
    }
  }
  const dialled = /(?:Failed to connect to|dial tcp) (?:\[[^\]]+\]|[^\s:]+):(\d+)/i.exec(detail);
  if (dialled) return Number(dialled[1]);
  if (challenge === "http-01") return 80;
  if (challenge === "tls-alpn-01") return 443;
  return undefined;
}

const CONNECTION_REASONS: [RegExp, string][] = [
  [/connection refused/i, "connection refused"],
  [/timeout during connect/i, "timed out while connecting, which usually means a firewall drops the traffic"],
  [/timeout after connect|timeout during (read|write)/i, "timed out after connecting: the server answered too slowly"],
  [/network unreachable|no route to host/i, "network unreachable"],
  [/connection reset/i, "the connection was reset"],
  [/redirect loop|too many (hops|redirects)/i, "the answer URL redirects in a loop"],
  [/redirect target/i, "the answer URL redirects somewhere the CA will not follow"],
  [/i\/o timeout|timeout/i, "timed out"],
];

function connectionReason(detail: string): string | undefined {
  return CONNECTION_REASONS.find(([pattern]) => pattern.test(detail))?.[1];
}

function dnsReason(detail: string): string {
  if (/NXDOMAIN/i.test(detail)) return "the name does not exist in DNS (NXDOMAIN)";
  if (/SERVFAIL/i.test(detail)) return "its nameservers answered with an error (SERVFAIL)";
  if (/timeout|timed out/i.test(detail)) return "its nameservers did not answer in time";
  if (/no valid A records/i.test(detail)) return "it has no A or AAAA record";
  return "the DNS name does not resolve";
}

const NON_PUBLIC_SUFFIXES = /\.(local|localhost|test|example|invalid|internal|lan|home|corp|intranet|private|home\.arpa)$/i;

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

// ---------------------------------------------------------------------------------------------
// Explanations

type Facts = {
  ca: string;
  caHost: string;
  caaDomain?: string;
  name: string; // the identifier, or words standing in for it
  identifier?: string;
  challenge?: AcmeChallengeType;
  problem: Problem;
  detail: string;
  step?: string;
  now: Date;
};

type Explanation = Pick<AcmeFailure, "kind" | "cause" | "fix" | "retryable" | "retryAfter">;

const RETRY_WITH_BACKOFF = "Portcullis retries with backoff; if it keeps failing, read the CA's raw error.";

function explainRateLimited(f: Facts): Explanation {
  const until = latest(retryAfterFromDetail(f.detail), retryAfterFromHeader(f.problem.retryAfterHeader, f.now));
  const what = describeRateLimit(f.detail);
  const cause = `${f.ca} rate limited this request${until ? ` until ${formatUtc(until)}` : ""}${what ? ` (${what})` : ""}`;
  const fix = until
    ? `Wait: Portcullis tries again after ${formatUtc(until)}. Ordering sooner fails again and does not shorten the wait.`
    : "Wait before ordering again: Portcullis backs off on its own. Ordering sooner fails again.";
  return { kind: "rate_limited", cause, fix, retryable: true, retryAfter: until };
}

function explainConnection(f: Facts): Explanation {
  const reason = connectionReason(f.detail);
  const suffix = reason ? ` (${reason})` : "";
  if (f.challenge === "dns-01") {
    return { kind: "connection", cause: `${f.ca} could not reach the nameservers of ${f.name}${suffix}`, fix: `Check that the nameservers of ${f.name} answer queries from the internet.`, retryable: true };
  }
  const port = portFromDetail(f.detail, f.challenge);
  const listener = f.challenge === "tls-alpn-01" ? "HTTPS" : "HTTP";
  const where = port ? `port ${port} of ${f.name}` : f.name;
  return {
    kind: "connection",
    cause: `${f.ca} could not connect to ${where}${suffix}`,
    fix: `Check that the ${listener} listener${port ? ` on port ${port}` : ""} is reachable from the internet: it must be running, the firewall and any port forwarding must let the CA in, and the A/AAAA records of ${f.name} must point at this server.`,
    retryable: true,
  };
}

function explainDns(f: Facts): Explanation {
  return {
    kind: "dns",
    cause: `${f.ca} could not resolve ${f.name}: ${dnsReason(f.detail)}`,
    fix: f.challenge === "dns-01"
      ? `Check the nameservers of ${f.name}: the CA must be able to look up names under it from the internet.`
      : `Add an A or AAAA record for ${f.name} that points at this server (or fix its nameservers), then retry.`,
    retryable: true,
  };
}

function explainTxtMissing(f: Facts): Explanation {
  return {
    kind: "dns",
    cause: `${f.ca} found no TXT record at _acme-challenge.${f.name}`,
    fix: `Check that the DNS credential can edit the zone of ${f.name} and that this provider really serves the zone (compare the domain's NS records); a record created moments ago may not have reached every nameserver yet.`,
    retryable: true,
  };
}

function explainIncorrectResponse(f: Facts): Explanation {
  if (f.challenge === "dns-01") {
    return {
      kind: "dns",
      cause: `the TXT record at _acme-challenge.${f.name} did not hold the value ${f.ca} expected`,
      fix: `Remove stale TXT records there, or wait until the new value reaches every nameserver; if another provider serves the zone, use a credential for that provider.`,
      retryable: true,
    };
  }
  if (f.challenge === "tls-alpn-01") {
    return {
      kind: "unauthorized",
      cause: `the certificate served on port 443 of ${f.name} did not answer ${f.ca}'s TLS-ALPN-01 challenge`,
      fix: "Port 443 must reach Portcullis's HTTPS listener directly: a TLS-terminating proxy, load balancer or CDN in front of it hides the challenge certificate.",
      retryable: true,
    };
  }
  if (f.challenge === "http-01") {
    const status = /Invalid response from (\S+?):? (\d{3})\b/i.exec(f.detail);
    return {
      kind: "unauthorized",
      cause: status
        ? `${f.ca} fetched ${status[1]} and got HTTP ${status[2]} instead of the challenge answer`
        : `the answer served at http://${f.name}/.well-known/acme-challenge/… did not match what ${f.ca} expected`,
      fix: `Make sure requests for http://${f.name}/.well-known/acme-challenge/ reach Portcullis's HTTP listener, not another web server, proxy or CDN in front of it.`,
      retryable: true,
    };
  }
  return {
    kind: "unauthorized",
    cause: `${f.ca} did not accept the challenge answer for ${f.name}: ${truncate(f.detail, 200)}`,
    fix: `Check that ${f.name} points at this server and that nothing in front of it answers the challenge instead.`,
    retryable: true,
  };
}

function explainTls(f: Facts): Explanation {
  const fix = f.challenge === "http-01"
    ? `The CA followed a redirect to HTTPS and the TLS handshake failed: serve http://${f.name}/.well-known/acme-challenge/ without redirecting it, or fix HTTPS for ${f.name}.`
    : "Port 443 must reach Portcullis's HTTPS listener directly and speak TLS there: a TLS-terminating proxy or CDN in front of it breaks TLS-ALPN-01.";
  return { kind: "connection", cause: `${f.ca} had a TLS error while validating ${f.name}${f.challenge === "tls-alpn-01" ? " on port 443" : ""}`, fix, retryable: true };
}

function explainCaa(f: Facts): Explanation {
  const holder = /CAA record for ([^\s"',:;]+?)\.? prevents/i.exec(f.detail)?.[1] ?? f.name;
  const record = f.caaDomain ? `0 issue "${f.caaDomain}"` : "an issue record naming this CA";
  return {
    kind: "caa",
    cause: `a CAA record for ${holder} does not allow ${f.ca} to issue`,
    fix: `Add ${record} to the CAA records of ${holder}, or remove the record that excludes ${f.ca}.`,
    retryable: false,
  };
}

function explainRejectedIdentifier(f: Facts): Explanation {
  const name = f.identifier ?? "a requested name";
  const isIpAddress = /IP address/i.test(f.detail) || /^[\d.]+$|:/.test(f.identifier ?? "");
  if (isIpAddress) {
    return { kind: "rejected_identifier", cause: `${f.ca} will not issue for ${name}: it is an IP address`, fix: "Use a DNS name for this service, or a local-CA certificate for the address.", retryable: false };
  }
  const notPublic = /public suffix|ICANN TLD|illegal character|invalid character|not a valid domain/i.test(f.detail) || NON_PUBLIC_SUFFIXES.test(f.identifier ?? "");
  if (notPublic) {
    return { kind: "rejected_identifier", cause: `${f.ca} will not issue for ${name}: it is not a publicly valid domain name`, fix: "Use a name under a public domain you control, or a local-CA certificate for internal names.", retryable: false };
  }
  return { kind: "rejected_identifier", cause: `${f.ca} will not issue for ${name}: its policy forbids this name`, fix: "Use another CA for this name, or a local-CA certificate.", retryable: false };
}

const BAD_REQUEST_FIX = "Retrying the same request will not help: report it with the raw error.";

function explainBadRequest(f: Facts, what: string, fix = BAD_REQUEST_FIX): Explanation {
  return { kind: "bad_request", cause: `${f.ca} rejected ${what}: ${truncate(f.detail, 200)}`, fix, retryable: false };
}

function explainUserActionRequired(f: Facts): Explanation {
  const link = f.problem.instance ?? /https?:\/\/[^\s"'<>]+/.exec(f.detail)?.[0];
  const terms = /terms|agreement/i.test(f.detail) || !f.detail;
  return {
    kind: "account",
    cause: `${f.ca} needs you to act before it issues again${terms ? ": its terms of service have changed" : `: ${truncate(f.detail, 200)}`}`,
    fix: link ? `Read ${link} and accept the new terms in Settings → ACME.` : `Accept ${f.ca}'s current terms of service in Settings → ACME.`,
    retryable: false,
  };
}

function explainAccount(f: Facts, cause: string, fix: string): Explanation {
  return { kind: "account", cause, fix, retryable: false };
}

const EXPLAIN: Record<Category, (f: Facts) => Explanation> = {
  rateLimited: explainRateLimited,
  connection: explainConnection,
  dns: explainDns,
  txtMissing: explainTxtMissing,
  incorrectResponse: explainIncorrectResponse,
  tls: explainTls,
  caa: explainCaa,
  rejectedIdentifier: explainRejectedIdentifier,
  malformed: (f) => explainBadRequest(f, "the request as malformed"),
  badCSR: (f) => explainBadRequest(f, "the certificate signing request", "Try another key type for this certificate; if it keeps failing, report it with the raw error."),
  badKey: (f) => explainBadRequest(f, "the key type", "Choose another key type (ECDSA P-256 or RSA 2048 are accepted everywhere)."),
  orderNotReady: (f) => ({ kind: "bad_request", cause: `the order was finalized before ${f.ca} had validated every name`, fix: "Portcullis starts a fresh order on the next attempt; report it if this repeats.", retryable: true }),
  externalAccountRequired: (f) => explainAccount(f, `${f.ca} wants External Account Binding for new accounts`, `Add the EAB key id and HMAC key from your ${f.ca} account in Settings → ACME.`),
  eabRefused: (f) => explainAccount(f, `${f.ca} refused the EAB key id or HMAC key`, `Copy the key id and HMAC key again from your ${f.ca} account into Settings → ACME, or create a new pair there.`),
  accountDoesNotExist: (f) => explainAccount(f, `${f.ca} has no account for Portcullis's account key`, "Register the account again in Settings → ACME: the CA may have removed it, or the directory URL changed."),
  accountDeactivated: (f) => explainAccount(f, `${f.ca} says the ACME account is deactivated`, "Create a new account in Settings → ACME."),
  invalidContact: (f) => explainAccount(f, `${f.ca} refused the account's contact address: ${truncate(f.detail, 200)}`, "Use a real, deliverable email address (not one at example.com) in Settings → ACME."),
  accountRefused: (f) => explainAccount(f, `${f.ca} refused the ACME account: ${truncate(f.detail, 200)}`, "Check the account's email and EAB keys in Settings → ACME."),
  userActionRequired: explainUserActionRequired,
  serverInternal: (f) => ({
    kind: "ca_error",
    cause: `${f.ca} had an internal error${f.problem.status ? ` (HTTP ${f.problem.status})` : ""}`,
    fix: "Nothing to change here: Portcullis retries with backoff. If it lasts for hours, check the CA's status page.",
    retryable: true,
  }),
  badNonce: (f) => ({ kind: "ca_error", cause: `${f.ca} refused a stale anti-replay nonce`, fix: "Nothing to change: the next attempt uses a fresh nonce.", retryable: true }),
  noDirectory: (f) => {
    const status = /returned error (\d{3})/.exec(f.detail)?.[1];
    return {
      kind: "ca_error",
      cause: `${f.caHost} did not serve a usable ACME directory${status ? ` (HTTP ${status})` : ""}`,
      fix: "Check the directory URL in Settings → ACME or PORTCULLIS_ACME_DIRECTORY_URL.",
      retryable: status?.startsWith("5") ?? false,
    };
  },
  stillPending: (f) => ({ kind: "timeout", cause: `${f.ca} was still validating ${f.name} when Portcullis stopped waiting`, fix: "Nothing to change if this is rare: the next attempt checks again.", retryable: true }),
  unknown: (f) => ({
    kind: "unknown",
    cause: `${f.ca} request failed${f.step ? ` while ${f.step}` : ""}${f.detail ? `: ${truncate(f.detail, 200)}` : ""}`,
    fix: RETRY_WITH_BACKOFF,
    retryable: true,
  }),
};

// ---------------------------------------------------------------------------------------------
// Transport failures: the CA itself could not be reached

const UNTRUSTED_CODES = new Set([
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
]);
const TIMEOUT_CODES = new Set(["ETIMEDOUT", "ECONNABORTED", "ESOCKETTIMEDOUT", "UND_ERR_CONNECT_TIMEOUT", "UND_ERR_HEADERS_TIMEOUT"]);
const UNREACHABLE_REASONS: Record<string, string> = {
  ECONNREFUSED: "connection refused",
  ECONNRESET: "the connection was reset",
  EPIPE: "the connection was closed",
  EHOSTUNREACH: "no route to the host",
  ENETUNREACH: "network unreachable",
  ENOTFOUND: "its host name does not resolve",
  EAI_AGAIN: "a temporary DNS failure",
};

function explainTransport(code: string, f: Facts): Explanation {
  if (UNTRUSTED_CODES.has(code)) {
    return { kind: "tls_untrusted", cause: `the ACME server's certificate is not trusted (${f.caHost})`, fix: "Add its CA to PORTCULLIS_ACME_CA_BUNDLE.", retryable: false };
  }
  if (code === "CERT_HAS_EXPIRED" || code === "CERT_NOT_YET_VALID") {
    const state = code === "CERT_HAS_EXPIRED" ? "has expired" : "is not valid yet";
    return { kind: "tls_untrusted", cause: `the ACME server's certificate ${state} (${f.caHost})`, fix: "Check this machine's clock; if the ACME server is your own, renew its certificate.", retryable: false };
  }
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") {
    return { kind: "tls_untrusted", cause: `the ACME server's certificate is not valid for ${f.caHost}`, fix: "Use the host name that the server's certificate names in the directory URL.", retryable: false };
  }
  if (TIMEOUT_CODES.has(code)) {
    return { kind: "timeout", cause: `${f.ca} did not answer in time (${f.caHost})`, fix: RETRY_WITH_BACKOFF, retryable: true };
  }
  const reason = UNREACHABLE_REASONS[code] ?? code;
  return {
    kind: "ca_unreachable",
    cause: `could not reach ${f.ca} at ${f.caHost}: ${reason}`,
    fix: `Check the directory URL and that this server can make outbound HTTPS connections to ${f.caHost} (firewall, proxy, DNS).`,
    retryable: true,
  };
}

/** The TypeError hides which transport failure it was: for a public CA, trust is not the likely cause. */
function explainLostTransport(f: Facts): Explanation {
  if (f.caaDomain) {
    return {
      kind: "ca_unreachable",
      cause: `could not reach ${f.ca} at ${f.caHost}`,
      fix: `Check that this server can make outbound HTTPS connections to ${f.caHost} (firewall, proxy, DNS).`,
      retryable: true,
    };
  }
  return {
    kind: "tls_untrusted",
    cause: `the ACME server's certificate is not trusted, or the server cannot be reached (${f.caHost})`,
    fix: `Add its CA to PORTCULLIS_ACME_CA_BUNDLE; if it is trusted already, check the directory URL and that this server can reach ${f.caHost}.`,
    retryable: true,
  };
}

// ---------------------------------------------------------------------------------------------
// Raw text

function sanitize(text: string): string {
  const oneLine = text.replace(/\s+/g, " ").trim().replace(/(\w+:\/\/)[^\s/@]+@/g, "$1");
  return truncate(oneLine, RAW_MAX);
}

function rawProblem(p: Problem): string {
  const type = p.type ? (p.type.includes(":") ? p.type : `${ERROR_URN}${p.type}`) : undefined;
  const head = [type, p.status !== undefined ? `(${p.status})` : undefined].filter(Boolean).join(" ");
  let raw = head ? `${head}: ${p.detail}` : p.detail || "unknown error";
  if (p.subproblems.length) {
    raw += ` [${p.subproblems.map((s) => `${s.identifier ? `${s.identifier}: ` : ""}${s.type ?? "error"}: ${s.detail}`).join("; ")}]`;
  }
  if (p.retryAfterHeader) raw += `; Retry-After: ${p.retryAfterHeader}`;
  return raw;
}

function rawInput(input: Input): string {
  if (input.source === "transport") return sanitize(`${input.code}: ${input.message}`);
  if (input.source === "lost_transport") return sanitize(`TypeError: ${input.message}`);
  return sanitize(rawProblem(input.problem));
}

// ---------------------------------------------------------------------------------------------

/** With subproblems (RFC 8555 §6.7.1), the first one says what went wrong and for which name. */
function focus(problem: Problem): Problem {
  const [first] = problem.subproblems;
  if (!first) return problem;
  return {
    ...first,
    type: first.type ?? problem.type,
    status: first.status ?? problem.status,
    retryAfterHeader: problem.retryAfterHeader,
    challenge: first.challenge ?? problem.challenge,
  };
}

function buildFacts(ctx: AcmeErrorContext, problem: Problem | undefined): Facts {
  const ca = knownCa(ctx.directoryUrl);
  const detail = problem?.detail ?? "";
  const identifier = problem?.identifier ?? ctx.identifier ?? (detail ? identifierFromDetail(detail) : undefined);
  return {
    ca: caName(ctx.directoryUrl),
    caHost: directoryHost(ctx.directoryUrl),
    caaDomain: ca?.caaDomain,
    name: identifier ?? "the requested name",
    identifier,
    challenge: ctx.challenge ?? problem?.challenge ?? challengeFromDetail(detail),
    problem: problem ?? { detail: "", subproblems: [] },
    detail,
    step: ctx.step,
    now: ctx.now ?? new Date(),
  };
}

export function explainAcmeError(err: unknown, ctx: AcmeErrorContext): AcmeFailure {
  const input = normalize(err);
  const raw = rawInput(input);
  let explanation: Explanation;
  let facts: Facts;
  if (input.source === "problem") {
    const problem = focus(input.problem);
    facts = buildFacts(ctx, problem);
    explanation = EXPLAIN[categorize(problem, ctx.step)](facts);
  } else {
    facts = buildFacts(ctx, undefined);
    explanation = input.source === "transport" ? explainTransport(input.code, facts) : explainLostTransport(facts);
  }
  const { retryAfter, ...rest } = explanation;
  return { ...rest, raw, ...(retryAfter ? { retryAfter } : {}), ...(facts.identifier ? { identifier: facts.identifier } : {}) };
}
