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

/** Where a keyring's keys come from, re-read when an envelope names a key this process does not hold. */
export interface KeySource {
  load(): { current: SealingKey; older: SealingKey[] };
  /** Cheap check (file metadata) whether load() would now give other keys; called before sealing. */
  changed?(): boolean;
}

export class Keyring {
  private currentKey: SealingKey;
  private byId: Map<string, SealingKey>;
  constructor(
    current: SealingKey,
    older: SealingKey[] = [],
    private readonly source?: KeySource,
  ) {
    this.currentKey = current;
    this.byId = new Map([current, ...older].map((k) => [k.id, k]));
  }

  /** The key new values are sealed with. */
  get current(): SealingKey {
    return this.currentKey;
  }

  /** Ids of every key this keyring opens with, the current one first. */
  keyIds(): string[] {
    return [this.currentKey.id, ...[...this.byId.keys()].filter((id) => id !== this.currentKey.id)];
  }

  /**
   * Re-reads the key source (a rotation by another process renamed the key files): the keys read are
   * added, none is forgotten, so values sealed before still open.
   */
  refresh(): boolean {
    if (!this.source) return false;
    let loaded: { current: SealingKey; older: SealingKey[] };
    try {
      loaded = this.source.load();
    } catch {
      return false;
    }
    const before = this.currentKey.id;
    const known = this.byId.size;
    for (const k of [loaded.current, ...loaded.older]) this.byId.set(k.id, k);
    this.currentKey = loaded.current;
    return this.byId.size !== known || before !== loaded.current.id;
  }

  seal(plaintext: string | Buffer, context: string): string {
    if (this.source?.changed?.()) this.refresh();
    const current = this.currentKey;
    const iv = crypto.randomBytes(12);
    const cipher = crypto.createCipheriv("aes-256-gcm", current.key, iv);
    cipher.setAAD(Buffer.from(`${PREFIX}|${current.id}|${context}`));
    const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    const tag = cipher.getAuthTag();
    return [PREFIX, current.id, iv.toString("base64url"), body.toString("base64url"), tag.toString("base64url")].join(".");
  }

