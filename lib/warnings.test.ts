import crypto from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_ACTOR } from "./audit";
import { createSelfSignedCertificateRecord } from "./certificates";
import { parseConfig } from "./config";
import { Keyring, sealingKeyFromBytes } from "./crypto/seal";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "./db/testing";
import { recordEvent } from "./events";
import { createListener, setMappings, updateListener } from "./listeners";
import { findFreePort } from "./net";
import { serviceWarnings } from "./warnings";

const keyring = new Keyring(sealingKeyFromBytes(crypto.randomBytes(32)));

describe.each(TEST_ENGINES)("the warning banner on %s", (kind) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it("warns about self-signed certificates in service and fallbacks served, and not about idle ones", async () => {
    const config = parseConfig({});
    const cert = await createSelfSignedCertificateRecord(t.db, keyring, SYSTEM_ACTOR, { name: "selfie", domains: ["s.example.test"] });
    expect(await serviceWarnings(t.db, config)).toEqual([]);

    const port = await findFreePort();
    const input = { name: "edge", kind: "https", bindAddress: "127.0.0.1", port, upstreamUrl: "http://127.0.0.1:9" };
    const listener = await createListener(t.db, SYSTEM_ACTOR, input);
    await setMappings(t.db, SYSTEM_ACTOR, listener.id, { mappings: [{ hostname: "s.example.test", certificateId: cert.id }] });
    const mapped = await serviceWarnings(t.db, config);
    expect(mapped).toHaveLength(1);
    expect(mapped[0]).toMatchObject({ href: `/listeners/${listener.id}` });
    expect(mapped[0].message).toContain('serves self-signed certificate "selfie"');

    await recordEvent(t.db, { type: "tls.fallback_served", severity: "warning", listenerId: listener.id, message: "x" });
    expect((await serviceWarnings(t.db, config)).map((w) => w.id)).toEqual([`self-signed-${listener.id}`, `fallback-${listener.id}`]);
    expect(await serviceWarnings(t.db, config, new Date(Date.now() + 2 * 86_400_000))).toHaveLength(1);

    await updateListener(t.db, SYSTEM_ACTOR, listener.id, { ...input, enabled: false });
    expect(await serviceWarnings(t.db, config)).toEqual([]);
  });

  it("warns about a console on plain HTTP beyond loopback", async () => {
    const warnings = await serviceWarnings(t.db, parseConfig({ PORTCULLIS_HOST: "0.0.0.0", PORTCULLIS_TLS_MODE: "off", PORTCULLIS_ALLOW_INSECURE_HTTP: "true" }));
    expect(warnings.map((w) => w.id)).toContain("console-plain-http");
  });
});
