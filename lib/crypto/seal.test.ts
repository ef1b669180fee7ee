import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { envelopeKeyId, Keyring, loadKeyring, loadSealingKey, SealError, sealingKeyFromBytes, sealingKeyFromSecret, writeKeyFile } from "./seal";

const keyring = () => new Keyring(sealingKeyFromBytes(crypto.randomBytes(32)));

function flip(envelope: string, part: number) {
  const parts = envelope.split(".");
  const bytes = Buffer.from(parts[part], "base64url");
  bytes[0] ^= 0x01;
  parts[part] = bytes.toString("base64url");
  return parts.join(".");
}

describe("sealing", () => {
  it("round-trips text and binary and never leaves the plaintext in the envelope", () => {
    const k = keyring();
    const secret = "-----BEGIN PRIVATE KEY-----\nMIG…\n-----END PRIVATE KEY-----\n";
    const sealed = k.seal(secret, "certificate-key:crt_1");
    expect(sealed).toMatch(/^pcs1\.[0-9a-f]{12}\./);
    expect(sealed).not.toContain("PRIVATE");
    expect(k.open(sealed, "certificate-key:crt_1")).toBe(secret);
    const binary = crypto.randomBytes(100);
    expect(k.openBuffer(k.seal(binary, "x"), "x").equals(binary)).toBe(true);
  });

  it("uses a fresh nonce each time", () => {
    const k = keyring();
    expect(k.seal("same", "c")).not.toBe(k.seal("same", "c"));
  });

  it("refuses a tampered nonce, ciphertext or tag", () => {
    const k = keyring();
    const sealed = k.seal("a secret value", "c");
    for (const part of [2, 3, 4]) {
      expect(() => k.open(flip(sealed, part), "c")).toThrow(SealError);
    }
  });

  it("refuses an envelope moved to another record (context is bound)", () => {
    const k = keyring();
    const sealed = k.seal("key of crt_1", "certificate-key:crt_1");
    expect(() => k.open(sealed, "certificate-key:crt_2")).toThrow(/integrity check/);
  });

  it("refuses an envelope from a foreign key with a message naming both key ids", () => {
    const mine = keyring();
    const theirs = keyring();
    const sealed = theirs.seal("x", "c");
    expect(() => mine.open(sealed, "c")).toThrow(new RegExp(`sealed with key ${theirs.current.id}`));
  });

  it("refuses a key id swapped onto another key's envelope", () => {
    const a = keyring();
    const b = keyring();
    const sealed = a.seal("x", "c").split(".");
    sealed[1] = b.current.id;
    expect(() => new Keyring(b.current, [a.current]).open(sealed.join("."), "c")).toThrow(SealError);
  });

  it("refuses things that are not envelopes", () => {
    const k = keyring();
    for (const bad of ["", "plain text", "pcs1.a.b.c", "pcs2.a.b.c.d", `pcs1.${k.current.id}.AAAA.AAAA.AAAA`]) {
      expect(() => k.open(bad, "c")).toThrow(SealError);
    }
  });

  it("opens envelopes of an older key after rotation", () => {
    const old = keyring();
    const sealed = old.seal("x", "c");
    const rotated = new Keyring(sealingKeyFromBytes(crypto.randomBytes(32)), [old.current]);
    expect(rotated.open(sealed, "c")).toBe("x");
  });

  it("derives the same key from the same PORTCULLIS_SECRET, and another from another", () => {
    const a = sealingKeyFromSecret("a".repeat(32));
    expect(sealingKeyFromSecret("a".repeat(32)).key.equals(a.key)).toBe(true);
    expect(sealingKeyFromSecret("b".repeat(32)).id).not.toBe(a.id);
  });

  it("generates the key file once, mode 0600, and reuses it", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-seal-"));
    try {
      const first = loadSealingKey({ dataDir: dir });
      expect(first.created).toBe(true);
      expect(fs.statSync(path.join(dir, "secret.key")).mode & 0o777).toBe(0o600);
      const second = loadSealingKey({ dataDir: dir });
      expect(second.created).toBe(false);
      expect(second.key.id).toBe(first.key.id);
      fs.writeFileSync(path.join(dir, "secret.key"), "garbage\n");
      expect(() => loadSealingKey({ dataDir: dir })).toThrow(/does not hold a 32-byte base64 key/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("a running process's keyring follows a rotation made by another: it reads secret.key.next and the renamed files when it meets an unknown key id", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-seal-"));
    try {
      const running = loadKeyring({ dataDir: dir }).keyring;
      const before = running.seal("old value", "c");
      const nextBytes = crypto.randomBytes(32);
      const next = new Keyring(sealingKeyFromBytes(nextBytes));
      const sealedByRotation = next.seal("re-sealed", "c");
      expect(() => running.open(sealedByRotation, "c")).toThrow(/does not have/);

      writeKeyFile(path.join(dir, "secret.key.next"), nextBytes);
      expect(fs.statSync(path.join(dir, "secret.key.next")).mode & 0o777).toBe(0o600);
      expect(running.open(sealedByRotation, "c")).toBe("re-sealed");
      // Until the rename, secret.key still seals.
      expect(envelopeKeyId(running.seal("x", "c"))).toBe(envelopeKeyId(before));

      fs.copyFileSync(path.join(dir, "secret.key"), path.join(dir, "secret.key.previous"));
      fs.renameSync(path.join(dir, "secret.key.next"), path.join(dir, "secret.key"));
      expect(envelopeKeyId(running.seal("x", "c"))).toBe(next.current.id);
      expect(running.open(before, "c")).toBe("old value");
      const fresh = loadKeyring({ dataDir: dir }).keyring;
      expect(fresh.current.id).toBe(next.current.id);
      expect(fresh.open(before, "c")).toBe("old value");
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("never generates a new key over a rotation's files: secret.key.next stands in for a missing secret.key", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-seal-"));
    try {
      const bytes = crypto.randomBytes(32);
      writeKeyFile(path.join(dir, "secret.key.next"), bytes);
      const loaded = loadSealingKey({ dataDir: dir });
      expect(loaded).toMatchObject({ created: false });
      expect(loaded.key.id).toBe(sealingKeyFromBytes(bytes).id);
      expect(fs.existsSync(path.join(dir, "secret.key"))).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("opens with PORTCULLIS_SECRET_PREVIOUS and seals with PORTCULLIS_SECRET", () => {
    const old = new Keyring(sealingKeyFromSecret("o".repeat(32)));
    const sealed = old.seal("x", "c");
    const { keyring } = loadKeyring({ secret: "n".repeat(32), previousSecrets: ["o".repeat(32)], dataDir: "/nonexistent" });
    expect(keyring.open(sealed, "c")).toBe("x");
    expect(envelopeKeyId(keyring.seal("y", "c"))).toBe(sealingKeyFromSecret("n".repeat(32)).id);
  });
});
