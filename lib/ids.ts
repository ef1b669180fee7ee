import crypto from "node:crypto";

/** Short, URL-safe, sortable-enough random ids with a readable prefix: crt_3k9…, usr_…, tok_… */
export function newId(prefix: string): string {
  return `${prefix}_${crypto.randomBytes(12).toString("base64url").replace(/[-_]/g, "x")}`;
}

export const nowIso = (now: Date = new Date()) => now.toISOString();
