import fs from "node:fs";
import type { Command } from "commander";
import type { CertificateDetail, CertificateSummary } from "../lib/certificates";
import type { Db } from "../lib/db";
import type { UploadInput } from "../lib/pki/upload";
import { confirm, withDatabase } from "./context";
import { dash, printFields, printJson, printList, UsageError, warn, wholeNumber } from "./output";

const STATUSES = ["pending", "requesting", "active", "renewing", "failed", "expired"] as const;
const SOURCES = ["acme", "upload", "file", "self_signed", "local_ca"] as const;
// A certificate file is at most 1 MiB (lib/pki/upload.ts); a much larger one is the wrong file, not read.
const MAX_READ_BYTES = 2 * 1024 * 1024;

/** The CLI's one "not found" wording for certificates, exit code 3. */
export async function findCertificate(db: Db, idOrName: string): Promise<CertificateDetail> {
  const { getCertificate } = await import("../lib/certificates");
  const { AppError } = await import("../lib/errors");
  const found = await getCertificate(db, idOrName);
  if (!found) throw new AppError("not_found", `no certificate named or with id "${idOrName}"; list them with: portcullis cert list`);
  return found;
}

function checkOneOf<T extends string>(name: string, values: readonly T[], value: string | undefined): T | undefined {
  if (value === undefined) return undefined;
  if ((values as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`${name} must be one of: ${values.join(", ")} (got "${value}")`);
}

async function listAllCertificates(db: Db, status?: (typeof STATUSES)[number]): Promise<CertificateSummary[]> {
  const { listCertificates } = await import("../lib/certificates");
  const all: CertificateSummary[] = [];
  let cursor: string | undefined;
  do {
    const page = await listCertificates(db, { limit: 200, cursor, status });
    all.push(...page.items);
    cursor = page.nextCursor ?? undefined;
  } while (cursor);
  return all;
}

type CertificateMapping = { listenerId: string; listenerName: string; listenerEnabled: boolean; hostname: string };

/** Where a certificate is served: its SNI mappings, and the listeners that use it as their default. */
async function placementsOf(db: Db, certificateId: string) {
  const { listListeners, listMappings } = await import("../lib/listeners");
  const mappings: CertificateMapping[] = [];
  const defaultOn: { listenerId: string; listenerName: string }[] = [];
  for (const l of await listListeners(db)) {
    if (l.kind !== "https") continue;
    for (const m of await listMappings(db, l.id)) {
      if (m.certificateId === certificateId) mappings.push({ listenerId: l.id, listenerName: l.name, listenerEnabled: l.enabled, hostname: m.hostname });
    }
    if (l.defaultCertificateId === certificateId) defaultOn.push({ listenerId: l.id, listenerName: l.name });
  }
  return { mappings, defaultOn };
}

type ReadFile = { path: string; flag: string };

function readInputFile(file: ReadFile, encoding: "utf8"): string;
function readInputFile(file: ReadFile): Buffer;
function readInputFile(file: ReadFile, encoding?: "utf8"): string | Buffer {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file.path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new FileProblem(file, code === "ENOENT" ? "the file does not exist" : code === "EACCES" ? "the file cannot be read (permission denied)" : `the file cannot be read (${code})`);
  }
  if (!stat.isFile()) throw new FileProblem(file, "this is not a file");
  if (stat.size > MAX_READ_BYTES) throw new FileProblem(file, `the file is ${(stat.size / 1024 / 1024).toFixed(1)} MiB; a certificate file is at most 1 MiB, so check that you chose the right file`);
  try {
    return encoding ? fs.readFileSync(file.path, encoding) : fs.readFileSync(file.path);
  } catch (err) {
    throw new FileProblem(file, `the file cannot be read (${(err as NodeJS.ErrnoException).code})`);
  }
}

class FileProblem extends Error {
  constructor(
    readonly file: ReadFile,
    readonly problem: string,
  ) {
    super(`${file.flag} ${file.path}: ${problem}`);
  }
}

function secretFromEnv(flag: string, variable: string | undefined): string | undefined {
  if (variable === undefined) return undefined;
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(variable)) throw new UsageError(`${flag} takes the name of an environment variable, like ${flag} KEY_PASSPHRASE`);
  const value = process.env[variable];
  if (value === undefined) throw new UsageError(`${flag} ${variable}: the environment variable ${variable} is not set`);
  return value;
}

type ImportOptions = {
  cert?: string;
  key?: string;
  chain?: string;
  p12?: string;
  passwordEnv?: string;
  passphraseEnv?: string;
  name?: string;
  into?: string;
  json?: boolean;
};

