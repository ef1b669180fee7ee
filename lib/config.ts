import net from "node:net";
import path from "node:path";
import { z } from "zod";

// The one typed view of the environment. Every process parses it once, at start.

const boolean = z
  .enum(["true", "false", "1", "0", "yes", "no"], {
    error: "accepted values: true, false",
  })
  .transform((v) => v === "true" || v === "1" || v === "yes");

const port = z.coerce
  .number({ error: "must be a port number between 1 and 65535" })
  .int("must be a whole number between 1 and 65535")
  .min(1, "must be a port number between 1 and 65535")
  .max(65535, "must be a port number between 1 and 65535");

export const TLS_MODES = ["auto", "acme", "provided", "off", "behind_proxy"] as const;
export const WORKER_ROLES = ["engine", "edge"] as const;
export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

export const ACME_DIRECTORY_ALIASES: Record<string, string> = {
  letsencrypt: "https://acme-v02.api.letsencrypt.org/directory",
  "letsencrypt-staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
  zerossl: "https://acme.zerossl.com/v2/DV90",
};

const commaList = z.string().transform((v) =>
  v
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean),
);

/** "1.1.1.1", "1.1.1.1:53", "ns.example.net:5353", "2606:4700::1111", "[2606:4700::1111]:53". */
function isResolverEntry(entry: string): boolean {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+))(?::(\d{1,5}))?$/.exec(entry) ?? (/^[0-9a-fA-F:]+$/.test(entry) && entry.includes(":") ? [entry, entry] : null);
  if (!m) return false;
  const port = m[3] === undefined ? 53 : Number(m[3]);
  return port >= 1 && port <= 65535;
}

/** "10.0.0.1", "10.0.0.0/8", "::1", "fd00::/8". */
function isAddressOrCidr(entry: string): boolean {
  const [address, bits, ...rest] = entry.split("/");
  const family = net.isIP(address);
  if (!family || rest.length) return false;
  if (bits === undefined) return true;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= (family === 4 ? 32 : 128);
}

const databaseUrl = z
  .string()
  .trim()
  .refine((v) => /^(postgres|postgresql):\/\//.test(v) || /^(sqlite|file):/.test(v) || !v.includes("://"), {
    message: "accepted values: postgres://user@host:5432/db, or a SQLite file path (sqlite:/path/portcullis.db)",
  });

const httpUrl = z.url({ protocol: /^https?$/, error: "must be an http:// or https:// URL" });

