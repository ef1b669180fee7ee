import crypto from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TEST_ENGINES } from "../lib/db/testing";
import { readEdgeRevision } from "../lib/listeners/revision";
import { findFreePort } from "../lib/net";
import { startFakeCloudflare, type FakeCloudflare } from "../tests/support/fake-cloudflare";
import { startWebhookReceiver, type WebhookReceiver } from "../tests/support/webhook-receiver";
import { createCliWorld, runCli, type CliWorld } from "./test-support";

// The CLI commands that do what the console's settings pages do: listeners, DNS credentials, ACME
// accounts, webhooks and the console's TLS. Each spawn costs a second or two, so each test batches.

const audits = (w: CliWorld, action: string) => w.t.db.selectFrom("audit_log").select(["actor_label", "target_id", "detail"]).where("action", "=", action).execute();

describe.each(TEST_ENGINES)("the portcullis CLI settings commands on %s", (kind) => {
  let w: CliWorld;
  let receiver: WebhookReceiver;
  let cloudflare: FakeCloudflare;
  const token = `cliTok-${crypto.randomBytes(18).toString("base64url")}`;
  const run = (args: string[], extraEnv: Record<string, string> = {}, input?: string) => runCli(args, { ...w.env, ...extraEnv }, input);

  beforeAll(async () => {
    w = await createCliWorld(kind);
    receiver = await startWebhookReceiver();
    cloudflare = await startFakeCloudflare({ zones: [{ name: "example.test" }], tokens: { [token]: { read: "all", edit: "all" } } });
    w.env.PORTCULLIS_CLOUDFLARE_API_URL = cloudflare.url;
  }, 60_000);
  afterAll(async () => {
    await receiver?.stop();
    await cloudflare?.stop();
    await w?.destroy();
  });

  it("creates, updates and disables a listener, refusing a bad port with the field's message", async () => {
    const bad = await run(["listener", "create", "--name", "public", "--kind", "https", "--bind", "127.0.0.1", "--port", "70000", "--upstream", "http://127.0.0.1:3000"]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("port: the port must be between 1 and 65535");
    expect(bad.stdout).toBe("");
    expect(await w.t.db.selectFrom("listeners").select("id").execute()).toEqual([]);

    const revision = await readEdgeRevision(w.t.db);
    const port = await findFreePort();
    const created = await run(["listener", "create", "--name", "public", "--kind", "https", "--bind", "127.0.0.1", "--port", String(port), "--upstream", "http://127.0.0.1:3000", "--json"]);
    expect(created.code, created.stderr).toBe(0);
    const listener = JSON.parse(created.stdout);
    expect(listener).toMatchObject({ name: "public", kind: "https", bindAddress: "127.0.0.1", port, minTlsVersion: "TLSv1.2", fallbackPolicy: "self_signed", enabled: true });
    expect(await readEdgeRevision(w.t.db)).not.toBe(revision);
    expect((await audits(w, "listener.create")).map((a) => [a.actor_label, a.target_id])).toEqual([["cli", listener.id]]);

    // update merges over the current settings: the upstream and bind stay.
    expect(listener.upstreamTlsVerify).toBe(true);
    const updated = await run(["listener", "update", "public", "--min-tls", "1.3", "--fallback", "refuse", "--name", "edge", "--json"]);
    expect(updated.code, updated.stderr).toBe(0);
    expect(JSON.parse(updated.stdout)).toMatchObject({ id: listener.id, name: "edge", minTlsVersion: "TLSv1.3", fallbackPolicy: "refuse", upstreamUrl: "http://127.0.0.1:3000", bindAddress: "127.0.0.1", port });

    const maybe = await run(["listener", "update", "edge", "--verify-upstream", "maybe"]);
    expect(maybe.code).toBe(1);
    expect(maybe.stderr).toContain("upstreamTlsVerify: upstreamTlsVerify must be true (check an https upstream's certificate) or false (accept any)");
    const insecure = await run(["listener", "update", "edge", "--upstream", "https://127.0.0.1:3443", "--verify-upstream", "off"]);
    expect(insecure.code, insecure.stderr).toBe(0);
    expect(insecure.stdout).toContain("→ https://127.0.0.1:3443 (certificate not verified)");

    const disabled = await run(["listener", "disable", listener.id]);
    expect(disabled.code, disabled.stderr).toBe(0);
    expect(disabled.stdout).toContain("(disabled)");
    const row = await w.t.db.selectFrom("listeners").selectAll().where("id", "=", listener.id).executeTakeFirstOrThrow();
    expect([row.name, row.min_tls_version, row.fallback_policy, Number(row.upstream_tls_verify), Number(row.enabled)]).toEqual(["edge", "TLSv1.3", "refuse", 0, 0]);
    expect((await audits(w, "listener.update")).length).toBe(3);

    const notFound = await run(["listener", "delete", "nope", "--yes"]);
    expect(notFound.code).toBe(3);
    const noYes = await run(["listener", "delete", "edge"]);
    expect(noYes.code).toBe(2);
    expect(noYes.stderr).toContain("add --yes");
    expect(await w.t.db.selectFrom("listeners").select("id").execute()).toHaveLength(1);
  }, 120_000);

  it("adds a webhook, prints its secret once, and tests it against a live and a dead receiver", async () => {
    const added = await run(["webhook", "add", "--name", "ops", "--url", receiver.url, "--event", "tls.expiring", "--json"]);
    expect(added.code, added.stderr).toBe(0);
    const webhook = JSON.parse(added.stdout);
    expect(webhook).toMatchObject({ name: "ops", url: receiver.url, eventTypes: ["tls.expiring"], enabled: true });
    expect(webhook.secret).toMatch(/^whsec_/);

    const sent = await run(["webhook", "test", "ops"]);
    expect(sent.code, sent.stderr).toBe(0);
    expect(sent.stdout).toContain("delivered");
    const [request] = await receiver.waitFor(1);
    expect(JSON.parse(request!.body)).toMatchObject({ type: "tls.expiring", test: true });
    expect(request!.headers["x-portcullis-signature"]).toBeTruthy();

    await receiver.stop();
    const dead = await run(["webhook", "test", webhook.id, "--json"]);
    expect(dead.code).toBe(1);
    expect(JSON.parse(dead.stdout)).toMatchObject({ status: "failed", test: true });
    await receiver.start();

    const listed = await run(["webhook", "list", "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).not.toContain(webhook.secret);
    expect(JSON.parse(listed.stdout).map((h: { id: string }) => h.id)).toEqual([webhook.id]);
    const deliveries = await run(["webhook", "deliveries", "ops", "--json"]);
    expect(JSON.parse(deliveries.stdout).map((d: { status: string }) => d.status)).toEqual(["failed", "delivered"]);
    expect((await audits(w, "webhook.test")).every((a) => a.actor_label === "cli")).toBe(true);
  }, 120_000);

  it("adds a DNS credential from an environment variable, verified with the provider, and never prints the token", async () => {
    // A token on standard input (a script's pipe) that the provider refuses: nothing is saved.
    const refused = await run(["dns", "add", "--name", "bad"], {}, `${token}x\n`);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("the credential was not saved");
    expect(refused.stderr).not.toContain("the token is empty");

    const added = await run(["dns", "add", "--name", "prod", "--token-env", "CF_TOKEN", "--json"], { CF_TOKEN: token });
    expect(added.code, added.stderr).toBe(0);
    const credential = JSON.parse(added.stdout);
    expect(credential).toMatchObject({ name: "prod", provider: "cloudflare", tokenHint: `…${token.slice(-4)}` });
    expect(credential.verification.ok).toBe(true);
    const listed = await run(["dns", "list"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain("prod");
    for (const output of [refused, added, listed]) expect(output.stdout + output.stderr).not.toContain(token.slice(0, -4));
    const rows = await w.t.db.selectFrom("dns_credentials").selectAll().execute();
    expect(rows.map((r) => r.name)).toEqual(["prod"]);
    expect(rows[0]!.sealed_token).not.toContain(token);
    expect((await audits(w, "dns_credential.create")).map((a) => a.actor_label)).toEqual(["cli"]);
    const events = await w.t.db.selectFrom("events").select("message").where("type", "=", "dns.credential_added").execute();
    expect(events).toHaveLength(1);
    expect(events[0]!.message).not.toContain(token.slice(0, -4));

    // verify asks the provider again: exit 1 once it refuses the token (add verified it a moment ago).
    cloudflare.tokens.delete(token);
    const unverified = await run(["dns", "verify", credential.id, "--json"]);
    expect(unverified.code).toBe(1);
    expect(JSON.parse(unverified.stdout).verification.ok).toBe(false);
    const deleted = await run(["dns", "delete", "prod", "--yes"]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(await w.t.db.selectFrom("dns_credentials").select("id").execute()).toEqual([]);
  }, 120_000);

  it("adds an ACME account only with --agree-tos, and shows and changes the console's TLS mode", async () => {
    const refused = await run(["acme", "account", "add", "--directory", "letsencrypt-staging", "--email", "ops@example.com"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain("agreeTos: agree to the CA's terms of service");
    const added = await run(["acme", "account", "add", "--directory", "letsencrypt-staging", "--email", "ops@example.com", "--agree-tos", "--json"]);
    expect(added.code, added.stderr).toBe(0);
    expect(JSON.parse(added.stdout)).toMatchObject({ email: "ops@example.com", isDefault: true, registered: false, directoryUrl: expect.stringContaining("staging") });
    expect(await w.t.db.selectFrom("acme_accounts").select("id").execute()).toHaveLength(1);
    const removed = await run(["acme", "account", "delete", JSON.parse(added.stdout).id, "--yes"]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(await w.t.db.selectFrom("acme_accounts").select("id").execute()).toEqual([]);

    const status = await run(["tls", "status", "--json"]);
    expect(status.code, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ mode: "auto", modeSource: "default" });
    const badMode = await run(["tls", "set", "--mode", "sideways"]);
    expect(badMode.code).toBe(1);
    expect(badMode.stderr).toContain("mode must be one of");
    const set = await run(["tls", "set", "--mode", "behind_proxy", "--json"]);
    expect(set.code, set.stderr).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ mode: "behind_proxy", modeSource: "settings", https: false });
    expect((await audits(w, "console_tls.update")).map((a) => a.actor_label)).toEqual(["cli"]);
  }, 120_000);
});
