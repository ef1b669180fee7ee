import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import tls from "node:tls";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_ACTOR } from "../audit";
import { Keyring, sealingKeyFromBytes } from "../crypto/seal";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../db/testing";
import { listEvents } from "../events";
import { Edge } from "../listeners/edge";
import { createListener, setMappings } from "../listeners";
import { findFreePort } from "../net";
import { createSelfSignedCertificate } from "../pki/selfSigned";
import { addCertificateVersion, createImportedCertificate, FileCertificateWatcher, registerFileCertificate, toUploadInput } from "./imported";
import { getCertificate, keyContext } from "./index";

const keyring = new Keyring(sealingKeyFromBytes(crypto.randomBytes(32)));

const pair = (name: string) => createSelfSignedCertificate({ names: [{ type: "dns", value: name }], keyType: "ecdsa-p256", validityDays: 90 });
const fingerprint = (pem: string) => new crypto.X509Certificate(pem).fingerprint256;

async function counts(t: TestDatabase) {
  const n = async (table: "certificates" | "certificate_versions") => Number((await t.db.selectFrom(table).select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow()).n);
  return [await n("certificates"), await n("certificate_versions")];
}

describe.each(TEST_ENGINES)("uploaded and on-disk certificates on %s", (kind) => {
  let t: TestDatabase;
  let dir: string;
  beforeAll(async () => {
    t = await createTestDatabase(kind);
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-files-"));
  });
  afterAll(async () => {
    await t?.destroy();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it("uploads a certificate with its key, sealed, and adds new versions that keep the history", async () => {
    const first = await pair("up.example.test");
    const { name, upload } = toUploadInput({ name: "uploaded", certificatePem: first.certificatePem, keyPem: first.privateKeyPem });
    const { certificate } = await createImportedCertificate(t.db, keyring, SYSTEM_ACTOR, { name, upload });
    expect(certificate).toMatchObject({ name: "uploaded", source: "upload", status: "active", domains: ["up.example.test"] });
    expect(certificate.fingerprintSha256).toBe(fingerprint(first.certificatePem));
    const row = await t.db.selectFrom("certificates").select("sealed_key").where("id", "=", certificate.id).executeTakeFirstOrThrow();
    expect(keyring.open(row.sealed_key!, keyContext(certificate.id))).toContain("PRIVATE KEY");

    const second = await pair("up.example.test");
    const next = await addCertificateVersion(t.db, keyring, SYSTEM_ACTOR, certificate.id, { kind: "pem", certificatePem: second.certificatePem, keyPem: second.privateKeyPem }, "new version uploaded");
    expect(next.certificate.fingerprintSha256).toBe(fingerprint(second.certificatePem));
    expect(next.certificate.versions.map((v) => v.version)).toEqual([2, 1]);
    expect(next.certificate.versions[1].fingerprintSha256).toBe(fingerprint(first.certificatePem));
  });

  it("refuses a key that does not match, and writes nothing", async () => {
    const a = await pair("a.example.test");
    const b = await pair("b.example.test");
    const before = await counts(t);
    await expect(createImportedCertificate(t.db, keyring, SYSTEM_ACTOR, { upload: { kind: "pem", certificatePem: a.certificatePem, keyPem: b.privateKeyPem } })).rejects.toMatchObject({ code: "validation_failed" });
    expect(() => toUploadInput({ certificatePem: 42 })).toThrow(/certificatePem, keyPem/);
    expect(await counts(t)).toEqual(before);
  });

  it("watches files on disk: a change becomes a new version; a broken file keeps the last good one and says so once", async () => {
    const certPath = path.join(dir, "fullchain.pem");
    const keyPath = path.join(dir, "privkey.pem");
    const v1 = await pair("disk.example.test");
    fs.writeFileSync(certPath, v1.certificatePem);
    fs.writeFileSync(keyPath, v1.privateKeyPem);
    await expect(registerFileCertificate(t.db, keyring, SYSTEM_ACTOR, { certPath: path.join(dir, "missing.pem"), keyPath })).rejects.toThrow(/does not exist/);
    await expect(registerFileCertificate(t.db, keyring, SYSTEM_ACTOR, { certPath: "relative.pem", keyPath })).rejects.toThrow(/absolute path/);
    const { certificate } = await registerFileCertificate(t.db, keyring, SYSTEM_ACTOR, { name: "on-disk", certPath, keyPath });
    expect(certificate.source).toBe("file");

    const port = await findFreePort();
    const listener = await createListener(t.db, SYSTEM_ACTOR, { name: "disk edge", kind: "https", bindAddress: "127.0.0.1", port, upstreamUrl: "http://127.0.0.1:9", fallbackPolicy: "refuse" });
    await setMappings(t.db, SYSTEM_ACTOR, listener.id, { mappings: [{ hostname: "disk.example.test", certificateId: certificate.id }] });
    const edge = new Edge({ db: t.db, keyring, log: pino({ level: "silent" }), pollIntervalMs: 50, checkIntervalMs: 3_600_000 });
    const served = () =>
      new Promise<string>((resolve, reject) => {
        const s = tls.connect({ host: "127.0.0.1", port, servername: "disk.example.test", rejectUnauthorized: false }, () => {
          resolve(s.getPeerX509Certificate()!.fingerprint256);
          s.end();
        });
        s.on("error", reject);
      });
    const watcher = new FileCertificateWatcher(t.db, keyring);
    try {
      await edge.start();
      expect(await served()).toBe(fingerprint(v1.certificatePem));
      expect(await watcher.sync()).toEqual({ updated: 0, failed: 0 });

      // certbot renews: both files change.
      const v2 = await pair("disk.example.test");
      fs.writeFileSync(certPath, v2.certificatePem);
      fs.writeFileSync(keyPath, v2.privateKeyPem);
      const renewedAt = Date.now();
      expect(await watcher.sync()).toEqual({ updated: 1, failed: 0 });
      for (let i = 0; i < 40 && (await served()) !== fingerprint(v2.certificatePem); i++) await new Promise((r) => setTimeout(r, 25));
      expect(await served()).toBe(fingerprint(v2.certificatePem));
      expect(Date.now() - renewedAt).toBeLessThan(1000);

      // A broken write: garbage in the certificate file. The last good version keeps serving.
      fs.writeFileSync(certPath, "garbage");
      expect(await watcher.sync()).toEqual({ updated: 0, failed: 1 });
      expect(await watcher.sync()).toEqual({ updated: 0, failed: 1 });
      fs.rmSync(keyPath);
      await watcher.sync();
      const events = (await listEvents(t.db, { certificateId: certificate.id })).filter((e) => e.type === "certificate.file_invalid");
      expect(events).toHaveLength(2);
      expect(events[1].message).toContain("does not exist");
      expect(await served()).toBe(fingerprint(v2.certificatePem));
      expect((await getCertificate(t.db, certificate.id))!.lastError).toContain("does not exist");
      expect((await getCertificate(t.db, certificate.id))!.versions).toHaveLength(2);
    } finally {
      await edge.stop();
    }
  });
});