/** Reads the files named on the command line into the upload validator's input; file problems exit 1. */
function readImport(opts: ImportOptions): { upload: UploadInput; labels: Record<string, string> } {
  if (opts.p12 && (opts.cert || opts.key || opts.chain)) throw new UsageError("give either --p12 FILE, or --cert FILE and --key FILE, not both");
  if (opts.p12 && opts.passphraseEnv) throw new UsageError("--passphrase-env is for an encrypted PEM key; a PKCS#12 file's password is given with --password-env");
  if (!opts.p12 && opts.passwordEnv) throw new UsageError("--password-env is for a PKCS#12 file (--p12); an encrypted PEM key's passphrase is given with --passphrase-env");
  if (opts.name !== undefined && opts.into !== undefined) throw new UsageError("--name names a new certificate; --into adds a version to an existing one: use one of them");
  if (opts.p12) {
    const file = { path: opts.p12, flag: "--p12" };
    const password = secretFromEnv("--password-env", opts.passwordEnv) ?? "";
    return {
      upload: { kind: "pkcs12", data: readInputFile(file), password },
      labels: { file: `--p12 ${opts.p12}`, password: opts.passwordEnv ? `--password-env ${opts.passwordEnv}` : "--password-env (not given)" },
    };
  }
  if (!opts.cert || !opts.key) {
    throw new UsageError("give the certificate and its private key: --cert FILE --key FILE [--chain FILE], or a PKCS#12 file: --p12 FILE --password-env VAR");
  }
  const passphrase = secretFromEnv("--passphrase-env", opts.passphraseEnv);
  const certificatePem = readInputFile({ path: opts.cert, flag: "--cert" }, "utf8");
  const keyPem = readInputFile({ path: opts.key, flag: "--key" }, "utf8");
  const chainPem = opts.chain ? readInputFile({ path: opts.chain, flag: "--chain" }, "utf8") : undefined;
  return {
    upload: { kind: "pem", certificatePem, keyPem, chainPem, passphrase },
    labels: {
      certificate: `--cert ${opts.cert}`,
      key: `--key ${opts.key}`,
      chain: opts.chain ? `--chain ${opts.chain}` : "--chain",
      passphrase: opts.passphraseEnv ? `--passphrase-env ${opts.passphraseEnv}` : "--passphrase-env (not given)",
    },
  };
}

function printCertificate(cert: CertificateDetail, placements: Awaited<ReturnType<typeof placementsOf>>, relativeTime: (iso: string | null) => string) {
  const fields: [string, string][] = [
    ["ID", cert.id],
    ["Name", cert.name],
    ["Status", cert.status],
    ["Source", cert.source],
    ["Names", cert.domains.join(", ") || "—"],
    ["Subject", dash(cert.subject)],
    ["Issuer", dash(cert.issuer)],
    ["Serial", dash(cert.serial)],
    ["SHA-256", dash(cert.fingerprintSha256)],
    ["Not before", dash(cert.notBefore)],
    ["Not after", cert.notAfter ? `${cert.notAfter} (${relativeTime(cert.notAfter)})` : "—"],
    ["Key type", cert.keyType],
    ["Renewal", cert.renewAt ? `${cert.renewAt} (${relativeTime(cert.renewAt)}): ${cert.renewReason ?? ""}` : dash(cert.renewReason)],
  ];
  if (cert.acme) {
    fields.push(["CA", dash(cert.acme.caName ?? cert.acme.directoryUrl)], ["Challenge", dash(cert.acme.challenge)]);
    if (cert.acme.renewalWindow) fields.push(["ARI window", `${cert.acme.renewalWindow.start} – ${cert.acme.renewalWindow.end}`]);
    if (cert.acme.step) fields.push(["Order step", cert.acme.step]);
  }
  if (cert.lastError) fields.push(["Last error", cert.lastError], ["Next try", cert.nextAttemptAt ? `${cert.nextAttemptAt} (${relativeTime(cert.nextAttemptAt)})` : "—"]);
  else if (cert.nextAttemptAt) fields.push(["Next attempt", `${cert.nextAttemptAt} (${relativeTime(cert.nextAttemptAt)})`]);
  fields.push(["Versions", String(cert.versions.length)]);
  for (const v of cert.versions) fields.push([`  v${v.version}`, `${v.createdAt}  ${v.fingerprintSha256.slice(0, 23)}…  until ${v.notAfter.slice(0, 10)}  ${v.reason}`]);
  const served = [
    ...placements.mappings.map((m) => `${m.listenerName} (${m.listenerId}): ${m.hostname}${m.listenerEnabled ? "" : "  (listener disabled)"}`),
    ...placements.defaultOn.map((d) => `${d.listenerName} (${d.listenerId}): default certificate`),
  ];
  if (!served.length) served.push(`no listener; serve it with: portcullis listener map <listener> ${cert.id}`);
  served.forEach((line, i) => fields.push([i === 0 ? "Served on" : "", line]));
  printFields(fields);
}

