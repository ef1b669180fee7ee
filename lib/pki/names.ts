import { isIP } from "node:net";
import { domainToASCII } from "node:url";

export type SanEntry = { type: "dns"; value: string } | { type: "ip"; value: string };

export type SanParseResult = { ok: true; entry: SanEntry } | { ok: false; message: string };
export type SanListParseResult = { ok: true; entries: SanEntry[] } | { ok: false; errors: string[] };

export const MAX_NAMES_PER_CERTIFICATE = 100;
const MAX_DNS_NAME_LENGTH = 253;
const MAX_LABEL_LENGTH = 63;
const ALLOWED_CHARACTERS = "a DNS name may only contain letters, digits, hyphens and dots";
const WILDCARD_RULE = "a wildcard may only be the whole left-most label, as in *.example.com";

function quote(text: string, maxLength = 80): string {
  return `"${text.length > maxLength ? `${text.slice(0, maxLength - 1)}…` : text}"`;
}

// The WHATWG URL parser serialises IPv6 hosts in the RFC 5952 form: lowercase, longest zero run compressed.
export function normaliseIpAddress(address: string): string | undefined {
  const version = isIP(address);
  if (version === 4) return address;
  if (version !== 6 || address.includes("%")) return undefined;
  return new URL(`http://[${address}]`).hostname.slice(1, -1);
}

function parseIpAddress(text: string): SanParseResult | undefined {
  const unbracketed = /^\[.*\]$/.test(text) ? text.slice(1, -1) : text;
  const version = isIP(unbracketed);
  if (version === 0) return undefined;
  if (unbracketed.includes("%")) {
    return {
      ok: false,
      message: `${quote(text)} has a zone index (the part after "%"); a certificate can only hold the address itself`,
    };
  }
  return { ok: true, entry: { type: "ip", value: normaliseIpAddress(unbracketed)! } };
}

function toAsciiName(text: string): { ok: true; name: string } | { ok: false; message: string } {
  if (/^[\x00-\x7f]*$/.test(text)) return { ok: true, name: text.toLowerCase() };
  const converted = domainToASCII(text);
  if (converted === "") {
    return {
      ok: false,
      message: `${quote(text)} is not a valid internationalised domain name; check the spelling or enter its xn-- form`,
    };
  }
  return { ok: true, name: converted };
}

function checkLabel(label: string, index: number, original: string): string | undefined {
  if (label === "") {
    return `${quote(original)} has an empty label; remove the extra dot so no two dots are side by side and the name does not start with a dot`;
  }
  if (label.includes("*")) {
    if (index === 0 && label === "*") return undefined;
    return `${quote(original)}: ${WILDCARD_RULE}`;
  }
  if (label.length > MAX_LABEL_LENGTH) {
    return `label ${quote(label, 17)} is ${label.length} characters long; each label between dots may be at most ${MAX_LABEL_LENGTH}`;
  }
  if (label.startsWith("-") || label.endsWith("-")) {
    return `${quote(original)}: a label may not start or end with a hyphen`;
  }
  return undefined;
}

function parseDnsName(original: string): SanParseResult {
  const converted = toAsciiName(original);
  if (!converted.ok) return converted;
  const name = converted.name.endsWith(".") ? converted.name.slice(0, -1) : converted.name;

  const badCharacter = name.match(/[^a-z0-9.*-]/)?.[0];
  if (badCharacter !== undefined) {
    return { ok: false, message: `${quote(original)} contains "${badCharacter}"; ${ALLOWED_CHARACTERS}` };
  }
  if (name.length > MAX_DNS_NAME_LENGTH) {
    return {
      ok: false,
      message: `name is ${name.length} characters long; a DNS name may be at most ${MAX_DNS_NAME_LENGTH}`,
    };
  }

  const labels = name.split(".");
  for (const [index, label] of labels.entries()) {
    const problem = checkLabel(label, index, original);
    if (problem !== undefined) return { ok: false, message: problem };
  }
  if (labels[0] === "*" && labels.length < 3) {
    return {
      ok: false,
      message: `${quote(original)}: a wildcard needs at least two labels after it, as in *.example.com`,
    };
  }
  // A name ending in a numeric label is what a mistyped IPv4 address looks like, and URL parsers read it as one.
  if (/^[0-9]+$/.test(labels[labels.length - 1]!)) {
    return {
      ok: false,
      message: `${quote(original)} is neither a valid IP address nor a DNS name; the last label of a DNS name cannot be all digits`,
    };
  }
  return { ok: true, entry: { type: "dns", value: name } };
}

export function parseSubjectAltName(input: string): SanParseResult {
  const text = input.trim();
  if (text === "") return { ok: false, message: "name is empty; enter a DNS name such as example.com or an IP address" };

  const ipResult = parseIpAddress(text);
  if (ipResult !== undefined) return ipResult;

  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
    return { ok: false, message: `${quote(text)} is a URL; enter only the host name, as in example.com` };
  }
  if (/^[^:]+:[0-9]+$/.test(text)) {
    return { ok: false, message: `${quote(text)} includes a port; enter the name without ":${text.split(":")[1]}"` };
  }
  if (/\s/.test(text)) {
    return { ok: false, message: `${quote(text)} contains a space; ${ALLOWED_CHARACTERS}` };
  }
  return parseDnsName(text);
}

function entryKey(entry: SanEntry): string {
  return `${entry.type}:${entry.value}`;
}

export function parseSubjectAltNames(inputs: string[]): SanListParseResult {
  if (inputs.length === 0) return { ok: false, errors: ["add at least one name"] };
  if (inputs.length > MAX_NAMES_PER_CERTIFICATE) {
    return {
      ok: false,
      errors: [`${inputs.length} names given; a certificate may list at most ${MAX_NAMES_PER_CERTIFICATE}, so split them across certificates`],
    };
  }

  const errors: string[] = [];
  const entries: SanEntry[] = [];
  const seenKeys = new Set<string>();
  const reportedDuplicateKeys = new Set<string>();
  for (const input of inputs) {
    const result = parseSubjectAltName(input);
    if (!result.ok) {
      errors.push(result.message);
      continue;
    }
    const key = entryKey(result.entry);
    if (seenKeys.has(key)) {
      if (!reportedDuplicateKeys.has(key)) errors.push(`${quote(input.trim())} is listed twice`);
      reportedDuplicateKeys.add(key);
      continue;
    }
    seenKeys.add(key);
    entries.push(result.entry);
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, entries };
}

export function splitNameList(text: string): string[] {
  return text
    // Not on spaces: "exa mple.com" is a typo to point out, not two names to accept.
    .split(/[,\r\n]+/)
    .map((item) => item.trim())
    .filter((item) => item !== "");
}