const envSchema = z
  .object({
    PORTCULLIS_DATA_DIR: z.string().trim().min(1).default("./data"),
    PORTCULLIS_HOST: z.string().trim().min(1).default("127.0.0.1"),
    PORTCULLIS_PORT: port.default(8443),
    PORTCULLIS_PUBLIC_URL: httpUrl.optional(),
    DATABASE_URL: databaseUrl.optional(),
    PORTCULLIS_SECRET: z
      .string()
      .min(32, "must be at least 32 characters (generate one with: openssl rand -base64 32)")
      .optional(),
    // During a key rotation: the secret(s) PORTCULLIS_SECRET replaced, comma-separated; they still open.
    PORTCULLIS_SECRET_PREVIOUS: commaList
      .refine((list) => list.every((s) => s.length >= 32), { message: "each comma-separated secret must be at least 32 characters" })
      .optional(),
    PORTCULLIS_ADMIN_EMAIL: z.email({ error: "must be an email address, like admin@example.com" }).optional(),
    PORTCULLIS_ADMIN_PASSWORD: z.string().min(10, "must be at least 10 characters").optional(),
    PORTCULLIS_TLS_MODE: z
      .enum(TLS_MODES, { error: `accepted values: ${TLS_MODES.join(", ")}` })
      .default("auto"),
    PORTCULLIS_TLS_CERT: z.string().optional(),
    PORTCULLIS_TLS_KEY: z.string().optional(),
    PORTCULLIS_TLS_SANS: commaList.optional(),
    PORTCULLIS_ALLOW_INSECURE_HTTP: boolean.default(false),
    PORTCULLIS_TRUSTED_PROXIES: commaList.optional(),
    PORTCULLIS_ACME_DIRECTORY_URL: z
      .string()
      .trim()
      .default("letsencrypt")
      .transform((v) => ACME_DIRECTORY_ALIASES[v] ?? v)
      .pipe(httpUrl),
    PORTCULLIS_ACME_CA_BUNDLE: z.string().optional(),
    PORTCULLIS_ACME_DOMAIN: z.string().optional(),
    PORTCULLIS_ACME_EMAIL: z.email({ error: "must be an email address" }).optional(),
    PORTCULLIS_DNS_RESOLVERS: commaList
      .refine((list) => list.every(isResolverEntry), { message: "accepted values: comma-separated host or host:port entries, like 1.1.1.1:53,8.8.8.8 or [2606:4700:4700::1111]:53" })
      .optional(),
    PORTCULLIS_CLOUDFLARE_API_URL: httpUrl.optional(),
    PORTCULLIS_WORKER_ROLES: z
      .string()
      .default("engine,edge")
      .transform((v) => v.split(",").map((s) => s.trim()).filter(Boolean))
      .pipe(
        z.array(z.enum(WORKER_ROLES, { error: `accepted values: ${WORKER_ROLES.join(", ")} (comma separated)` })),
      ),
    PORTCULLIS_WORKER_HEALTH_PORT: port.default(8444),
    PORTCULLIS_EDGE_TLS: z.enum(["native", "portable"], { error: "accepted values: native, portable" }).default("native"),
    PORTCULLIS_LOG_LEVEL: z.enum(LOG_LEVELS, { error: `accepted values: ${LOG_LEVELS.join(", ")}` }).default("info"),
    PORTCULLIS_METRICS_TOKEN: z
      .string()
      .trim()
      .min(16, "must be at least 16 characters (generate one with: openssl rand -hex 24)")
      .regex(/^\S+$/, "must not contain spaces")
      .optional(),
    PORTCULLIS_METRICS_ALLOW: commaList
      .refine((list) => list.every(isAddressOrCidr), { message: "accepted values: comma-separated addresses or CIDR ranges, like 127.0.0.1,10.0.0.0/8,::1" })
      .optional(),
  })
  .superRefine((env, ctx) => {
    if (Boolean(env.PORTCULLIS_ADMIN_EMAIL) !== Boolean(env.PORTCULLIS_ADMIN_PASSWORD)) {
      ctx.addIssue({
        code: "custom",
        path: [env.PORTCULLIS_ADMIN_EMAIL ? "PORTCULLIS_ADMIN_PASSWORD" : "PORTCULLIS_ADMIN_EMAIL"],
        message: "set both PORTCULLIS_ADMIN_EMAIL and PORTCULLIS_ADMIN_PASSWORD, or neither",
      });
    }
  });

export type Config = {
  dataDir: string;
  host: string;
  port: number;
  publicUrl?: string;
  database: { kind: "sqlite"; file: string } | { kind: "postgres"; url: string };
  secret?: string;
  /** PORTCULLIS_SECRET_PREVIOUS: older secrets that still open sealed values (key rotation). */
  previousSecrets?: string[];
  admin?: { email: string; password: string };
  tls: {
    mode: (typeof TLS_MODES)[number];
    /** Whether PORTCULLIS_TLS_MODE was set (it then wins over the mode chosen in Settings → TLS). */
    modeFromEnv: boolean;
    certFile?: string;
    keyFile?: string;
    sans: string[];
    allowInsecureHttp: boolean;
    trustedProxies: string[];
  };
  acme: { directoryUrl: string; caBundle?: string; domain?: string; email?: string };
  dnsResolvers: string[];
  cloudflareApiUrl?: string;
  workerRoles: (typeof WORKER_ROLES)[number][];
  workerHealthPort: number;
  /** "portable": the edge terminates TLS with net.Server and tls.TLSSocket even where it could drive Node's TLS stream itself. */
  edgeTls: "native" | "portable";
  logLevel: (typeof LOG_LEVELS)[number];
  /** Who may read /metrics besides API tokens: a bearer token, and addresses that need none. */
  metrics: { token?: string; allow: string[] };
};

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Portcullis cannot start: the environment has ${problems.length === 1 ? "a bad value" : "bad values"}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "ConfigError";
  }
}

