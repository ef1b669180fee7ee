import crypto from "node:crypto";
import { createAccount } from "../acme/accounts";
import { createWebhook } from "../alerts/webhooks";
import { SYSTEM_ACTOR } from "../audit";
import { createImportedCertificate, addCertificateVersion } from "../certificates/imported";
import { createSelfSignedCertificateRecord } from "../certificates/index";
import { loadOrCreateLocalCa, LOCAL_SERVER_KEY, LOCAL_SERVER_KEY_CONTEXT, sealPair, writeSetting } from "../console/tls-store";
import type { Keyring } from "../crypto/seal";
import type { Db } from "../db";
import { createCredential, dnsSettings } from "../dns/credentials";
import { recordEvent } from "../events";
import { nowIso } from "../ids";
import { createListener, setMappings } from "../listeners";
import { createSelfSignedCertificate } from "../pki/selfSigned";
import { verifySealingKey } from "../runtime";
import { createApiToken } from "../tokens";
import { createUser } from "../users";

// Test support (backup, restore and rotation tests): a database with a row in every table that
// matters, made through the same functions the console uses, and a sealed value of every kind.

async function pemPair(name: string) {
  return createSelfSignedCertificate({ names: [{ type: "dns", value: name }], keyType: "ecdsa-p256", validityDays: 30 });
}

export async function populateInstallation(db: Db, keyring: Keyring) {
  await verifySealingKey(db, keyring);
  const admin = await createUser(db, SYSTEM_ACTOR, { email: "admin@example.test", password: "correct horse battery", role: "admin" });
  await createUser(db, SYSTEM_ACTOR, { email: "viewer@example.test", password: "viewer password 1", role: "viewer" });
  await createApiToken(db, SYSTEM_ACTOR, { userId: admin.id, name: "ci" });
  await db.insertInto("login_attempts").values({ at: nowIso(), email: "admin@example.test", ip: "127.0.0.1", succeeded: 1 }).execute();

  const selfSigned = await createSelfSignedCertificateRecord(db, keyring, SYSTEM_ACTOR, { name: "self", domains: ["self.example.test"] });
  const first = await pemPair("up.example.test");
  const { certificate: uploaded } = await createImportedCertificate(db, keyring, SYSTEM_ACTOR, {
    name: "uploaded",
    upload: { kind: "pem", certificatePem: first.certificatePem, keyPem: first.privateKeyPem },
  });
  const second = await pemPair("up.example.test");
  await addCertificateVersion(db, keyring, SYSTEM_ACTOR, uploaded.id, { kind: "pem", certificatePem: second.certificatePem, keyPem: second.privateKeyPem }, "new version uploaded");
  // An ACME order in flight: its CSR key is sealed into the row.
  await db
    .updateTable("certificates")
    .set({ pending_sealed_key: keyring.seal(first.privateKeyPem, `certificate-pending-key:${selfSigned.id}`), acme_step: "finalizing" })
    .where("id", "=", selfSigned.id)
    .execute();

  const listener = await createListener(db, SYSTEM_ACTOR, { name: "public https", kind: "https", bindAddress: "127.0.0.1", port: 18443, upstreamUrl: "http://127.0.0.1:3000" });
  await setMappings(db, SYSTEM_ACTOR, listener.id, { mappings: [{ hostname: "up.example.test", certificateId: uploaded.id }, { hostname: "self.example.test", certificateId: selfSigned.id }] });
  const fallback = await pemPair("fallback.invalid");
  await db
    .updateTable("listeners")
    .set({ fallback_chain_pem: fallback.certificatePem, fallback_sealed_key: keyring.seal(fallback.privateKeyPem, `listener-fallback:${listener.id}`) })
    .where("id", "=", listener.id)
    .execute();
  await db
    .insertInto("listener_checks")
    .values({ listener_id: listener.id, hostname: "up.example.test", checked_at: nowIso(), status: "serving", expected_fingerprint: "ab", served_fingerprint: "ab", served_subject: "CN=up", detail: null })
    .execute();

  const credential = await createCredential(db, keyring, SYSTEM_ACTOR, { name: "prod cloudflare", provider: "cloudflare", token: "cf-token-0123456789abcdefghijklmnopqrstuv", verify: false }, { settings: dnsSettings({ dnsResolvers: [] }) });
  const account = await createAccount(db, keyring, SYSTEM_ACTOR, {
    directoryUrl: "https://acme.example.test/directory",
    email: "ops@example.test",
    eabKid: "kid-1",
    eabHmacKey: crypto.randomBytes(32).toString("base64url"),
    agreeTos: true,
  });
  const challengeId = "chl_fixture";
  const challengeKey = await pemPair("challenge.example.test");
  await db
    .insertInto("acme_challenges")
    .values({ id: challengeId, kind: "tls-alpn-01", certificate_id: selfSigned.id, identifier: "self.example.test", token: "tok", key_authorization: null, certificate_pem: challengeKey.certificatePem, sealed_key: keyring.seal(challengeKey.privateKeyPem, `acme-challenge:${challengeId}`), expires_at: nowIso(new Date(Date.now() + 3600_000)), created_at: nowIso() })
    .execute();
  await db
    .insertInto("acme_rate_ledger")
    .values({ directory_url: "https://acme.example.test/directory", kind: "new_order", registered_domain: "example.test", names_key: "self.example.test", identifier: null, certificate_id: selfSigned.id, exempt: 0, at: nowIso() })
    .execute();
  const webhook = await createWebhook(db, keyring, SYSTEM_ACTOR, { name: "ops hook", url: "https://hooks.example.test/portcullis" });

  for (let i = 0; i < 5; i++) await recordEvent(db, { type: "test.event", message: `event ${i}`, certificateId: selfSigned.id });

  // The console's own TLS material lives in settings, sealed.
  await loadOrCreateLocalCa(db, keyring);
  const server = await pemPair("console.example.test");
  await writeSetting(db, LOCAL_SERVER_KEY, { ...sealPair(keyring, server, LOCAL_SERVER_KEY_CONTEXT), names: ["console.example.test"] });
  await writeSetting(db, "tls.mode", "auto");

  return { admin, selfSigned, uploaded, listener, credential, account, webhook, challengeId };
}
