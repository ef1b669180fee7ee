import crypto from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GET } from "../app/api/v1/ca/route";
import { loadOrCreateLocalCa } from "../lib/console/tls-store";
import { Keyring, sealingKeyFromBytes } from "../lib/crypto/seal";
import { setDatabase } from "../lib/db";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../lib/db/testing";

// GET /api/v1/ca without a session: 404 with a reason before a local CA exists, then the CA in JSON or PEM.

describe.each(TEST_ENGINES)("GET /api/v1/ca on %s", (kind) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase(kind);
    setDatabase({ db: t.db, kind });
  });
  afterAll(async () => {
    setDatabase(undefined);
    await t.destroy();
  });

  it("says why there is no CA, then serves it with its fingerprint, never its key", async () => {
    const none = await GET(new Request("https://console.test/api/v1/ca"));
    expect(none.status).toBe(404);
    expect((await none.json()).error.message).toMatch(/no local CA/);

    const keyring = new Keyring(sealingKeyFromBytes(crypto.randomBytes(32)));
    const ca = await loadOrCreateLocalCa(t.db, keyring);
    const x = new crypto.X509Certificate(ca.certificatePem);
    const res = await GET(new Request("https://console.test/api/v1/ca"));
    expect(res.status).toBe(200);
    const body = await res.json();
    expect(body).toEqual({
      certificatePem: ca.certificatePem,
      fingerprintSha256: x.fingerprint256,
      fingerprintSha256Hex: x.fingerprint256.replace(/:/g, "").toLowerCase(),
      subject: expect.stringContaining("Portcullis local CA"),
      notAfter: new Date(x.validTo).toISOString(),
    });
    expect(JSON.stringify(body)).not.toContain("PRIVATE KEY");

    const pem = await GET(new Request("https://console.test/api/v1/ca?format=pem"));
    expect(pem.headers.get("content-type")).toBe("application/x-pem-file");
    expect(await pem.text()).toBe(ca.certificatePem);
    expect((await GET(new Request("https://console.test/api/v1/ca?format=der"))).status).toBe(400);
  });
});
