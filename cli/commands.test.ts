import { execFileSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_ACTOR } from "../lib/audit";
import { createSelfSignedCertificateRecord } from "../lib/certificates";
import { TEST_ENGINES } from "../lib/db/testing";
import { recordEvent } from "../lib/events";
import { findFreePort } from "../lib/net";
import { Edge } from "../lib/listeners/edge";
import { createListener } from "../lib/listeners";
import { readEdgeRevision } from "../lib/listeners/revision";
import { fetchServedCertificate } from "../lib/listeners/served-check";
import { parseSubjectAltNames } from "../lib/pki/names";
import { createSelfSignedCertificate } from "../lib/pki/selfSigned";
import { createFuzzMaterial, type FuzzMaterial } from "../lib/pki/upload-mutations";
import { createCliWorld, lineReader, runCli, spawnCli, type CliWorld } from "./test-support";

const DAY = 86_400_000;

async function selfSignedPair(name: string, validityDays: number, now: Date) {
  const entries = parseSubjectAltNames([name]);
  if (!entries.ok) throw new Error("bad name");
  return createSelfSignedCertificate({ names: entries.entries, keyType: "ecdsa-p256", validityDays, now });
}

const countRows = async (w: CliWorld, table: "certificates" | "certificate_versions" | "events") =>
  Number((await w.t.db.selectFrom(table).select((eb) => eb.fn.countAll().as("n")).executeTakeFirstOrThrow()).n);

