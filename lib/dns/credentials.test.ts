import crypto from "node:crypto";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTinyDns, type TinyDns } from "../../tests/support/dns-server";
import { startFakeCloudflare, type FakeCloudflare } from "../../tests/support/fake-cloudflare";
import { listAudit, SYSTEM_ACTOR } from "../audit";
import { createAccount } from "../acme/accounts";
import { createAcmeCertificate } from "../acme/certificates";
import { Keyring, sealingKeyFromBytes } from "../crypto/seal";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../db/testing";
import { AppError } from "../errors";
import { listEvents } from "../events";
import { createCredential, deleteCredential, getZoneTest, listCredentials, requestZoneTest, tokenContext, updateCredential, verifyCredential, type DnsSettings } from "./credentials";
import { DnsSolver } from "./solver";
import { runQueuedZoneTests } from "./zone-tests";

// Credentials (sealed, verified before saving, never shown), zone tests run the way the worker runs
// them (with the zone's name servers found by an NS lookup), and DNS-01 requests checked up front.

const keyring = new Keyring(sealingKeyFromBytes(crypto.randomBytes(32)));
const log = pino({ level: process.env.TEST_LOG ?? "silent" });
const GOOD = "cred-test-good-token-aaaaaaaaaaaaaaaaaaaaaa";
const READ_ONLY = "cred-test-read-only-bbbbbbbbbbbbbbbbbbbbbbb";
const ZONE = "zone.test";

async function appError(p: Promise<unknown>): Promise<AppError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AppError) return err;
    throw err;
  }
  throw new Error("expected an AppError");
}