  openBuffer(envelope: string, context: string): Buffer {
    const parts = envelope.split(".");
    if (parts.length !== 5 || parts[0] !== PREFIX) throw new SealError("not a sealed value (unknown envelope format)");
    const [, keyId, ivText, bodyText, tagText] = parts;
    let key = this.byId.get(keyId);
    if (!key && this.refresh()) key = this.byId.get(keyId);
    if (!key) {
      throw new SealError(
        `sealed with key ${keyId}, which this process does not have (its key is ${this.currentKey.id}); start it with the PORTCULLIS_SECRET or data-directory key that sealed the data`,
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

/** The key id an envelope names, or undefined for a value that is not an envelope. */
export function envelopeKeyId(value: string): string | undefined {
  const parts = value.split(".");
  return parts.length === 5 && parts[0] === PREFIX ? parts[1] : undefined;
}

export const KEY_FILE_NAME = "secret.key";
/** Written by `portcullis secret rotate` before it re-seals; becomes secret.key once the database is re-sealed. */
export const NEXT_KEY_FILE_NAME = "secret.key.next";
/** The key before the last rotation, kept so that values sealed with it (by a process that had not yet seen the rotation) still open. */
export const PREVIOUS_KEY_FILE_NAME = "secret.key.previous";

function readKeyFile(file: string): SealingKey | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return parseKeyText(file, text);
}

function parseKeyText(file: string, text: string): SealingKey {
  const bytes = Buffer.from(text.trim(), "base64");
  if (bytes.length !== 32) {
    throw new SealError(`${file} does not hold a 32-byte base64 key; restore it from your backup, or set PORTCULLIS_SECRET`);
  }
  return sealingKeyFromBytes(bytes);
}

/** Writes a key file atomically (temporary file, fsync, rename), mode 0600. */
export function writeKeyFile(file: string, key: Buffer) {
  const tmp = `${file}.tmp-${process.pid}-${crypto.randomBytes(4).toString("hex")}`;
  const fd = fs.openSync(tmp, "wx", 0o600);
  try {
    fs.writeSync(fd, `${key.toString("base64")}\n`);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
  syncDirectory(path.dirname(file));
}

export function syncDirectory(dir: string) {
  try {
    const fd = fs.openSync(dir, "r");
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    // Not every platform can fsync a directory; the rename is still atomic.
  }
}

/**
 * The data directory's keys: secret.key seals; secret.key.next (a rotation in progress) and
 * secret.key.previous (the key before the last rotation) open too. Re-read on demand, so that a
 * running console or worker follows a rotation made by `portcullis secret rotate`.
 */
export class DataDirKeySource implements KeySource {
  readonly dataDir: string;
  private lastSignature: string;
  constructor(dataDir: string) {
    this.dataDir = dataDir;
    this.lastSignature = this.signature();
  }

  files() {
    return {
      current: path.join(this.dataDir, KEY_FILE_NAME),
      next: path.join(this.dataDir, NEXT_KEY_FILE_NAME),
      previous: path.join(this.dataDir, PREVIOUS_KEY_FILE_NAME),
    };
  }

  load(): { current: SealingKey; older: SealingKey[] } {
    const f = this.files();
    const current = readKeyFile(f.current);
    const next = readKeyFile(f.next);
    const previous = readKeyFile(f.previous);
    // secret.key is only ever replaced by a rename, never removed; if an operator lost it, the
    // rotation's next key is the newest one the database can be sealed with.
    const sealWith = current ?? next;
    if (!sealWith) throw new SealError(`${f.current} is missing; restore it from your backup, or set PORTCULLIS_SECRET`);
    return { current: sealWith, older: [next, previous].filter((k): k is SealingKey => Boolean(k) && k!.id !== sealWith.id) };
  }

  private signature(): string {
    return Object.values(this.files())
      .map((file) => {
        try {
          const st = fs.statSync(file);
          return `${st.ino}:${st.mtimeMs}:${st.size}`;
        } catch {
          return "-";
        }
      })
      .join("|");
  }

  changed(): boolean {
    const now = this.signature();
    if (now === this.lastSignature) return false;
    this.lastSignature = now;
    return true;
  }
}

/** PORTCULLIS_SECRET seals; PORTCULLIS_SECRET_PREVIOUS (during a rotation) opens too. */
export class SecretKeySource implements KeySource {
  constructor(
    private readonly secret: string,
    private readonly previous: string[] = [],
  ) {}
  load() {
    const current = sealingKeyFromSecret(this.secret);
    return { current, older: this.previous.map(sealingKeyFromSecret).filter((k) => k.id !== current.id) };
  }
}

/**
 * The key from PORTCULLIS_SECRET, or from <dataDir>/secret.key, generated on first start (0600).
 * `created` tells the caller to print the loud backup note.
 */
export function loadSealingKey(opts: { secret?: string; dataDir: string }): { key: SealingKey; source: string; created: boolean } {
  if (opts.secret) return { key: sealingKeyFromSecret(opts.secret), source: "PORTCULLIS_SECRET", created: false };
  const dirSource = new DataDirKeySource(opts.dataDir);
  const files = dirSource.files();
  fs.mkdirSync(opts.dataDir, { recursive: true });
  let created = false;
  // A missing secret.key next to a rotation's files is not a first start: never generate over it.
  if (!fs.existsSync(files.next) && !fs.existsSync(files.previous)) {
    try {
      // "wx" fails if another process (console and worker start together) wrote it first.
      fs.writeFileSync(files.current, `${crypto.randomBytes(32).toString("base64")}\n`, { mode: 0o600, flag: "wx" });
      created = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
  let key: SealingKey | undefined;
  for (let i = 0; ; i++) {
    let text: string;
    try {
      text = fs.readFileSync(files.current, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      break;
    }
    // Empty: the other process created the file a moment ago and has not written it yet.
    if (!text.trim() && i < 50) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      continue;
    }
    key = parseKeyText(files.current, text);
    break;
  }
  key ??= dirSource.load().current;
  return { key, source: files.current, created };
}

/** The keyring of a process: the sealing key plus every key that still opens (rotation), re-read on demand. */
export function loadKeyring(opts: { secret?: string; previousSecrets?: string[]; dataDir: string }): { keyring: Keyring; source: string; created: boolean } {
  if (opts.secret) {
    const source = new SecretKeySource(opts.secret, opts.previousSecrets ?? []);
    const { current, older } = source.load();
    return { keyring: new Keyring(current, older, source), source: "PORTCULLIS_SECRET", created: false };
  }
  const { key, source, created } = loadSealingKey({ dataDir: opts.dataDir });
  const dirSource = new DataDirKeySource(opts.dataDir);
  const { current, older } = dirSource.load();
  const keyring = new Keyring(current, [key, ...older].filter((k) => k.id !== current.id), dirSource);
  return { keyring, source, created };
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