describe.each(TEST_ENGINES)("the portcullis CLI on %s", (kind) => {
  let w: CliWorld;
  let material: FuzzMaterial;
  let files: Record<string, string>;
  const run = (args: string[], input?: string) => runCli(args, w.env, input);

  beforeAll(async () => {
    w = await createCliWorld(kind);
    material = createFuzzMaterial();
    const write = (name: string, text: string | Buffer) => {
      const file = path.join(w.dir, name);
      fs.writeFileSync(file, text);
      return file;
    };
    const expired = await selfSignedPair("expired.example.test", 10, new Date(Date.now() - 30 * DAY));
    const soon = await selfSignedPair("soon.example.test", 20, new Date(Date.now() - 5 * DAY));
    const encryptedKey = crypto.createPrivateKey(material.keyPem).export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "open sesame" });
    files = {
      leaf: write("leaf.pem", material.leafPem),
      chain: write("chain.pem", material.intermediatePem),
      key: write("leaf.key", material.keyPem),
      otherKey: write("other.key", crypto.generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({ type: "pkcs8", format: "pem" })),
      encryptedKey: write("encrypted.key", encryptedKey as string),
      expiredCert: write("expired.pem", expired.certificatePem),
      expiredKey: write("expired.key", expired.privateKeyPem),
      soonCert: write("soon.pem", soon.certificatePem),
      soonKey: write("soon.key", soon.privateKeyPem),
    };
    execFileSync("openssl", ["pkcs12", "-export", "-in", files.leaf, "-certfile", files.chain, "-inkey", files.key, "-out", path.join(w.dir, "bundle.p12"), "-passout", "pass:p12 secret"], { stdio: "ignore" });
    files.p12 = path.join(w.dir, "bundle.p12");
  }, 60_000);
  afterAll(() => w?.destroy());

  it("imports a certificate with its chain and key, saved with an audit entry and an event", async () => {
    const imported = await run(["cert", "import", "--cert", files.leaf!, "--chain", files.chain!, "--key", files.key!, "--name", "fuzz", "--json"]);
    expect(imported.code, imported.stderr).toBe(0);
    const json = JSON.parse(imported.stdout);
    expect(json).toMatchObject({ name: "fuzz", source: "upload", status: "active", domains: ["fuzz.example.test"], warnings: [] });
    expect((json.chainPem.match(/BEGIN CERTIFICATE/g) ?? []).length).toBe(2);
    expect(imported.stdout).not.toContain("PRIVATE KEY");
    const audit = await w.t.db.selectFrom("audit_log").selectAll().where("action", "=", "certificate.upload").where("target_id", "=", json.id).executeTakeFirst();
    expect(audit?.actor_label).toBe("cli");
    const events = await w.t.db.selectFrom("events").select("type").where("certificate_id", "=", json.id).execute();
    expect(events.map((e) => e.type)).toEqual(["certificate.imported"]);
  }, 120_000);

  it("refuses a key that does not match, naming the file, and saves nothing", async () => {
    const before = [await countRows(w, "certificates"), await countRows(w, "events")];
    const bad = await run(["cert", "import", "--cert", files.leaf!, "--key", files.otherKey!, "--name", "mismatch"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`--key ${files.otherKey}: the private key does not belong`);
    expect(bad.stderr).not.toMatch(/\n\s+at /);
    expect([await countRows(w, "certificates"), await countRows(w, "events")]).toEqual(before);
    const missing = await run(["cert", "import", "--cert", files.leaf!, "--key", path.join(w.dir, "nope.key")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(`--key ${path.join(w.dir, "nope.key")}: the file does not exist`);
  }, 120_000);

  it("refuses an expired certificate and imports one that expires soon with a warning on stderr", async () => {
    const before = await countRows(w, "certificates");
    const expired = await run(["cert", "import", "--cert", files.expiredCert!, "--key", files.expiredKey!]);
    expect(expired.code).toBe(1);
    expect(expired.stderr).toMatch(/--cert .*expired\.pem: the certificate expired on \d{4}-\d\d-\d\d/);
    expect(await countRows(w, "certificates")).toBe(before);

    const soon = await run(["cert", "import", "--cert", files.soonCert!, "--key", files.soonKey!, "--json"]);
    expect(soon.code, soon.stderr).toBe(0);
    expect(soon.stderr).toMatch(/warning: .*expires in 1[45] days/);
    // stdout is pure JSON even with warnings and info-level logging on.
    const json = JSON.parse(soon.stdout);
    expect(json.warnings).toHaveLength(1);
    expect(json.name).toBe("soon.example.test");
  }, 120_000);

  it("adds a version with --into, and refuses --into an unknown or self-signed certificate", async () => {
    const into = await run(["cert", "import", "--cert", files.leaf!, "--chain", files.chain!, "--key", files.key!, "--into", "fuzz"]);
    expect(into.code, into.stderr).toBe(0);
    expect(into.stdout).toContain("added version 2 to fuzz");
    const info = JSON.parse((await run(["cert", "info", "fuzz", "--json"])).stdout);
    expect(info.versions.map((v: { version: number }) => v.version)).toEqual([2, 1]);

    const unknown = await run(["cert", "import", "--cert", files.leaf!, "--key", files.key!, "--into", "ghost"]);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('no certificate named or with id "ghost"');
    await createSelfSignedCertificateRecord(w.t.db, w.keyring, SYSTEM_ACTOR, { name: "self", domains: ["self.example.test"] });
    const selfSigned = await run(["cert", "import", "--cert", files.leaf!, "--key", files.key!, "--into", "self"]);
    expect(selfSigned.code).toBe(1);
    expect(selfSigned.stderr).toContain("self-signed");
  }, 120_000);

  it("opens an encrypted key with --passphrase-env and a PKCS#12 file with --password-env", async () => {
    const locked = await run(["cert", "import", "--cert", files.leaf!, "--key", files.encryptedKey!, "--name", "enc"]);
    expect(locked.code).toBe(1);
    expect(locked.stderr).toContain("--passphrase-env (not given): this key is encrypted");
    const wrong = await runCli(["cert", "import", "--cert", files.leaf!, "--key", files.encryptedKey!, "--name", "enc", "--passphrase-env", "KEY_PASS"], { ...w.env, KEY_PASS: "wrong" });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("--passphrase-env KEY_PASS: the passphrase does not decrypt this key");
    const opened = await runCli(["cert", "import", "--cert", files.leaf!, "--key", files.encryptedKey!, "--name", "enc", "--passphrase-env", "KEY_PASS"], { ...w.env, KEY_PASS: "open sesame" });
    expect(opened.code, opened.stderr).toBe(0);
    const unset = await run(["cert", "import", "--cert", files.leaf!, "--key", files.encryptedKey!, "--passphrase-env", "NOT_SET_ANYWHERE"]);
    expect(unset.code).toBe(2);
    expect(unset.stderr).toContain("the environment variable NOT_SET_ANYWHERE is not set");

    const p12 = await runCli(["cert", "import", "--p12", files.p12!, "--password-env", "P12_PASS", "--name", "from-p12", "--json"], { ...w.env, P12_PASS: "p12 secret" });
    expect(p12.code, p12.stderr).toBe(0);
    expect(JSON.parse(p12.stdout)).toMatchObject({ name: "from-p12", domains: ["fuzz.example.test"] });
    const badPassword = await runCli(["cert", "import", "--p12", files.p12!, "--password-env", "P12_PASS"], { ...w.env, P12_PASS: "nope" });
    expect(badPassword.code).toBe(1);
    expect(badPassword.stderr).toContain("--password-env P12_PASS: the password does not open this PKCS#12 file");
  }, 120_000);

  it("exits 2 for usage errors", async () => {
    for (const args of [
      ["cert", "import", "--cert", "x.pem"],
      ["cert", "import", "--p12", "x.p12", "--cert", "x.pem"],
      ["cert", "import", "--cert", "a", "--key", "b", "--name", "n", "--into", "m"],
      ["cert", "list", "--status", "shiny"],
      ["cert", "list", "--expiring-within", "soon"],
      ["cert", "frobnicate"],
      ["cert", "info"],
      ["events", "--severity", "loud"],
      ["events", "--limit", "0"],
      ["--no-such-option"],
    ]) {
      const result = await run(args);
      expect(result.code, `${args.join(" ")}: ${result.stderr}`).toBe(2);
      expect(result.stderr).not.toMatch(/\n\s+at /);
    }
    expect(JSON.parse((await run(["migrate", "--json"])).stdout)).toEqual({ applied: [] });
    const help = await run(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Exit codes:\n\s+0\s+success[\s\S]*3\s+not found/);
  }, 120_000);

  it("lists certificates with filters, as a table and as JSON", async () => {
    const all = JSON.parse((await run(["cert", "list", "--json"])).stdout) as { name: string; source: string }[];
    expect(all.map((c) => c.name).sort()).toEqual(["enc", "from-p12", "fuzz", "self", "soon.example.test"]);
    const uploads = JSON.parse((await run(["cert", "list", "--source", "upload", "--json"])).stdout) as { name: string }[];
    expect(uploads.map((c) => c.name)).not.toContain("self");
    expect(uploads).toHaveLength(4);
    const expiring = JSON.parse((await run(["cert", "list", "--expiring-within", "30", "--json"])).stdout) as { name: string }[];
    expect(expiring.map((c) => c.name)).toEqual(["soon.example.test"]);
    expect(JSON.parse((await run(["cert", "list", "--status", "failed", "--json"])).stdout)).toEqual([]);
    const table = await run(["cert", "list", "--source", "self_signed"]);
    expect(table.stdout).toMatch(/^ID\s+NAME\s+STATUS\s+SOURCE\s+EXPIRES\s+NAMES\ncrt_\S+\s+self\s+active\s+self_signed\s+in 36[45] days\s+self.example.test\n$/);
  }, 120_000);

  it("maps a certificate on a listener like \"Serve on\", and a real edge serves it", async () => {
    const port = await findFreePort();
    const upstream = await findFreePort();
    const listener = await createListener(w.t.db, SYSTEM_ACTOR, { name: "public", kind: "https", bindAddress: "127.0.0.1", port, upstreamUrl: `http://127.0.0.1:${upstream}` });
    const edge = new Edge({ db: w.t.db, keyring: w.keyring, log: pino({ level: "silent" }), pollIntervalMs: 50, checkIntervalMs: 3_600_000 });
    await edge.start();
    try {
      const revision = await readEdgeRevision(w.t.db);
      const mapped = await run(["listener", "map", "public", "fuzz", "--json"]);
      expect(mapped.code, mapped.stderr).toBe(0);
      expect(JSON.parse(mapped.stdout)).toMatchObject({ listenerId: listener.id, mapped: ["fuzz.example.test"], mappings: [{ hostname: "fuzz.example.test", certificateName: "fuzz" }] });
      expect(await readEdgeRevision(w.t.db)).not.toBe(revision);
      const audit = await w.t.db.selectFrom("audit_log").selectAll().where("action", "=", "listener.mappings").where("target_id", "=", listener.id).executeTakeFirst();
      expect(audit?.actor_label).toBe("cli");

      const fingerprint = (await w.t.db.selectFrom("certificates").select("fingerprint_sha256").where("name", "=", "fuzz").executeTakeFirstOrThrow()).fingerprint_sha256;
      let served = "";
      for (let i = 0; i < 100 && served !== fingerprint; i++) {
        served = await fetchServedCertificate("127.0.0.1", port, "fuzz.example.test").then((c) => c.fingerprint, () => "");
        if (served !== fingerprint) await new Promise((r) => setTimeout(r, 50));
      }
      expect(served).toBe(fingerprint);

      // A name the certificate does not cover is saved with a warning, as the API does.
      const other = await run(["listener", "map", listener.id, "self", "--hostname", "Other.Example.Test"]);
      expect(other.code, other.stderr).toBe(0);
      expect(other.stderr).toContain('warning: other.example.test: certificate "self" does not cover other.example.test');
      const bad = await run(["listener", "map", "public", "self", "--hostname", "192.0.2.1"]);
      expect(bad.code).toBe(1);
      expect(bad.stderr).toContain("clients do not send IP addresses as SNI names");

      const info = await run(["listener", "info", "public", "--json"]);
      expect(JSON.parse(info.stdout)).toMatchObject({ id: listener.id, mappings: [{ hostname: "fuzz.example.test" }, { hostname: "other.example.test" }] });
      const text = await run(["listener", "info", "public"]);
      expect(text.stdout).toMatch(/fuzz\.example\.test\s+fuzz\s+active/);
      const certInfo = JSON.parse((await run(["cert", "info", "fuzz", "--json"])).stdout);
      expect(certInfo.mappings).toEqual([{ listenerId: listener.id, listenerName: "public", listenerEnabled: true, hostname: "fuzz.example.test" }]);
      expect((await run(["cert", "info", "fuzz"])).stdout).toMatch(/Served on\s+public \(lst_\S+\): fuzz\.example\.test/);

      expect((await run(["listener", "map", "nowhere", "fuzz"])).code).toBe(3);
      expect((await run(["listener", "map", "public", "nothing"])).code).toBe(3);
      const unmapped = await run(["listener", "unmap", "public", "OTHER.example.test"]);
      expect(unmapped.code, unmapped.stderr).toBe(0);
      const again = await run(["listener", "unmap", "public", "other.example.test"]);
      expect(again.code).toBe(3);
      expect(again.stderr).toContain('listener "public" has no mapping for other.example.test');
    } finally {
      await edge.stop();
    }
  }, 120_000);

  it("deletes a certificate only with --yes when there is no terminal, removing its mappings", async () => {
    const refused = await run(["cert", "delete", "fuzz"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/add --yes to delete certificate fuzz \(crt_\S+\), served as fuzz\.example\.test on public/);
    expect((await run(["cert", "info", "fuzz"])).code).toBe(0);
    const deleted = await run(["cert", "delete", "fuzz", "--yes", "--json"]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(JSON.parse(deleted.stdout)).toMatchObject({ name: "fuzz", unmapped: [{ hostname: "fuzz.example.test" }] });
    const info = await run(["cert", "info", "fuzz"]);
    expect(info.code).toBe(3);
    expect(info.stderr).toContain('no certificate named or with id "fuzz"');
    expect(await w.t.db.selectFrom("certificate_mappings").selectAll().where("hostname", "=", "fuzz.example.test").execute()).toEqual([]);
  }, 120_000);

  it("lists events with filters, as text and JSON", async () => {
    const publicId = (await w.t.db.selectFrom("listeners").select("id").where("name", "=", "public").executeTakeFirstOrThrow()).id;
    await recordEvent(w.t.db, { type: "test.listener_note", listenerId: publicId, message: "about the public listener" });
    const all = JSON.parse((await run(["events", "--json"])).stdout) as { id: number; type: string }[];
    expect(all.length).toBeGreaterThan(3);
    expect(all.map((e) => e.id)).toEqual([...all.map((e) => e.id)].sort((a, b) => a - b));
    const deleted = JSON.parse((await run(["events", "--type", "certificate.deleted", "--json"])).stdout);
    expect(deleted).toHaveLength(1);
    expect(deleted[0].message).toContain('certificate "fuzz" deleted');
    const enc = JSON.parse((await run(["events", "--certificate", "enc", "--json"])).stdout) as { type: string }[];
    expect(enc.map((e) => e.type)).toEqual(["certificate.imported"]);
    const byListener = JSON.parse((await run(["events", "--listener", "public", "--json"])).stdout) as { type: string; listenerName: string }[];
    // The listener's own events (the edge may have served its fallback meanwhile) and nothing else's.
    expect(byListener.map((e) => e.type)).toContain("test.listener_note");
    expect(new Set(byListener.map((e) => e.listenerName))).toEqual(new Set(["public"]));
    const last2 = JSON.parse((await run(["events", "--limit", "2", "--json"])).stdout) as { id: number }[];
    expect(last2.map((e) => e.id)).toEqual(all.slice(-2).map((e) => e.id));
    const after = JSON.parse((await run(["events", "--after", String(all.at(-2)!.id), "--json"])).stdout) as { id: number }[];
    expect(after.map((e) => e.id)).toEqual([all.at(-1)!.id]);
    const text = await run(["events", "--type", "certificate.deleted"]);
    expect(text.stdout).toMatch(/^\s*\d+\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+info\s+certificate\.deleted\s+.*certificate "fuzz" deleted\n$/);
  }, 120_000);

  it("follows new events as NDJSON until SIGINT, then exits 0", async () => {
    const child = spawnCli(["events", "--follow", "--json", "--limit", "1"], w.env);
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d));
    try {
      const reader = lineReader(child);
      // The last event before now comes first, as `tail -f` shows the end of a file.
      const history = JSON.parse(await reader.next(() => true, 15_000));
      expect(history.type).toBe("test.listener_note");
      const started = Date.now();
      await recordEvent(w.t.db, { type: "test.cli_follow", severity: "warning", message: "from the test" });
      const line = await reader.next((l) => l.includes("test.cli_follow"), 5_000);
      expect(Date.now() - started).toBeLessThan(5_000);
      expect(JSON.parse(line)).toMatchObject({ type: "test.cli_follow", severity: "warning", message: "from the test" });
      await recordEvent(w.t.db, { type: "test.cli_follow_2", message: "second" });
      await reader.next((l) => l.includes("test.cli_follow_2"), 5_000);
      for (const l of reader.lines) JSON.parse(l);
    } finally {
      child.kill("SIGINT");
    }
    expect(await exited, stderr).toBe(0);
    expect(stderr).not.toMatch(/\n\s+at /);
  }, 120_000);

  it("follows with a filter in text form", async () => {
    const child = spawnCli(["events", "--follow", "--severity", "error"], w.env);
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    try {
      const reader = lineReader(child);
      await new Promise((r) => setTimeout(r, 1500));
      await recordEvent(w.t.db, { type: "test.quiet", message: "not an error" });
      await recordEvent(w.t.db, { type: "test.loud", severity: "error", message: "an error" });
      const line = await reader.next((l) => l.includes("test."), 10_000);
      expect(line).toMatch(/\d+\s+\S+ \S+\s+error\s+test\.loud\s+-\s+an error/);
      expect(reader.lines.join("\n")).not.toContain("test.quiet");
    } finally {
      child.kill("SIGINT");
    }
    expect(await exited).toBe(0);
  }, 120_000);

  it("lists users and tokens, and revokes a token by its prefix", async () => {
    expect((await run(["user", "add", "--email", "ops@example.test", "--role", "viewer"], "a long password\n")).code).toBe(0);
    expect(JSON.parse((await run(["user", "list", "--json"])).stdout)).toMatchObject([{ email: "ops@example.test", role: "viewer" }]);
    const created = JSON.parse((await run(["token", "create", "--user", "ops@example.test", "--name", "ci", "--json"])).stdout);
    const listed = JSON.parse((await run(["token", "list", "--json"])).stdout);
    expect(listed).toMatchObject([{ id: created.id, name: "ci", userEmail: "ops@example.test", revokedAt: null }]);
    expect(JSON.stringify(listed)).not.toContain(created.token);
    const revoked = await run(["token", "revoke", created.token.slice(0, 10)]);
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain(`revoked ${created.id}`);
    expect(JSON.parse((await run(["token", "list", "--json"])).stdout)[0].revokedAt).not.toBeNull();
    expect((await run(["token", "revoke", "tok_nothing"])).code).toBe(3);
  }, 120_000);
});
