import fs from "node:fs";
import path from "node:path";
import { describe, it, expect } from "vitest";
import { parse } from "yaml";
import { ENVIRONMENT_VARIABLES, parseConfig, type Config } from "../lib/config";
import { checkTlsMode } from "../lib/console/http";
import { workerEnvironment } from "../worker/environment";

// There is no Docker engine in the test environment, so these checks read docker-compose.yml and
// the Dockerfile as data and hold them against the code they start: the CLI's commands, the
// configuration module's variables and defaults, package.json's bin and scripts.

const root = path.resolve(import.meta.dirname, "..");
const read = (file: string) => fs.readFileSync(path.join(root, file), "utf8");

type Healthcheck = { test?: string | string[]; disable?: boolean };
type Service = {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | number | { target?: number; published?: string | number })[];
  healthcheck?: Healthcheck;
  depends_on?: string[] | Record<string, { condition?: string }>;
  restart?: string;
};

const compose = parse(read("docker-compose.yml")) as { services: Record<string, Service> };
const services = compose.services ?? {};
const APP_SERVICES = ["migrate", "console", "worker"];
const LONG_RUNNING = ["console", "worker"];

// Values for `${VAR:?message}` (required) substitutions; every required variable needs one here.
const REQUIRED_TEST_VALUES: Record<string, string> = {
  PORTCULLIS_SECRET: "test-secret-0123456789abcdefghijklmnopqrstuvwxyz",
};

/** Compose interpolation, as `docker compose config` would do it with an otherwise empty shell. */
function interpolate(value: string): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (match, name, op, arg, bare) => {
    if (match === "$$") return "$";
    if (bare) return "";
    if (op === ":-" || op === "-") return arg;
    if (op === ":?" || op === "?") {
      const given = REQUIRED_TEST_VALUES[name];
      if (given === undefined) throw new Error(`${name} is required by docker-compose.yml ("${arg}") but the test has no value for it`);
      return given;
    }
    return "";
  });
}

/** A service's environment as a plain map, before interpolation (list or map syntax). */
function rawEnvironment(service: Service): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((entry) => {
        const eq = entry.indexOf("=");
        return eq === -1 ? [entry, ""] : [entry.slice(0, eq), entry.slice(eq + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null || v === undefined ? "" : String(v)]));
}

// ---- the Dockerfile, as instructions ------------------------------------------------------------

type Instruction = { keyword: string; args: string };
function dockerfileInstructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let current = "";
  for (const line of text.split("\n")) {
    if (/^\s*#/.test(line)) continue; // comments, also inside a continuation (Docker skips those too)
    if (/\\\s*$/.test(line)) {
      current += line.replace(/\\\s*$/, " ");
      continue;
    }
    current += line;
    if (current.trim()) {
      const m = /^\s*(\w+)\s+([\s\S]*)$/.exec(current);
      if (m) out.push({ keyword: m[1].toUpperCase(), args: m[2].trim() });
    }
    current = "";
  }
  return out;
}

const dockerfile = dockerfileInstructions(read("Dockerfile"));
const lastOf = (keyword: string) => dockerfile.filter((i) => i.keyword === keyword).at(-1);

/** The image's ENV, as the runtime (last) stage sets it. */
function imageEnvironment(): Record<string, string> {
  const froms = dockerfile.map((i, n) => (i.keyword === "FROM" ? n : -1)).filter((n) => n >= 0);
  const lastStage = dockerfile.slice(froms.at(-1) ?? 0);
  const env: Record<string, string> = {};
  for (const i of lastStage.filter((x) => x.keyword === "ENV")) {
    for (const m of i.args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("([^"]*)"|\S*)/g)) env[m[1]] = m[3] ?? m[2];
  }
  return env;
}

/** The environment a service's container sees: image ENV, then the compose environment. */
function containerEnvironment(name: string): Record<string, string> {
  const raw = rawEnvironment(services[name]);
  return { ...imageEnvironment(), ...Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, interpolate(v)])) };
}

function configOf(name: string): Config {
  return parseConfig(containerEnvironment(name));
}