export function parseConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable means "not set": shells and compose files often export VAR= .
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    throw new ConfigError(
      parsed.error.issues.map((issue) => {
        const name = String(issue.path[0] ?? "environment");
        const value = present[name];
        const shown = value === undefined || /SECRET|PASSWORD|TOKEN/.test(name) ? "" : ` (got "${value}")`;
        return `${name}${shown}: ${issue.message}`;
      }),
    );
  }
  const e = parsed.data;
  const dataDir = path.resolve(e.PORTCULLIS_DATA_DIR);
  let database: Config["database"];
  if (e.DATABASE_URL && /^postgres(ql)?:\/\//.test(e.DATABASE_URL)) {
    database = { kind: "postgres", url: e.DATABASE_URL };
  } else if (e.DATABASE_URL) {
    database = { kind: "sqlite", file: path.resolve(e.DATABASE_URL.replace(/^(sqlite|file):(\/\/)?/, "")) };
  } else {
    database = { kind: "sqlite", file: path.join(dataDir, "portcullis.db") };
  }
  return {
    dataDir,
    host: e.PORTCULLIS_HOST,
    port: e.PORTCULLIS_PORT,
    publicUrl: e.PORTCULLIS_PUBLIC_URL,
    database,
    secret: e.PORTCULLIS_SECRET,
    previousSecrets: e.PORTCULLIS_SECRET_PREVIOUS ?? [],
    admin:
      e.PORTCULLIS_ADMIN_EMAIL && e.PORTCULLIS_ADMIN_PASSWORD
        ? { email: e.PORTCULLIS_ADMIN_EMAIL.toLowerCase(), password: e.PORTCULLIS_ADMIN_PASSWORD }
        : undefined,
    tls: {
      mode: e.PORTCULLIS_TLS_MODE,
      modeFromEnv: present.PORTCULLIS_TLS_MODE !== undefined,
      certFile: e.PORTCULLIS_TLS_CERT,
      keyFile: e.PORTCULLIS_TLS_KEY,
      sans: e.PORTCULLIS_TLS_SANS ?? [],
      allowInsecureHttp: e.PORTCULLIS_ALLOW_INSECURE_HTTP,
      trustedProxies: e.PORTCULLIS_TRUSTED_PROXIES ?? [],
    },
    acme: {
      directoryUrl: e.PORTCULLIS_ACME_DIRECTORY_URL,
      caBundle: e.PORTCULLIS_ACME_CA_BUNDLE,
      domain: e.PORTCULLIS_ACME_DOMAIN,
      email: e.PORTCULLIS_ACME_EMAIL,
    },
    dnsResolvers: e.PORTCULLIS_DNS_RESOLVERS ?? [],
    cloudflareApiUrl: e.PORTCULLIS_CLOUDFLARE_API_URL,
    workerRoles: e.PORTCULLIS_WORKER_ROLES,
    workerHealthPort: e.PORTCULLIS_WORKER_HEALTH_PORT,
    edgeTls: e.PORTCULLIS_EDGE_TLS,
    logLevel: e.PORTCULLIS_LOG_LEVEL,
    metrics: { token: e.PORTCULLIS_METRICS_TOKEN, allow: e.PORTCULLIS_METRICS_ALLOW ?? [] },
  };
}

/** The variable names this module reads; docker-compose.yml is checked against this list. */
export const ENVIRONMENT_VARIABLES = Object.keys(envSchema.shape) as string[];

let cached: Config | undefined;

export function getConfig(): Config {
  cached ??= parseConfig();
  return cached;
}

/** For entrypoints: parse, or print the problems and exit 2 without a stack trace. */
export function loadConfigOrExit(): Config {
  try {
    return getConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
