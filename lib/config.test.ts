import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, parseConfig } from "./config";

describe("configuration", () => {
  it("has working defaults: SQLite under ./data, loopback, port 8443", () => {
    const c = parseConfig({});
    expect(c.dataDir).toBe(path.resolve("data"));
    expect(c.database).toEqual({ kind: "sqlite", file: path.resolve("data/portcullis.db") });
    expect(c.host).toBe("127.0.0.1");
    expect(c.port).toBe(8443);
    expect(c.tls.mode).toBe("auto");
    expect(c.workerRoles).toEqual(["engine", "edge"]);
    expect(c.acme.directoryUrl).toBe("https://acme-v02.api.letsencrypt.org/directory");
  });

  it("chooses PostgreSQL for a postgres:// DATABASE_URL", () => {
    expect(parseConfig({ DATABASE_URL: "postgres://u@h:5432/db" }).database).toEqual({ kind: "postgres", url: "postgres://u@h:5432/db" });
    expect(parseConfig({ DATABASE_URL: "sqlite:/tmp/x.db" }).database).toEqual({ kind: "sqlite", file: "/tmp/x.db" });
  });

  it("reads DNS-01's resolvers and Cloudflare API URL", () => {
    const c = parseConfig({ PORTCULLIS_DNS_RESOLVERS: "1.1.1.1:53, 8.8.8.8,[2606:4700:4700::1111]:53,2001:db8::1,ns.example.net:5353", PORTCULLIS_CLOUDFLARE_API_URL: "http://127.0.0.1:9/client/v4" });
    expect(c.dnsResolvers).toEqual(["1.1.1.1:53", "8.8.8.8", "[2606:4700:4700::1111]:53", "2001:db8::1", "ns.example.net:5353"]);
    expect(c.cloudflareApiUrl).toBe("http://127.0.0.1:9/client/v4");
  });

  it("treats an empty variable as unset", () => {
    expect(parseConfig({ PORTCULLIS_PORT: "" }).port).toBe(8443);
  });

  const refusals: [Record<string, string>, RegExp][] = [
    [{ PORTCULLIS_PORT: "http" }, /PORTCULLIS_PORT \(got "http"\): must be a port number between 1 and 65535/],
    [{ PORTCULLIS_PORT: "70000" }, /PORTCULLIS_PORT.*between 1 and 65535/],
    [{ PORTCULLIS_TLS_MODE: "https" }, /PORTCULLIS_TLS_MODE \(got "https"\): accepted values: auto, acme, provided, off, behind_proxy/],
    [{ PORTCULLIS_WORKER_ROLES: "engine,proxy" }, /PORTCULLIS_WORKER_ROLES.*accepted values: engine, edge/],
    [{ PORTCULLIS_EDGE_TLS: "openssl" }, /PORTCULLIS_EDGE_TLS \(got "openssl"\): accepted values: native, portable/],
    [{ PORTCULLIS_DNS_RESOLVERS: "1.1.1.1:53,dns over https" }, /PORTCULLIS_DNS_RESOLVERS \(got "1.1.1.1:53,dns over https"\): accepted values: comma-separated host or host:port entries/],
    [{ PORTCULLIS_DNS_RESOLVERS: "1.1.1.1:99999" }, /PORTCULLIS_DNS_RESOLVERS.*host:port/],
    [{ PORTCULLIS_SECRET: "short" }, /PORTCULLIS_SECRET: must be at least 32 characters/],
    [{ DATABASE_URL: "mysql://x" }, /DATABASE_URL.*accepted values: postgres:\/\//],
    [{ PORTCULLIS_ALLOW_INSECURE_HTTP: "maybe" }, /PORTCULLIS_ALLOW_INSECURE_HTTP.*accepted values: true, false/],
    [{ PORTCULLIS_ADMIN_EMAIL: "a@b.example" }, /set both PORTCULLIS_ADMIN_EMAIL and PORTCULLIS_ADMIN_PASSWORD/],
    [{ PORTCULLIS_ACME_DIRECTORY_URL: "ftp://x" }, /PORTCULLIS_ACME_DIRECTORY_URL.*http/],
  ];
  it.each(refusals)("refuses %o, naming the variable and what it accepts", (env, message) => {
    expect(() => parseConfig(env)).toThrow(ConfigError);
    expect(() => parseConfig(env)).toThrow(message);
  });

  it("never echoes a secret's value", () => {
    try {
      parseConfig({ PORTCULLIS_SECRET: "hunter2" });
      expect.unreachable();
    } catch (err) {
      expect(String((err as Error).message)).not.toContain("hunter2");
    }
  });

  it("lists every problem at once", () => {
    try {
      parseConfig({ PORTCULLIS_PORT: "x", PORTCULLIS_TLS_MODE: "y" });
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems).toHaveLength(2);
    }
  });
});