export function addCertCommands(program: Command) {
  const cert = program.command("cert").description("list, inspect, import, renew and delete certificates");

  cert
    .command("list")
    .description("list certificates, newest first")
    .option("--status <status>", `only this status: ${STATUSES.join(", ")}`)
    .option("--source <source>", `only this source: ${SOURCES.join(", ")}`)
    .option("--expiring-within <days>", "only certificates that expire within this many days (expired ones included)", wholeNumber("--expiring-within", 0, 36_500))
    .option("--limit <n>", "at most this many", wholeNumber("--limit", 1, 1_000_000))
    .option("--json", "print a JSON array")
    .action(async (opts: { status?: string; source?: string; expiringWithin?: number; limit?: number; json?: boolean }) => {
      const status = checkOneOf("--status", STATUSES, opts.status);
      const source = checkOneOf("--source", SOURCES, opts.source);
      const { relativeTime } = await import("../lib/format");
      let items = await withDatabase(({ db }) => listAllCertificates(db, status));
      if (source) items = items.filter((c) => c.source === source);
      if (opts.expiringWithin !== undefined) {
        const limit = Date.now() + opts.expiringWithin * 86_400_000;
        items = items.filter((c) => c.notAfter !== null && Date.parse(c.notAfter) <= limit);
      }
      if (opts.limit !== undefined) items = items.slice(0, opts.limit);
      printList(items, opts.json, "no certificates", ["ID", "NAME", "STATUS", "SOURCE", "EXPIRES", "NAMES"], (c) => [c.id, c.name, c.status, c.source, relativeTime(c.notAfter), c.domains.join(",")]);
    });

  cert
    .command("info <idOrName>")
    .description("show one certificate: details, versions, where it is served, its renewal plan")
    .option("--json", "print JSON")
    .action(async (idOrName: string, opts: { json?: boolean }) => {
      const { relativeTime } = await import("../lib/format");
      const { found, placements } = await withDatabase(async ({ db }) => {
        const found = await findCertificate(db, idOrName);
        return { found, placements: await placementsOf(db, found.id) };
      });
      if (opts.json) return printJson({ ...found, ...placements });
      printCertificate(found, placements, (iso) => relativeTime(iso));
    });

  cert
    .command("import")
    .description("import a certificate and its private key (PEM files or a PKCS#12 file), checked like an upload in the console")
    .option("--cert <file>", "the certificate PEM, leaf first (a full chain is fine)")
    .option("--key <file>", "the private key PEM (PKCS#8, PKCS#1, SEC1; encrypted PKCS#8 with --passphrase-env)")
    .option("--chain <file>", "the intermediate certificates, when not in --cert")
    .option("--passphrase-env <var>", "the environment variable holding the key's passphrase")
    .option("--p12 <file>", "a PKCS#12 (.p12/.pfx) file instead of --cert and --key")
    .option("--password-env <var>", "the environment variable holding the PKCS#12 password")
    .option("--name <name>", "the new certificate's name (default: its first DNS name)")
    .option("--into <idOrName>", "add the files as a new version of this uploaded certificate instead")
    .option("--json", "print the certificate as JSON")
    .addHelpText("after", "\nNothing is saved unless every check passes: the leaf comes first, each chain certificate signs\nthe one before it, the key matches, nothing has expired. A certificate that expires within 30 days\nis imported with a warning on standard error.\n\nExamples:\n  portcullis cert import --cert fullchain.pem --key privkey.pem\n  KEY_PASS=… portcullis cert import --cert cert.pem --chain chain.pem --key key.pem --passphrase-env KEY_PASS\n  P12_PASS=… portcullis cert import --p12 bundle.p12 --password-env P12_PASS --into www")
    .action(async (opts: ImportOptions) => {
      let read: ReturnType<typeof readImport>;
      try {
        read = readImport(opts);
      } catch (err) {
        if (!(err instanceof FileProblem)) throw err;
        const { AppError } = await import("../lib/errors");
        throw new AppError("validation_failed", `the certificate was not imported: ${err.message}`);
      }
      const { AppError } = await import("../lib/errors");
      const result = await withDatabase(async ({ db, keyring }) => {
        const { addCertificateVersion, createImportedCertificate } = await import("../lib/certificates/imported");
        try {
          if (opts.into !== undefined) {
            const target = await findCertificate(db, opts.into);
            return await addCertificateVersion(db, keyring, (await import("../lib/audit")).CLI_ACTOR, target.id, read.upload, "new version uploaded");
          }
          const name = opts.name?.trim() || undefined;
          return await createImportedCertificate(db, keyring, (await import("../lib/audit")).CLI_ACTOR, { name, upload: read.upload });
        } catch (err) {
          // The validator names fields as the console's form does; here they are files and options.
          if (err instanceof AppError && err.code === "validation_failed" && err.fieldErrors) {
            const lines = Object.entries(err.fieldErrors).map(([field, messages]) => `${read.labels[field] ?? field}: ${messages.join("; ")}`);
            throw new AppError("validation_failed", `the certificate was not imported:\n  ${lines.join("\n  ")}`);
          }
          throw err;
        }
      });
      for (const w of result.warnings) warn(w);
      const c = result.certificate;
      if (opts.json) return printJson({ ...c, warnings: result.warnings });
      const version = c.versions[0]?.version ?? 1;
      process.stdout.write(
        opts.into !== undefined
          ? `added version ${version} to ${c.name} (${c.id}): ${c.domains.join(", ")}, valid until ${dash(c.notAfter)}\n`
          : `imported ${c.name} (${c.id}): ${c.domains.join(", ")}, valid until ${dash(c.notAfter)}\nserve it with: portcullis listener map <listener> ${c.id}\n`,
      );
    });

  cert
    .command("renew <idOrName>")
    .description("renew an ACME certificate now (or retry a failed one); the worker acts within a second")
    .option("--force", "send the order even if the Let's Encrypt rate-limit ledger refuses it")
    .option("--json", "print JSON")
    .action(async (idOrName: string, opts: { force?: boolean; json?: boolean }) => {
      const updated = await withDatabase(async ({ db }) => {
        const target = await findCertificate(db, idOrName);
        const { requestRenewal } = await import("../lib/acme/certificates");
        const { CLI_ACTOR } = await import("../lib/audit");
        return requestRenewal(db, CLI_ACTOR, target.id, { force: opts.force });
      });
      if (opts.json) return printJson({ id: updated.id, name: updated.name, status: updated.status, nextAttemptAt: updated.nextAttemptAt });
      process.stdout.write(`renewal of ${updated.name} (${updated.id}) requested; follow it with: portcullis events --follow --certificate ${updated.id}\n`);
    });

  cert
    .command("delete <idOrName>")
    .description("delete a certificate, its versions and its mappings (listeners stop serving it)")
    .option("--yes", "do not ask; required when there is no terminal to ask on")
    .option("--json", "print JSON")
    .action(async (idOrName: string, opts: { yes?: boolean; json?: boolean }) => {
      const deleted = await withDatabase(async ({ db }) => {
        const target = await findCertificate(db, idOrName);
        const placements = await placementsOf(db, target.id);
        const served = [
          ...placements.mappings.map((m) => `${m.hostname} on ${m.listenerName}`),
          ...placements.defaultOn.map((d) => `the default of ${d.listenerName}`),
        ];
        if (!opts.yes) {
          const what = `delete certificate ${target.name} (${target.id})${served.length ? `, served as ${served.join(", ")}` : ""}?`;
          if (!process.stdin.isTTY) throw new UsageError(`add --yes to ${what.slice(0, -1)}`);
          if (!(await confirm(what[0]!.toUpperCase() + what.slice(1)))) throw new UsageError("not deleted");
        }
        const { deleteCertificate } = await import("../lib/certificates");
        const { CLI_ACTOR } = await import("../lib/audit");
        await deleteCertificate(db, CLI_ACTOR, target.id);
        return { id: target.id, name: target.name, unmapped: placements.mappings.map((m) => ({ listenerId: m.listenerId, hostname: m.hostname })) };
      });
      if (opts.json) return printJson({ deleted: deleted.id, name: deleted.name, unmapped: deleted.unmapped });
      process.stdout.write(`deleted ${deleted.name} (${deleted.id})${deleted.unmapped.length ? `; removed ${deleted.unmapped.length} mapping(s)` : ""}\n`);
    });

  return cert;
}
