import crypto from "node:crypto";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_ACTOR } from "../audit";
import { Keyring, sealingKeyFromBytes } from "../crypto/seal";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../db/testing";
import { AppError } from "../errors";
import { listEvents } from "../events";
import {
  createSelfSignedCertificateRecord,
  dashboardSummary,
  deleteCertificate,
  exportPrivateKey,
  getCertificate,
  keyContext,
  listCertificates,
  markExpiredCertificates,
} from "./index";

const keyring = new Keyring(sealingKeyFromBytes(crypto.randomBytes(32)));
const admin = { id: "usr_test", label: "admin@example.test", role: "admin" as const };

async function rowCounts(t: TestDatabase) {
  const count = async (table: "certificates" | "certificate_versions" | "events" | "audit_log") =>
    Number((await t.db.selectFrom(table).select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow()).n);
  return { certificates: await count("certificates"), versions: await count("certificate_versions"), events: await count("events"), audit: await count("audit_log") };
}

describe.each(TEST_ENGINES)("certificates on %s", (kind) => {
  let t: TestDatabase;
  beforeAll(async () => {
    t = await createTestDatabase(kind);
  });
  afterAll(async () => {
    await t?.destroy();
  });

  it("creates a self-signed certificate with a sealed key, a first version, an event and an audit entry", async () => {
    const cert = await createSelfSignedCertificateRecord(t.db, keyring, admin, {
      domains: "app.example.test\n*.app.example.test, 192.0.2.7",
      keyType: "ecdsa-p384",
      validityDays: 30,
    });
    expect(cert.name).toBe("app.example.test");
    expect(cert.status).toBe("active");
    expect(cert.source).toBe("self_signed");
    expect(cert.domains).toEqual(["app.example.test", "*.app.example.test", "192.0.2.7"]);
    expect(cert.versions).toHaveLength(1);

    const x509 = new X509Certificate(cert.chainPem!);
    expect(x509.fingerprint256).toBe(cert.fingerprintSha256);
    expect(x509.subjectAltName).toContain("DNS:*.app.example.test");
    expect(x509.publicKey.asymmetricKeyDetails?.namedCurve).toBe("secp384r1");
    expect(Date.parse(cert.notAfter!) - Date.parse(cert.notBefore!)).toBe(30 * 86_400_000 + 60_000);

    const row = await t.db.selectFrom("certificates").select("sealed_key").where("id", "=", cert.id).executeTakeFirstOrThrow();
    expect(row.sealed_key).toMatch(/^pcs1\./);
    expect(row.sealed_key).not.toContain("PRIVATE KEY");
    const pem = keyring.open(row.sealed_key!, keyContext(cert.id));
    expect(x509.checkPrivateKey(createPrivateKey(pem))).toBe(true);

    const exported = await exportPrivateKey(t.db, keyring, admin, cert.id);
    expect(exported.pem).toBe(pem);
    const audit = await t.db.selectFrom("audit_log").select("action").where("target_id", "=", cert.id).execute();
    expect(audit.map((a) => a.action).sort()).toEqual(["certificate.create", "certificate.private_key_download"]);
    const events = await listEvents(t.db, { certificateId: cert.id });
    expect(events.map((e) => e.type)).toEqual(["tls.issued"]);
  });

  it("finds a certificate by id or by name", async () => {
    const cert = await createSelfSignedCertificateRecord(t.db, keyring, admin, { name: "by-name", domains: ["n.example.test"] });
    expect((await getCertificate(t.db, "by-name"))?.id).toBe(cert.id);
    expect((await getCertificate(t.db, cert.id))?.name).toBe("by-name");
    expect(await getCertificate(t.db, "nope")).toBeUndefined();
  });

  const invalid: [string, unknown, string][] = [
    ["a name with a space", { domains: ["exa mple.com"] }, "domains"],
    ["a double wildcard", { domains: ["*.*.example.com"] }, "domains"],
    ["a 64-character label", { domains: [`${"a".repeat(64)}.com`] }, "domains"],
    ["a 254-character name", { domains: [`${"a.".repeat(126)}ab`] }, "domains"],
    ["a leading hyphen", { domains: ["-x.com"] }, "domains"],
    ["no names", { domains: [] }, "domains"],
    ["duplicates", { domains: ["a.example.test", "A.example.test"] }, "domains"],
    ["an unknown key type", { domains: ["a.example.test"], keyType: "dsa-1024" }, "keyType"],
    ["0 days", { domains: ["a.example.test"], validityDays: 0 }, "validityDays"],
    ["3651 days", { domains: ["a.example.test"], validityDays: 3651 }, "validityDays"],
    ["a fractional validity", { domains: ["a.example.test"], validityDays: 1.5 }, "validityDays"],
    ["names that are not strings", { domains: [1, 2] }, "domains"],
  ];
  it.each(invalid)("refuses %s with a message on the field, and writes nothing", async (_what, input, field) => {
    const before = await rowCounts(t);
    const err = await createSelfSignedCertificateRecord(t.db, keyring, admin, input).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).status).toBe(400);
    expect((err as AppError).fieldErrors?.[field]?.[0]).toBeTruthy();
    expect(await rowCounts(t)).toEqual(before);
  });

  it("refuses a second certificate with the same name, and writes nothing", async () => {
    await createSelfSignedCertificateRecord(t.db, keyring, admin, { name: "taken", domains: ["t.example.test"] });
    const before = await rowCounts(t);
    const err = (await createSelfSignedCertificateRecord(t.db, keyring, admin, { name: "taken", domains: ["u.example.test"] }).catch((e) => e)) as AppError;
    expect(err.code).toBe("conflict");
    expect(err.fieldErrors?.name?.[0]).toMatch(/already exists/);
    expect(await rowCounts(t)).toEqual(before);
  });

  it("pages newest first with a cursor, without gaps or repeats", async () => {
    const base = Date.parse("2026-03-01T00:00:00Z");
    for (let i = 0; i < 7; i++) {
      await createSelfSignedCertificateRecord(t.db, keyring, admin, { name: `page-${i}`, domains: [`p${i}.example.test`] }, new Date(base + (i % 3) * 1000));
    }
    const all = await listCertificates(t.db, { limit: 200 });
    const seen: string[] = [];
    let cursor: string | undefined;
    for (;;) {
      const page = await listCertificates(t.db, { limit: 3, cursor });
      seen.push(...page.items.map((c) => c.id));
      expect(page.total).toBe(all.total);
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    expect(seen).toEqual(all.items.map((c) => c.id));
    expect(new Set(seen).size).toBe(all.total);
    const created = all.items.map((c) => c.createdAt);
    expect([...created].sort().reverse()).toEqual(created);
    await expect(listCertificates(t.db, { cursor: "garbage" })).rejects.toThrow(/cursor is not valid/);
    await expect(listCertificates(t.db, { limit: 0 })).rejects.toThrow(/limit must be between 1 and 200/);
  });

  it("deletes a certificate with its versions, and says so for an unknown id", async () => {
    const cert = await createSelfSignedCertificateRecord(t.db, keyring, admin, { name: "doomed", domains: ["d.example.test"] });
    await deleteCertificate(t.db, admin, cert.id);
    expect(await getCertificate(t.db, cert.id)).toBeUndefined();
    const versions = await t.db.selectFrom("certificate_versions").select("id").where("certificate_id", "=", cert.id).execute();
    expect(versions).toHaveLength(0);
    await expect(deleteCertificate(t.db, admin, cert.id)).rejects.toMatchObject({ code: "not_found" });
  });

  it("counts by status and marks certificates past notAfter as expired, once", async () => {
    const cert = await createSelfSignedCertificateRecord(t.db, keyring, SYSTEM_ACTOR, { name: "short-lived", domains: ["s.example.test"], validityDays: 1 });
    const later = new Date(Date.parse(cert.notAfter!) + 1000);
    expect(await markExpiredCertificates(t.db, later)).toBeGreaterThanOrEqual(1);
    expect((await getCertificate(t.db, cert.id))?.status).toBe("expired");
    const events = await listEvents(t.db, { certificateId: cert.id });
    expect(events.filter((e) => e.type === "tls.expired")).toHaveLength(1);
    await markExpiredCertificates(t.db, later);
    expect((await listEvents(t.db, { certificateId: cert.id })).filter((e) => e.type === "tls.expired")).toHaveLength(1);
    const summary = await dashboardSummary(t.db, later);
    expect(summary.byStatus.expired).toBeGreaterThanOrEqual(1);
    expect(summary.total).toBe((await listCertificates(t.db, { limit: 200 })).total);
    expect(summary.soonest[0].notAfter! <= summary.soonest.at(-1)!.notAfter!).toBe(true);
  });
});
