import crypto from "node:crypto";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_ACTOR } from "../audit";
import { Keyring, sealingKeyFromBytes } from "../crypto/seal";
import { createTestDatabase, type TestDatabase } from "../db/testing";
import { AppError } from "../errors";
import { createFuzzMaterial, mutatedUpload, seededRandom, type FuzzMaterial } from "../pki/upload-mutations";
import { createImportedCertificate } from "./imported";

// The whole upload path, database included: a few thousand mutated uploads. Each is refused with a
// 400-class error and writes nothing, or is a real matching certificate and key and saves one row.

const COUNT = 2000;
const keyring = new Keyring(sealingKeyFromBytes(crypto.randomBytes(32)));

describe("the upload path under mutated input", () => {
  let t: TestDatabase;
  let material: FuzzMaterial;
  beforeAll(async () => {
    t = await createTestDatabase("sqlite");
    material = createFuzzMaterial();
  });
  afterAll(async () => {
    await t?.destroy();
  });

  const rows = async () => Number((await t.db.selectFrom("certificates").select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow()).n);

  it(`never answers 500 and never saves a refused upload, over ${COUNT} mutations`, async () => {
    const random = seededRandom(0xc0ffee);
    let saved = 0;
    let refused = 0;
    for (let i = 0; i < COUNT; i++) {
      const upload = mutatedUpload(random, material);
      const before = await rows();
      try {
        const { certificate } = await createImportedCertificate(t.db, keyring, SYSTEM_ACTOR, { name: `fuzz-${i}`, upload });
        const stored = await t.db.selectFrom("certificates").select(["chain_pem", "sealed_key"]).where("id", "=", certificate.id).executeTakeFirstOrThrow();
        const key = createPrivateKey(keyring.open(stored.sealed_key!, `certificate-key:${certificate.id}`));
        expect(new X509Certificate(stored.chain_pem!).checkPrivateKey(key), `mutation ${i}`).toBe(true);
        expect(await rows()).toBe(before + 1);
        saved++;
      } catch (err) {
        expect(err, `mutation ${i}: ${String(err)}`).toBeInstanceOf(AppError);
        expect((err as AppError).status, `mutation ${i}`).toBe(400);
        expect(await rows(), `mutation ${i}`).toBe(before);
        refused++;
      }
    }
    expect(saved + refused).toBe(COUNT);
    expect(refused).toBeGreaterThan(COUNT / 2);
  }, 120_000);
});
