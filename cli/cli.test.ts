import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_ACTOR } from "../lib/audit";
import { createSelfSignedCertificateRecord } from "../lib/certificates";
import { Keyring, loadSealingKey } from "../lib/crypto/seal";
import { openDatabase } from "../lib/db/connection";
import { createListener, setMappings } from "../lib/listeners";
import { findFreePort } from "../lib/net";
import { bin, runCli as run } from "./test-support";

describe("the portcullis CLI", () => {
  let dataDir: string;
  let env: Record<string, string>;
  beforeAll(() => {
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-cli-"));
    env = { PORTCULLIS_DATA_DIR: dataDir, PORTCULLIS_LOG_LEVEL: "silent" };
  });
  afterAll(() => fs.rmSync(dataDir, { recursive: true, force: true }));

  it("migrates, then says the database is up to date", async () => {
    expect((await run(["migrate"], env)).stdout).toContain("applied: 0001_foundation, 0002_listeners");
    expect((await run(["migrate"], env)).stdout).toContain("up to date");
  }, 120_000);

  it("adds users with the password from standard input, refusing bad ones with exit code 1 (bad input) or 2 (bad option)", async () => {
    const added = await run(["user", "add", "--email", "ops@example.test", "--role", "viewer", "--json"], env, "a long password\n");
    expect(added.code, added.stderr).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({ email: "ops@example.test", role: "viewer" });
    const short = await run(["user", "add", "--email", "x@example.test"], env, "short\n");
    expect(short.code).toBe(1);
    expect(short.stderr).toContain("password: use at least 10 characters");
    const role = await run(["user", "add", "--email", "y@example.test", "--role", "root"], env, "a long password\n");
    expect(role.code).toBe(2);
    expect(role.stderr).toContain("accepted values: admin, viewer");
  }, 120_000);

  it("creates a token for an existing user only", async () => {
    const token = await run(["token", "create", "--user", "ops@example.test", "--name", "ci"], env);
    expect(token.code, token.stderr).toBe(0);
    expect(token.stdout.trim()).toMatch(/^pct_/);
    const missing = await run(["token", "create", "--user", "ghost@example.test", "--name", "ci"], env);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain("no user with the email ghost@example.test");
  }, 120_000);

  it("lists and shows certificates, as text and JSON, and exits 3 for an unknown one", async () => {
    expect(JSON.parse((await run(["cert", "list", "--json"], env)).stdout)).toEqual([]);
    const { db } = openDatabase({ kind: "sqlite", file: path.join(dataDir, "portcullis.db") });
    const keyring = new Keyring(loadSealingKey({ dataDir }).key);
    const cert = await createSelfSignedCertificateRecord(db, keyring, SYSTEM_ACTOR, { name: "cli-cert", domains: ["cli.example.test", "*.cli.example.test"] });
    await db.destroy();

    const list = await run(["cert", "list"], env);
    expect(list.stdout).toMatch(new RegExp(`${cert.id}\\s+cli-cert\\s+active\\s+self_signed\\s+in 36[45] days\\s+cli.example.test,\\*.cli.example.test`));
    expect(JSON.parse((await run(["cert", "list", "--json"], env)).stdout)[0]).toMatchObject({ id: cert.id, name: "cli-cert" });
    const info = await run(["cert", "info", "cli-cert"], env);
    expect(info.stdout).toMatch(new RegExp(`\\nSHA-256\\s+${cert.fingerprintSha256}\\n`));
    const json = JSON.parse((await run(["cert", "info", cert.id, "--json"], env)).stdout);
    expect(json).toMatchObject({ id: cert.id, fingerprintSha256: cert.fingerprintSha256 });
    expect(JSON.stringify(json)).not.toContain("PRIVATE KEY");
    const unknown = await run(["cert", "info", "nope"], env);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toContain('no certificate named or with id "nope"');
    // Only ACME certificates renew from a CA: a clear refusal, exit 1.
    const renew = await run(["cert", "renew", "cli-cert"], env);
    expect(renew.code).toBe(1);
    expect(renew.stderr).toContain("not renewed from a CA");
    expect((await run(["cert", "renew", "nope", "--json"], env)).code).toBe(3);
  }, 120_000);

  it("lists listeners and their mappings", async () => {
    expect((await run(["listener", "list"], env)).stdout).toContain("no listeners");
    const { db } = openDatabase({ kind: "sqlite", file: path.join(dataDir, "portcullis.db") });
    const port = await findFreePort();
    const cert = await db.selectFrom("certificates").select("id").where("name", "=", "cli-cert").executeTakeFirstOrThrow();
    const created = await createListener(db, SYSTEM_ACTOR, { name: "edge-https", kind: "https", bindAddress: "127.0.0.1", port, upstreamUrl: "http://127.0.0.1:3000" });
    await setMappings(db, SYSTEM_ACTOR, created.id, { mappings: [{ hostname: "cli.example.test", certificateId: cert.id }] });
    await db.destroy();
    const text = (await run(["listener", "list"], env)).stdout;
    expect(text).toContain(`${created.id}  edge-https  https://127.0.0.1:${port}  → http://127.0.0.1:3000`);
    expect(text).toContain("cli.example.test → cli-cert");
    expect(JSON.parse((await run(["listener", "list", "--json"], env)).stdout)[0]).toMatchObject({ name: "edge-https", mappings: [{ hostname: "cli.example.test" }] });
  }, 120_000);

  it("stops at a bad environment value with exit code 2, naming the variable", async () => {
    const bad = await run(["cert", "list"], { ...env, PORTCULLIS_TLS_MODE: "tls" });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('PORTCULLIS_TLS_MODE (got "tls"): accepted values: auto, acme, provided, off, behind_proxy');
    expect(bad.stderr).not.toMatch(/at .*\.ts:\d+/);
  }, 120_000);

  it("refuses to run with another sealing key than the one the database was sealed with", async () => {
    const wrong = await run(["cert", "list"], { ...env, PORTCULLIS_SECRET: "x".repeat(40) });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("this database was sealed with a different key");
  }, 120_000);

  it("runs the worker with a /health endpoint and stops it cleanly on SIGTERM", async () => {
    const port = await findFreePort();
    const child = spawn(process.execPath, [bin, "worker"], {
      env: { ...process.env, ...env, PORTCULLIS_WORKER_HEALTH_PORT: String(port) },
      stdio: "ignore",
    });
    const health = async () =>
      new Promise<string>((resolve, reject) =>
        http.get(`http://127.0.0.1:${port}/health`, (res) => {
          let body = "";
          res.on("data", (d) => (body += d));
          res.on("end", () => resolve(body));
        }).on("error", reject),
      );
    let body = "";
    for (let i = 0; i < 100 && !body; i++) {
      body = await health().catch(() => "");
      if (!body) await new Promise((r) => setTimeout(r, 100));
    }
    expect(JSON.parse(body)).toMatchObject({ status: "ok", roles: ["engine", "edge"] });
    const exited = new Promise<number | null>((resolve) => child.on("exit", resolve));
    child.kill("SIGTERM");
    expect(await exited).toBe(0);
    await expect(health()).rejects.toThrow();
  }, 30_000);
});
