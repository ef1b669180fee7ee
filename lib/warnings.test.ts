import crypto from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_ACTOR } from "./audit";
import { createSelfSignedCertificateRecord } from "./certificates";
import { parseConfig } from "./config";
import { Keyring, sealingKeyFromBytes } from "./crypto/seal";
import { registerRunningTls, type RunningTls, type ServedCertificate } from "./console/tls-status";
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

  it("warns about a console on plain HTTP beyond loopback, with a link to Settings → TLS", async () => {
    const warnings = await serviceWarnings(t.db, parseConfig({ PORTCULLIS_HOST: "0.0.0.0", PORTCULLIS_TLS_MODE: "off", PORTCULLIS_ALLOW_INSECURE_HTTP: "true" }));
    expect(warnings.find((w) => w.id === "console-plain-http")).toMatchObject({ href: "/settings/tls" });
    expect(await serviceWarnings(t.db, parseConfig({ PORTCULLIS_TLS_MODE: "off" }))).toEqual([]);
    // Chosen in Settings → TLS rather than the environment: the same warning.
    await t.db.insertInto("settings").values({ key: "tls.mode", value: JSON.stringify("off"), updated_at: new Date().toISOString() }).execute();
    try {
      const fromSettings = await serviceWarnings(t.db, parseConfig({ PORTCULLIS_HOST: "0.0.0.0", PORTCULLIS_ALLOW_INSECURE_HTTP: "true" }));
      expect(fromSettings.map((w) => w.id)).toContain("console-plain-http");
    } finally {
      await t.db.deleteFrom("settings").where("key", "=", "tls.mode").execute();
    }
  });

  it("names a listener's local-CA certificate as such, not as self-signed", async () => {
    const cert = await createSelfSignedCertificateRecord(t.db, keyring, SYSTEM_ACTOR, { name: "from-ca", domains: ["ca.example.test"] });
    await t.db.updateTable("certificates").set({ source: "local_ca" }).where("id", "=", cert.id).execute();
    const port = await findFreePort();
    const input = { name: "lan edge", kind: "https", bindAddress: "127.0.0.1", port, upstreamUrl: "http://127.0.0.1:9" };
    const listener = await createListener(t.db, SYSTEM_ACTOR, input);
    await setMappings(t.db, SYSTEM_ACTOR, listener.id, { mappings: [{ hostname: "ca.example.test", certificateId: cert.id }] });
    const warning = (await serviceWarnings(t.db, parseConfig({}))).find((w) => w.id === `self-signed-${listener.id}`);
    expect(warning?.message).toContain('serves local-CA certificate "from-ca"');
    expect(warning?.message).not.toContain("self-signed");
    await updateListener(t.db, SYSTEM_ACTOR, listener.id, { ...input, enabled: false });
  });

  it("says which certificate the console itself serves while browsers do not trust it, and nothing once they do", async () => {
    const served = (kind: ServedCertificate["kind"], trusted: boolean): ServedCertificate => ({
      kind,
      subject: "CN=console",
      issuer: kind === "self_signed" ? "CN=console" : "CN=Some CA",
      names: ["console.example.test"],
      notBefore: new Date().toISOString(),
      notAfter: new Date(Date.now() + 86_400_000).toISOString(),
      fingerprintSha256: "AA:BB",
      trusted,
    });
    const running = (s: ServedCertificate): RunningTls => ({ mode: "provided", https: true, served: s, providedError: null, apply: async () => {}, regenerate: async () => {} });
    const config = parseConfig({ PORTCULLIS_TLS_MODE: "provided", PORTCULLIS_TLS_CERT: "/x.crt", PORTCULLIS_TLS_KEY: "/x.key" });
    try {
      registerRunningTls(running(served("self_signed", false)));
      const selfSigned = await serviceWarnings(t.db, config);
      expect(selfSigned).toHaveLength(1);
      expect(selfSigned[0]).toMatchObject({ href: "/settings/tls" });
      expect(selfSigned[0].message).toMatch(/console serves a self-signed certificate/);

      registerRunningTls(running(served("local_ca", false)));
      const localCa = await serviceWarnings(t.db, config);
      expect(localCa).toHaveLength(1);
      expect(localCa[0].message).toMatch(/local CA/);
      expect(localCa[0].href).toBe("/settings/tls");

      // Provided files that hold a self-signed certificate: still self-signed, whatever the mode calls them.
      registerRunningTls(running({ ...served("provided", false), issuer: "CN=console" }));
      const providedSelfSigned = await serviceWarnings(t.db, config);
      expect(providedSelfSigned.map((w) => w.id)).toEqual(["console-self-signed"]);
      expect(providedSelfSigned[0].message).toContain("self-signed");

      registerRunningTls(running(served("provided", true)));
      expect(await serviceWarnings(t.db, config)).toEqual([]);
    } finally {
      registerRunningTls(undefined);
    }
  });
});
