import { z } from "zod";
import { acmeNameProblems } from "../acme/certificates";
import { writeAudit, type Actor } from "../audit";
import type { Config } from "../config";
import { TLS_MODES } from "../config";
import type { Keyring } from "../crypto/seal";
import type { Db } from "../db";
import { AppError } from "../errors";
import { recordEvent } from "../events";
import { parseSubjectAltName } from "../pki/names";
import { validateUpload } from "../pki/upload";
import { isLoopbackHost } from "./http";
import { ensureConsoleAcmeCertificate, issueLocalServerCertificate } from "./tls-manager";
import { effectiveTlsMode, getConsoleTlsStatus, getRunningTls, type ConsoleTlsMode, type ConsoleTlsStatus } from "./tls-status";
import {
  ACME_KEY,
  PROVIDED_KEY,
  PROVIDED_KEY_CONTEXT,
  TLS_MODE_KEY,
  readAcmeSettings,
  readProvidedUpload,
  readSetting,
  sealPair,
  writeSetting,
  type AcmeSettings,
} from "./tls-store";

// Settings → TLS changes: validated, stored, applied live where the running process can, audited, and
// announced as a "console.tls_changed" event so open pages refresh.

const updateSchema = z
  .object({
    mode: z.enum(TLS_MODES, { error: `mode must be one of: ${TLS_MODES.join(", ")}` }).optional(),
    acme: z
      .object({
        enabled: z.boolean({ error: "acme.enabled must be true or false" }),
        domain: z.string().trim().max(253, "the domain is at most 253 characters").optional(),
        email: z.union([z.literal(""), z.email({ error: "the email must be an address like admin@example.com" })]).optional(),
        challenge: z.enum(["http-01", "tls-alpn-01"], { error: "challenge must be http-01 or tls-alpn-01" }).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type TlsSettingsUpdate = z.input<typeof updateSchema>;

const uploadSchema = z
  .object({
    certificatePem: z.string({ error: "certificatePem must be the PEM text" }).max(1024 * 1024),
    privateKeyPem: z.string({ error: "privateKeyPem must be the PEM text" }).max(1024 * 1024),
    passphrase: z.string().max(1024).optional(),
  })
  .strict();

function parseOrRefuse<T>(schema: z.ZodType<T>, input: unknown, what: string): T {
  const parsed = schema.safeParse(input);
  if (parsed.success) return parsed.data;
  const fields = z.flattenError(parsed.error).fieldErrors as Record<string, string[]>;
  const first = parsed.error.issues[0];
  const message = first?.code === "unrecognized_keys" ? `unknown field${first.keys.length > 1 ? "s" : ""}: ${first.keys.join(", ")}` : (first?.message ?? "invalid body");
  throw new AppError("validation_failed", `${what}: ${message}`, fields);
}

function lockedMode(config: Config, wanted: ConsoleTlsMode): void {
  if (config.tls.modeFromEnv && config.tls.mode !== wanted) {
    throw new AppError(
      "conflict",
      `the TLS mode is set to ${config.tls.mode} by PORTCULLIS_TLS_MODE in the environment, which wins over this page; change or unset PORTCULLIS_TLS_MODE and restart Portcullis to use ${wanted}`,
    );
  }
}

function checkDomain(domain: string, config: Config): string {
  const parsed = parseSubjectAltName(domain);
  if (!parsed.ok || parsed.entry.type !== "dns" || parsed.entry.value.startsWith("*.")) {
    throw new AppError("validation_failed", `"${domain}" is not a DNS name the console can get a certificate for; give its full name, like console.example.com`, { "acme.domain": ["enter a DNS name like console.example.com"] });
  }
  const problems = acmeNameProblems([parsed.entry.value], "http-01", config.acme.directoryUrl);
  if (problems.length) throw new AppError("validation_failed", problems[0]!, { "acme.domain": problems });
  return parsed.entry.value;
}

async function changed(db: Db, actor: Actor, action: string, message: string, detail: Record<string, unknown>) {
  await writeAudit(db, actor, action, { type: "console_tls", id: null }, detail);
  await recordEvent(db, { type: "console.tls_changed", message, detail });
}

/** Restores the previous settings when applying a change failed, so what is stored matches what is served. */
async function restoring<T>(db: Db, keys: string[], fn: () => Promise<T>): Promise<T> {
  const before = new Map<string, unknown>();
  for (const key of keys) before.set(key, await readSetting(db, key));
  try {
    return await fn();
  } catch (err) {
    for (const [key, value] of before) {
      if (value === undefined) await db.deleteFrom("settings").where("key", "=", key).execute();
      else await writeSetting(db, key, value);
    }
    throw err;
  }
}

export async function updateTlsSettings(db: Db, keyring: Keyring, config: Config, actor: Actor, input: unknown): Promise<ConsoleTlsStatus> {
  const body = parseOrRefuse(updateSchema, input, "the TLS settings were not saved");
  const current = await effectiveTlsMode(db, config);
  let mode: ConsoleTlsMode | undefined = body.mode;
  let acme: AcmeSettings | undefined;

  if (body.acme) {
    const stored: AcmeSettings = (await readAcmeSettings(db)) ?? { enabled: false, domain: null, email: null, certificateId: null };
    const a = body.acme;
    if (a.domain !== undefined && config.acme.domain && a.domain.toLowerCase() !== config.acme.domain.toLowerCase()) {
      throw new AppError("conflict", `the console's domain is set to ${config.acme.domain} by PORTCULLIS_ACME_DOMAIN in the environment; change the variable and restart to use another`);
    }
    if (a.email !== undefined && a.email !== "" && config.acme.email && a.email.toLowerCase() !== config.acme.email.toLowerCase()) {
      throw new AppError("conflict", `the contact email is set to ${config.acme.email} by PORTCULLIS_ACME_EMAIL in the environment; change the variable and restart to use another`);
    }
    const domain = config.acme.domain ?? (a.domain ? checkDomain(a.domain, config) : a.domain === "" ? null : stored.domain);
    const email = config.acme.email ?? (a.email !== undefined ? a.email || null : stored.email);
    acme = { ...stored, enabled: a.enabled, domain, email, challenge: a.challenge ?? stored.challenge };
    if (a.enabled) {
      if (!domain) throw new AppError("validation_failed", "enter the console's domain (the name browsers use to reach it) to enable Let's Encrypt", { "acme.domain": ["enter the console's domain"] });
      if (mode !== undefined && mode !== "acme") throw new AppError("validation_failed", `Let's Encrypt for the console is the acme mode; it cannot be enabled together with mode ${mode}`);
      lockedMode(config, "acme");
      mode = "acme";
    } else if (mode === undefined && current.mode === "acme" && !config.tls.modeFromEnv) {
      mode = "auto"; // turning Let's Encrypt off goes back to the local CA
    }
  }
  if (mode !== undefined) {
    lockedMode(config, mode);
    if (mode === "off" && !isLoopbackHost(config.host) && !config.tls.allowInsecureHttp) {
      throw new AppError("validation_failed", `mode off would serve the console over plain HTTP on ${config.host} after a restart, which Portcullis refuses without PORTCULLIS_ALLOW_INSECURE_HTTP=true; choose behind_proxy if a TLS proxy sits in front`);
    }
    if (mode === "provided" && !config.tls.certFile && !(await readProvidedUpload(db))) {
      throw new AppError("validation_failed", "mode provided needs a certificate: upload the PEM certificate and key below, or set PORTCULLIS_TLS_CERT and PORTCULLIS_TLS_KEY");
    }
    if (mode === "acme" && !acme) {
      const stored = await readAcmeSettings(db);
      if (!config.acme.domain && !stored?.domain) throw new AppError("validation_failed", "mode acme needs the console's domain: enable Let's Encrypt with a domain", { "acme.domain": ["enter the console's domain"] });
    }
  }

  await restoring(db, [TLS_MODE_KEY, ACME_KEY], async () => {
    if (acme) await writeSetting(db, ACME_KEY, acme);
    if (mode !== undefined && !config.tls.modeFromEnv) await writeSetting(db, TLS_MODE_KEY, mode);
    const after = await effectiveTlsMode(db, config);
    // The certificate row exists (and issuance starts in the worker) even while this process still serves HTTP.
    if (after.mode === "acme") await ensureConsoleAcmeCertificate(db, keyring, config);
    await getRunningTls()?.apply();
  });
  const after = await effectiveTlsMode(db, config);
  await changed(db, actor, "console_tls.update", `The console's TLS settings changed: mode ${after.mode}${acme ? `, Let's Encrypt ${acme.enabled ? `on for ${acme.domain}` : "off"}` : ""}.`, {
    mode: after.mode,
    ...(acme ? { acme: { enabled: acme.enabled, domain: acme.domain, email: acme.email } } : {}),
  });
  return getConsoleTlsStatus(db, config);
}

export async function uploadConsoleCertificate(db: Db, keyring: Keyring, config: Config, actor: Actor, input: unknown): Promise<ConsoleTlsStatus> {
  const body = parseOrRefuse(uploadSchema, input, "the certificate was not saved");
  if (config.tls.certFile || config.tls.keyFile) {
    throw new AppError("conflict", `the console's certificate comes from the files in PORTCULLIS_TLS_CERT and PORTCULLIS_TLS_KEY; replace those files (they are reloaded automatically) or unset the variables to upload here`);
  }
  lockedMode(config, "provided");
  let v: ReturnType<typeof validateUpload>;
  try {
    v = validateUpload({ kind: "pem", certificatePem: body.certificatePem, keyPem: body.privateKeyPem, passphrase: body.passphrase || undefined });
  } catch (err) {
    if (!(err instanceof AppError) || !err.fieldErrors) throw err;
    // The body's field names, so that the form can show each message beside its field.
    const names: Record<string, string> = { certificate: "certificatePem", chain: "certificatePem", key: "privateKeyPem", passphrase: "passphrase" };
    const fields: Record<string, string[]> = {};
    for (const [field, messages] of Object.entries(err.fieldErrors)) (fields[names[field] ?? field] ??= []).push(...messages);
    throw new AppError(err.code, err.message, fields);
  }
  await restoring(db, [TLS_MODE_KEY, PROVIDED_KEY], async () => {
    await writeSetting(db, PROVIDED_KEY, sealPair(keyring, { certificatePem: v.chainPem, privateKeyPem: v.privateKeyPem }, PROVIDED_KEY_CONTEXT));
    if (!config.tls.modeFromEnv) await writeSetting(db, TLS_MODE_KEY, "provided");
    await getRunningTls()?.apply();
  });
  await changed(db, actor, "console_tls.upload", `A certificate for the console was uploaded: ${v.facts.subject}, expires ${v.facts.notAfter.toISOString().slice(0, 10)}.`, {
    subject: v.facts.subject,
    fingerprintSha256: v.facts.fingerprintSha256,
    notAfter: v.facts.notAfter.toISOString(),
  });
  return getConsoleTlsStatus(db, config);
}

export async function regenerateConsoleCertificate(db: Db, keyring: Keyring, config: Config, actor: Actor): Promise<ConsoleTlsStatus> {
  const running = getRunningTls();
  if (running) await running.regenerate();
  else await issueLocalServerCertificate(db, keyring, config);
  await changed(db, actor, "console_tls.regenerate", "A new server certificate was issued from the console's local CA.", {});
  return getConsoleTlsStatus(db, config);
}