describe.each(TEST_ENGINES)("DNS credentials on %s", (kind) => {
  let t: TestDatabase;
  let fake: FakeCloudflare;
  let ns1: TinyDns;
  let ns2: TinyDns;
  let settings: DnsSettings;
  const opts = () => ({ settings });

  beforeAll(async () => {
    // Two authoritative servers for zone.test on 127.0.0.1 and 127.0.0.2; the second learns every value late.
    ns1 = await startTinyDns({ address: "127.0.0.1" });
    ns2 = await startTinyDns({ address: "127.0.0.2", port: ns1.port });
    ns1.set(ZONE, "NS", [`ns1.${ZONE}`, `ns2.${ZONE}`]);
    ns1.set(`ns1.${ZONE}`, "A", ["127.0.0.1"]);
    ns1.set(`ns2.${ZONE}`, "A", ["127.0.0.2"]);
    fake = await startFakeCloudflare({
      zones: [{ name: ZONE }, { name: "readonly.test" }],
      tokens: { [GOOD]: { read: "all", edit: [ZONE] }, [READ_ONLY]: { read: [ZONE], edit: [] } },
      dns: {
        setTxt: async (host, value) => {
          ns1.addTxt(host, value);
          setTimeout(() => ns2.addTxt(host, value), 600);
        },
        clearTxt: async (host) => {
          ns1.clearTxt(host);
          ns2.clearTxt(host);
        },
      },
    });
    settings = { cloudflareApiUrl: fake.url, resolvers: [] };
    t = await createTestDatabase(kind);
  });

  afterAll(async () => {
    await t?.destroy();
    await fake?.stop();
    await ns1?.stop();
    await ns2?.stop();
  });

  const count = async () => (await t.db.selectFrom("dns_credentials").select("id").execute()).length;

  it("refuses bad input with field errors and saves nothing", async () => {
    const cases: [unknown, string, RegExp][] = [
      [{ name: "", token: GOOD }, "name", /give the credential a name/],
      [{ name: "x", token: "" }, "token", /the token is empty/],
      [{ name: "x" }, "token", /the token is missing/],
      [{ name: "x", token: "0123456789abcdef0123456789abcdef01234" }, "token", /Global API Key/],
      [{ name: "x", token: GOOD, provider: "route53" }, "provider", /provider must be one of: cloudflare/],
    ];
    for (const [input, field, message] of cases) {
      const err = await appError(createCredential(t.db, keyring, SYSTEM_ACTOR, input, opts()));
      expect(err.code).toBe("validation_failed");
      expect(err.fieldErrors?.[field]?.join(" "), JSON.stringify(input)).toMatch(message);
    }
    expect(await count()).toBe(0);
  });

  it("a token Cloudflare rejects, one that may edit no zone, or an outage: nothing is saved, and the message says why", async () => {
    const rejected = await appError(createCredential(t.db, keyring, SYSTEM_ACTOR, { name: "bad", token: "cred-test-unknown-cccccccccccccccccccccccc" }, opts()));
    expect(rejected.message).toBe("the credential was not saved: Cloudflare rejected the API token: it is invalid, expired or was deleted (Cloudflare 1000: Invalid API Token (HTTP 401))");
    expect(rejected.fieldErrors?.token?.[0]).toMatch(/^Cloudflare rejected the API token: it is invalid, expired or was deleted\. Create an API token in the Cloudflare dashboard/);

    const readOnly = await appError(createCredential(t.db, keyring, SYSTEM_ACTOR, { name: "ro", token: READ_ONLY }, opts()));
    expect(readOnly.message).toBe("the credential was not saved: the token is active and can read 1 zone, but may edit DNS records in none");
    expect(readOnly.fieldErrors?.token?.[0]).toContain("Give the token Zone → DNS → Edit for the zones of your certificates");

    fake.failNext(1, { status: 503 });
    const outage = await appError(createCredential(t.db, keyring, SYSTEM_ACTOR, { name: "later", token: GOOD }, opts()));
    expect(outage.message).toMatch(/^the credential was not saved: could not verify the token: Cloudflare had an internal error \(HTTP 503\) while checking the API token\. Try again in a minute/);
    expect(await count()).toBe(0);
  });

  it("saves a verified token sealed, shows only its last 4 characters, and never writes it anywhere else", async () => {
    const view = await createCredential(t.db, keyring, SYSTEM_ACTOR, { name: "prod Cloudflare", token: `  ${GOOD}\n` }, opts());
    expect(view).toMatchObject({ name: "prod Cloudflare", provider: "cloudflare", providerLabel: "Cloudflare", tokenHint: `…${GOOD.slice(-4)}`, certificates: [] });
    expect(view.verification).toMatchObject({ ok: true, tokenStatus: "active", summary: `The token is active and may edit DNS records in 1 zone: ${ZONE}` });
    expect(view.verification!.problems).toEqual([`It can read but not edit DNS records in readonly.test: give it Zone → DNS → Edit there if certificates need those zones.`]);
    const row = await t.db.selectFrom("dns_credentials").selectAll().where("id", "=", view.id).executeTakeFirstOrThrow();
    expect(row.sealed_token).not.toContain(GOOD);
    expect(keyring.open(row.sealed_token, tokenContext(view.id))).toBe(GOOD);
    expect(() => keyring.open(row.sealed_token, tokenContext("dns_other"))).toThrow(/another record/);
    const everywhere = JSON.stringify([await listCredentials(t.db), await listAudit(t.db), await listEvents(t.db, {})]);
    expect(everywhere).not.toContain(GOOD);
    expect(everywhere).toContain("dns_credential.create");

    const dup = await appError(createCredential(t.db, keyring, SYSTEM_ACTOR, { name: "prod Cloudflare", token: GOOD }, opts()));
    expect(dup.code).toBe("conflict");
    expect(dup.message).toBe('there is already a DNS credential named "prod Cloudflare"');
  });

  it("tests a zone: the record is created, seen by 1 then 2 of the name servers found by NS lookup, deleted; each step an event", async () => {
    const [credential] = await listCredentials(t.db);
    const solver = new DnsSolver({ db: t.db, keyring, log, settings, propagation: { lookupServers: [ns1.server], authoritativePort: ns1.port, timeoutMs: 5_000, intervalMs: 100, queryTimeoutMs: 500 } });
    const queued = await requestZoneTest(t.db, SYSTEM_ACTOR, credential.id, { zone: `${ZONE.toUpperCase()}.` });
    expect(queued).toMatchObject({ zone: ZONE, status: "queued" });
    const busy = await appError(requestZoneTest(t.db, SYSTEM_ACTOR, credential.id, { zone: ZONE }));
    expect(busy.message).toBe(`a test of "prod Cloudflare" on ${ZONE} is still running; wait for it to finish`);

    expect(await runQueuedZoneTests(t.db, solver, "worker-test")).toBe(1);
    const test = (await getZoneTest(t.db, credential.id, queued.id))!;
    expect(test.status).toBe("passed");
    expect(test.message).toMatch(new RegExp(`^prod Cloudflare can publish DNS-01 answers in ${ZONE}: the record was created, seen by every name server after \\d+(\\.\\d s| ms), and deleted$`));
    const fqdn = `_acme-challenge.${ZONE}`;
    expect(test.steps.map((s) => s.message)).toEqual([
      `Test of "prod Cloudflare" on ${ZONE} requested by system; the worker starts it within a second`,
      `Testing "prod Cloudflare" on ${ZONE}: creating a TXT record at ${fqdn}`,
      `Created the TXT record ${fqdn} in the Cloudflare zone ${ZONE}`,
      `Waiting for the TXT record ${fqdn} on ns1.${ZONE}, ns2.${ZONE}: 1 of 2 servers see it; giving up after 5 seconds`,
      expect.stringMatching(new RegExp(`^The TXT record ${fqdn.replace(/\./g, "\\.")} is visible on all 2 of the authoritative name servers \\(ns1\\.${ZONE.replace(/\./g, "\\.")}, ns2\\.${ZONE.replace(/\./g, "\\.")}\\) after \\d+(\\.\\d s| ms)$`)),
      `Deleted the TXT record ${fqdn}`,
      test.message,
    ]);
    expect(ns1.queries).toContain(`NS ${ZONE}`);
    expect(fake.records()).toEqual([]);
    expect(await t.db.selectFrom("dns_records").selectAll().execute()).toEqual([]);
  });

  it("a zone the token cannot edit fails the test in plain words; a zone it cannot see is refused up front", async () => {
    const [credential] = await listCredentials(t.db);
    const outside = await appError(requestZoneTest(t.db, SYSTEM_ACTOR, credential.id, { zone: "elsewhere.test" }));
    expect(outside.fieldErrors?.zone?.[0]).toBe(`the token can see: readonly.test, ${ZONE}; press Verify if you have given it more zones since`);
    const malformed = await appError(requestZoneTest(t.db, SYSTEM_ACTOR, credential.id, { zone: "not a zone" }));
    expect(malformed.fieldErrors?.zone?.[0]).toBe("give a DNS zone name, like example.com");

    const solver = new DnsSolver({ db: t.db, keyring, log, settings, propagation: { lookupServers: [ns1.server], authoritativePort: ns1.port, timeoutMs: 1_000, intervalMs: 100 } });
    const queued = await requestZoneTest(t.db, SYSTEM_ACTOR, credential.id, { zone: "readonly.test" });
    await runQueuedZoneTests(t.db, solver, "worker-test");
    const test = (await getZoneTest(t.db, credential.id, queued.id))!;
    expect(test.status).toBe("failed");
    expect(test.message).toBe(
      "The test on readonly.test failed: the Cloudflare token is not allowed to do this in the zone readonly.test (creating the TXT record _acme-challenge.readonly.test in the zone readonly.test) — Edit the token in the Cloudflare dashboard (My Profile → API Tokens) and give it Zone → DNS → Edit for readonly.test; it needs Zone → Zone → Read and Zone → DNS → Edit. (Cloudflare 10000: Authentication error (HTTP 403))",
    );
    expect(test.steps.at(-1)).toMatchObject({ type: "dns.test_failed", severity: "error" });
  });

  it("Verify stores what Cloudflare says now, also when it now refuses the token", async () => {
    const [credential] = await listCredentials(t.db);
    fake.tokens.delete(GOOD);
    try {
      const view = await verifyCredential(t.db, keyring, SYSTEM_ACTOR, credential.id, opts());
      expect(view.verification).toMatchObject({ ok: false, tokenStatus: "rejected", raw: "Cloudflare 1000: Invalid API Token (HTTP 401)" });
      const event = (await listEvents(t.db, { type: "dns.credential_verify_failed" }))[0];
      expect(event.message).toBe('DNS credential "prod Cloudflare" verified by system: Cloudflare rejected the API token: it is invalid, expired or was deleted (Cloudflare 1000: Invalid API Token (HTTP 401))');
    } finally {
      fake.tokens.set(GOOD, { read: "all", edit: [ZONE] });
    }
    expect((await verifyCredential(t.db, keyring, SYSTEM_ACTOR, credential.id, opts())).verification?.ok).toBe(true);
  });

  it("replaces a token (verified first; a refused one changes nothing) and renames, while certificates keep the credential", async () => {
    const [credential] = await listCredentials(t.db);
    const before = await t.db.selectFrom("dns_credentials").select("sealed_token").where("id", "=", credential.id).executeTakeFirstOrThrow();
    const refused = await appError(updateCredential(t.db, keyring, SYSTEM_ACTOR, credential.id, { token: READ_ONLY }, opts()));
    expect(refused.message).toBe("the token was not replaced: the token is active and can read 1 zone, but may edit DNS records in none");
    expect((await t.db.selectFrom("dns_credentials").select("sealed_token").where("id", "=", credential.id).executeTakeFirstOrThrow()).sealed_token).toBe(before.sealed_token);
    expect((await appError(updateCredential(t.db, keyring, SYSTEM_ACTOR, credential.id, {}, opts()))).message).toBe("nothing to change: send a new name or token");

    const ROLLED = "cred-test-rolled-token-dddddddddddddddddddd";
    fake.tokens.set(ROLLED, { read: "all", edit: [ZONE] });
    const updated = await updateCredential(t.db, keyring, SYSTEM_ACTOR, credential.id, { token: ROLLED, name: "prod Cloudflare" }, opts());
    expect(updated).toMatchObject({ id: credential.id, tokenHint: `…${ROLLED.slice(-4)}`, verification: { ok: true } });
    const row = await t.db.selectFrom("dns_credentials").select("sealed_token").where("id", "=", credential.id).executeTakeFirstOrThrow();
    expect(keyring.open(row.sealed_token, tokenContext(credential.id))).toBe(ROLLED);
    expect(JSON.stringify(await listAudit(t.db))).not.toContain(ROLLED);
    fake.tokens.set(GOOD, { read: "all", edit: [ZONE] });
    await updateCredential(t.db, keyring, SYSTEM_ACTOR, credential.id, { token: GOOD }, opts());
  });

  it("DNS-01 requests are checked up front: a credential is needed, must exist, and must be able to edit each name's zone", async () => {
    const account = await createAccount(t.db, keyring, SYSTEM_ACTOR, { directoryUrl: "https://acme.invalid/dir", email: "ops@example.com", agreeTos: true });
    const config = { acme: { directoryUrl: "https://acme.invalid/dir" } } as never;
    const request = (input: Record<string, unknown>) => appError(createAcmeCertificate(t.db, keyring, config, SYSTEM_ACTOR, { challenge: "dns-01", accountId: account.id, ...input }));
    const [credential] = await listCredentials(t.db);

    expect((await request({ domains: [`*.${ZONE}`] })).fieldErrors?.dnsCredentialId).toEqual(["choose the DNS credential that may edit these names' zones"]);
    expect((await request({ domains: [`*.${ZONE}`], dnsCredentialId: "dns_nope" })).fieldErrors?.dnsCredentialId).toEqual(['DNS credential "dns_nope" does not exist; pick one from Settings → DNS']);
    const names = await request({ domains: [`*.${ZONE}`, "www.elsewhere.test", "api.readonly.test"], dnsCredentialId: credential.id });
    expect(names.message).toBe("the certificate was not requested: check the names");
    expect(names.fieldErrors?.domains).toEqual([
      `"www.elsewhere.test" is in none of the zones "prod Cloudflare" can see (readonly.test, ${ZONE}); give the token access to its zone and press Verify in Settings → DNS`,
      '"prod Cloudflare" may read but not edit DNS records in readonly.test, the zone of "api.readonly.test"; give the token Zone → DNS → Edit there and press Verify in Settings → DNS',
    ]);
    expect(await t.db.selectFrom("certificates").select("id").execute()).toEqual([]);

    const { certificate } = await createAcmeCertificate(t.db, keyring, config, SYSTEM_ACTOR, { challenge: "dns-01", accountId: account.id, domains: [`*.${ZONE}`, ZONE], dnsCredentialId: credential.id });
    expect(certificate.acme).toMatchObject({ challenge: "dns-01", dnsCredential: { id: credential.id, name: "prod Cloudflare" } });
    expect((await listCredentials(t.db))[0].certificates).toEqual([{ id: certificate.id, name: `*.${ZONE}`, status: "pending" }]);
    const refused = await appError(deleteCredential(t.db, SYSTEM_ACTOR, credential.id));
    expect(refused.message).toBe(`"prod Cloudflare" is used by "*.${ZONE}" for DNS-01; delete those certificates or move them to another credential first`);
    await t.db.deleteFrom("certificates").execute();
    await deleteCredential(t.db, SYSTEM_ACTOR, credential.id);
    expect(await count()).toBe(0);
  });
});