function cliCommands(): string[] {
  const source = read("cli/index.ts");
  return [...source.matchAll(/\bprogram\s*\.command\(\s*["'`]([\w-]+)/g)].map((m) => m[1]);
}

function commandOf(service: Service): string[] {
  const c = service.command;
  if (c === undefined) return [];
  return Array.isArray(c) ? c.map(String) : c.trim().split(/\s+/);
}

function healthcheckUrl(service: Service): URL {
  const test = service.healthcheck?.test;
  const text = Array.isArray(test) ? test.join(" ") : String(test ?? "");
  const m = /https?:\/\/[^\s'"`)]+/.exec(text);
  if (!m) throw new Error(`no URL in the healthcheck: ${text}`);
  return new URL(m[0]);
}

function containerPorts(service: Service): number[] {
  return (service.ports ?? []).map((p) => {
    if (typeof p === "number") return p;
    if (typeof p === "object") return Number(p.target);
    // [ip:][host:]container[/proto]
    const spec = String(p).split("/")[0];
    return Number(spec.split(":").at(-1));
  });
}

function buildContext(service: Service): string | undefined {
  if (typeof service.build === "string") return service.build;
  return service.build?.context ?? (service.build ? "." : undefined);
}

const pkg = JSON.parse(read("package.json")) as { bin?: Record<string, string>; scripts?: Record<string, string> };

// ---- checks ----------------------------------------------------------------------------------

describe("docker-compose.yml", () => {
  it("has the postgres, migrate, console and worker services", () => {
    expect(Object.keys(services)).toEqual(expect.arrayContaining(["postgres", ...APP_SERVICES]));
  });

  it("builds every app service from this directory, as one image", () => {
    for (const name of APP_SERVICES) {
      expect(path.normalize(buildContext(services[name]) ?? "(no build)"), `${name}.build`).toBe(".");
      const dockerfileName = typeof services[name].build === "object" ? (services[name].build as { dockerfile?: string }).dockerfile : undefined;
      expect(dockerfileName ?? "Dockerfile", `${name}.build.dockerfile`).toBe("Dockerfile");
    }
    const images = new Set(APP_SERVICES.map((name) => services[name].image));
    expect(images.size, "the app services' image names").toBe(1);
  });

  it("runs commands that the CLI has", () => {
    const commands = cliCommands();
    expect(commands).toEqual(expect.arrayContaining(["serve", "console", "worker", "migrate"]));
    const expected: Record<string, string> = { migrate: "migrate", console: "console", worker: "worker" };
    for (const name of APP_SERVICES) {
      const [command] = commandOf(services[name]);
      expect(commands, `${name}.command`).toContain(command);
      expect(command, `${name}.command`).toBe(expected[name]);
    }
    expect(services.migrate.restart, "migrate runs once").toBe("no");
  });

  it("has a healthcheck on every service except the one-shot migrate", () => {
    for (const [name, service] of Object.entries(services)) {
      if (name === "migrate") {
        expect(service.healthcheck, "migrate.healthcheck").toBeUndefined();
        continue;
      }
      expect(service.healthcheck?.test, `${name}.healthcheck.test`).toBeTruthy();
      expect(service.healthcheck?.disable, `${name}.healthcheck.disable`).not.toBe(true);
    }
    expect(JSON.stringify(services.postgres.healthcheck?.test)).toMatch(/pg_isready/);
  });

  it("starts the console and the workers after a healthy database and a finished migration", () => {
    for (const name of ["migrate", ...LONG_RUNNING]) {
      const deps = services[name].depends_on;
      expect(deps && !Array.isArray(deps), `${name}.depends_on must use conditions`).toBe(true);
      const map = deps as Record<string, { condition?: string }>;
      expect(map.postgres?.condition, `${name} → postgres`).toBe("service_healthy");
      if (name !== "migrate") expect(map.migrate?.condition, `${name} → migrate`).toBe("service_completed_successfully");
    }
  });

  it("sets only variables that lib/config.ts reads", () => {
    for (const [name, service] of Object.entries(services)) {
      for (const key of Object.keys(rawEnvironment(service))) {
        if (key.startsWith("PORTCULLIS_") || key === "DATABASE_URL") {
          expect(ENVIRONMENT_VARIABLES, `${name}.environment.${key}`).toContain(key);
        }
      }
    }
  });

  it("gives the console and the workers a configuration they accept", () => {
    for (const name of ["migrate", ...LONG_RUNNING]) {
      const config = configOf(name); // throws a ConfigError naming the variable
      expect(config.database.kind, `${name} database`).toBe("postgres");
    }
    const consoleConfig = configOf("console");
    const workerConfig = configOf("worker");
    // The same sealing key and database in both, or one cannot read what the other sealed.
    expect(consoleConfig.secret, "console PORTCULLIS_SECRET").toBeTruthy();
    expect(workerConfig.secret, "worker and console share PORTCULLIS_SECRET").toBe(consoleConfig.secret);
    expect(workerConfig.database, "worker and console share the database").toEqual(consoleConfig.database);
    expect(workerConfig.workerRoles).toEqual(["engine", "edge"]);
    // What the image binds to, plus the compose TLS mode, must be a mode the console starts in.
    expect(consoleConfig.host).toBe("0.0.0.0");
    expect(checkTlsMode(consoleConfig)).toEqual({ ok: true });
  });

  it("publishes the console's own port", () => {
    const { port } = configOf("console");
    expect(containerPorts(services.console)).toContain(port);
  });

  it("points the healthchecks at the console's and the worker's health endpoints", () => {
    const consoleConfig = configOf("console");
    const consoleUrl = healthcheckUrl(services.console);
    expect(Number(consoleUrl.port || (consoleUrl.protocol === "https:" ? 443 : 80)), "console healthcheck port").toBe(consoleConfig.port);
    expect(consoleUrl.pathname).toBe("/api/v1/health");

    const workerConfig = configOf("worker");
    const workerUrl = healthcheckUrl(services.worker);
    expect(Number(workerUrl.port || 80), "worker healthcheck port").toBe(workerConfig.workerHealthPort);
    expect(workerUrl.hostname, "the worker's health server listens on loopback only").toBe("127.0.0.1");
    expect(workerUrl.pathname).toBe("/health");
  });
});

describe("Dockerfile", () => {
  it("starts from node:24-bookworm-slim", () => {
    const first = dockerfile.find((i) => i.keyword === "FROM");
    const image = first?.args.split(/\s+/).find((w) => !w.startsWith("--"));
    expect(image).toBe("node:24-bookworm-slim");
  });

  it("runs the package's bin through node, with a CLI command as the default", () => {
    const entrypoint = JSON.parse(lastOf("ENTRYPOINT")?.args ?? "null") as string[] | null;
    expect(entrypoint?.[0]).toBe("node");
    const script = entrypoint?.[1];
    expect(path.normalize(script ?? ""), "ENTRYPOINT script").toBe(path.normalize(pkg.bin?.portcullis ?? "(no bin.portcullis)"));
    expect(fs.existsSync(path.join(root, script ?? "missing"))).toBe(true);
    const cmd = JSON.parse(lastOf("CMD")?.args ?? "null") as string[] | null;
    expect(cliCommands()).toContain(cmd?.[0]);
  });

  it("runs only npm scripts that package.json has", () => {
    const runs = dockerfile
      .filter((i) => i.keyword === "RUN")
      .flatMap((i) => [...i.args.matchAll(/\bnpm\s+run(?:-script)?\s+([\w:.-]+)/g)].map((m) => m[1]));
    expect(runs.length, "the image builds the console with an npm script").toBeGreaterThan(0);
    for (const script of runs) expect(Object.keys(pkg.scripts ?? {}), `npm run ${script}`).toContain(script);
  });

  it("runs as the unprivileged node user with its data in /data", () => {
    expect(lastOf("USER")?.args).toBe("node");
    const env = imageEnvironment();
    expect(env.NODE_ENV).toBe("production");
    expect(env.PORTCULLIS_DATA_DIR).toBe("/data");
    for (const key of Object.keys(env).filter((k) => k.startsWith("PORTCULLIS_"))) expect(ENVIRONMENT_VARIABLES, `ENV ${key}`).toContain(key);
  });

  it("gives a `portcullis worker` container the malloc setting that `portcullis serve` gives its worker", () => {
    expect(imageEnvironment().GLIBC_TUNABLES).toBe(workerEnvironment({}).GLIBC_TUNABLES);
  });

  it("exposes the console's default port and health-checks it", () => {
    const defaults = parseConfig({});
    expect(lastOf("EXPOSE")?.args.split(/\s+/).map((p) => Number(p.split("/")[0]))).toContain(defaults.port);
    const healthcheck = lastOf("HEALTHCHECK")?.args ?? "";
    expect(healthcheck).toMatch(/\/api\/v1\/health/);
    expect(healthcheck).toContain(String(defaults.port));
    expect(healthcheck, "no curl in the slim image").not.toMatch(/\bcurl\b|\bwget\b/);
  });
});
