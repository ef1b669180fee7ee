import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";

// Envelope: pcs1.<key id>.<iv>.<ciphertext>.<tag>, base64url parts, AES-256-GCM.
// The context (what the secret belongs to, e.g. "certificate-key:<id>") is bound as additional
// data, so an envelope copied onto another row fails to open instead of decrypting there.

const PREFIX = "pcs1";

export class SealError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SealError";
  }
}

export type SealingKey = { id: string; key: Buffer };

export function sealingKeyFromBytes(key: Buffer): SealingKey {
  if (key.length !== 32) throw new SealError("a sealing key must be 32 bytes");
  const id = crypto.createHash("sha256").update("portcullis-key-id").update(key).digest("hex").slice(0, 12);
  return { id, key };
}

/** PORTCULLIS_SECRET is a passphrase of at least 32 characters; the key is derived from it. */
export function sealingKeyFromSecret(secret: string): SealingKey {
  const key = Buffer.from(crypto.hkdfSync("sha256", Buffer.from(secret, "utf8"), "portcullis", "seal-v1", 32));
  return sealingKeyFromBytes(key);
}

export class Keyring {
  private readonly byId: Map<string, SealingKey>;
  constructor(
    readonly current: SealingKey,
    older: SealingKey[] = [],
  ) {
    this.byId = new Map([current, ...older].map((k) => [k.id, k]));
  }

  seal(plaintext: string | Buffer, context: string): string {
    const iv = crypto.randomBytes(12);
    const cipher = crypto.createCipheriv("aes-256-gcm", this.current.key, iv);
    cipher.setAAD(Buffer.from(`${PREFIX}|${this.current.id}|${context}`));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [PREFIX, this.current.id, iv.toString("base64url"), body.toString("base64url"), tag.toString("base64url")].join(".");
  }

  openBuffer(envelope: string, context: string): Buffer {
    const parts = envelope.split(".");
    if (parts.length !== 5 || parts[0] !== PREFIX) throw new SealError("not a sealed value (unknown envelope format)");
    const [, keyId, ivText, bodyText, tagText] = parts;
    const key = this.byId.get(keyId);
    if (!key) {
      throw new SealError(
        `sealed with key ${keyId}, which this process does not have (its key is ${this.current.id}); start it with the PORTCULLIS_SECRET or data-directory key that sealed the data`,
      );
    }
    const iv = Buffer.from(ivText, "base64url");
    const tag = Buffer.from(tagText, "base64url");
    if (iv.length !== 12 || tag.length !== 16) throw new SealError("sealed value is damaged (bad nonce or tag length)");
    try {
      const decipher = crypto.createDecipheriv("aes-256-gcm", key.key, iv);
      decipher.setAAD(Buffer.from(`${PREFIX}|${keyId}|${context}`));
      decipher.setAuthTag(tag);
      return Buffer.concat([decipher.update(Buffer.from(bodyText, "base64url")), decipher.final()]);
    } catch {
      throw new SealError("sealed value failed its integrity check: it was altered, or belongs to another record");
    }
  }

  open(envelope: string, context: string): string {
    return this.openBuffer(envelope, context).toString("utf8");
  }
}

export const KEY_FILE_NAME = "secret.key";

/**
 * The key from PORTCULLIS_SECRET, or from <dataDir>/secret.key, generated on first start (0600).
 * `created` tells the caller to print the loud backup note.
 */
export function loadSealingKey(opts: { secret?: string; dataDir: string }): { key: SealingKey; source: string; created: boolean } {
  if (opts.secret) return { key: sealingKeyFromSecret(opts.secret), source: "PORTCULLIS_SECRET", created: false };
  const file = path.join(opts.dataDir, KEY_FILE_NAME);
  fs.mkdirSync(opts.dataDir, { recursive: true });
  let created = false;
  try {
    // "wx" fails if another process (console and worker start together) wrote it first.
    fs.writeFileSync(file, `${crypto.randomBytes(32).toString("base64")}\n`, { mode: 0o600, flag: "wx" });
    created = true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  let text = "";
  for (let i = 0; i < 50 && !text.trim(); i++) {
    text = fs.readFileSync(file, "utf8");
    if (!text.trim()) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
  }
  const bytes = Buffer.from(text.trim(), "base64");
  if (bytes.length !== 32) {
    throw new SealError(`${file} does not hold a 32-byte base64 key; restore it from your backup, or set PORTCULLIS_SECRET`);
  }
  return { key: sealingKeyFromBytes(bytes), source: file, created };
}

export const BACKUP_NOTE = (file: string) =>
  [
    "",
    "!!! ------------------------------------------------------------------------------ !!!",
    `!!! A new sealing key was generated at ${file}`,
    "!!! It encrypts every private key and secret in the database. Back it up now, with the",
    "!!! database: without it, sealed secrets cannot be recovered. Or set PORTCULLIS_SECRET.",
    "!!! ------------------------------------------------------------------------------ !!!",
    "",
  ].join("\n");
