import type { Command } from "commander";
import type { Db } from "../lib/db";
import type { ListenerView, MappingView } from "../lib/listeners";
import { unverifiedUpstream } from "../lib/listeners/unverified";
import { findCertificate } from "./cert";
import { confirm, withDatabase } from "./context";
import { collect, dash, printFields, printJson, printTable, UsageError, warn } from "./output";

/** A listener by id or by name, or exit code 3. */
async function findListener(db: Db, idOrName: string): Promise<ListenerView> {
  const { getListener, listListeners } = await import("../lib/listeners");
  const byId = await getListener(db, idOrName);
  if (byId) return byId;
  const byName = (await listListeners(db)).find((l) => l.name === idOrName);
  if (byName) return byName;
  const { AppError } = await import("../lib/errors");
  throw new AppError("not_found", `no listener named or with id "${idOrName}"; list them with: portcullis listener list`);
}

function describeTarget(l: ListenerView) {
  if (l.kind === "https" || l.httpAction === "proxy") return `→ ${l.upstreamUrl}${unverifiedUpstream(l) ? " (certificate not verified)" : ""}`;
  return `→ redirect to https (:${l.redirectPort})`;
}

function mappingLine(m: MappingView) {
  return `${m.hostname} → ${m.certificateName}${m.warnings.length ? `  ! ${m.warnings.join("; ")}` : ""}`;
}

/** A hostname as the mappings store it (lower case, no trailing dot), so that `unmap` finds it. */
async function normalizeHostname(hostname: string): Promise<string> {
  const { parseSubjectAltName } = await import("../lib/pki/names");
  const parsed = parseSubjectAltName(hostname);
  return parsed.ok ? parsed.entry.value : hostname.trim().toLowerCase();
}

export function addListenerCommands(program: Command) {
  const listener = program.command("listener").description("create, change and inspect listeners, and map certificates to their names");

  listener
    .command("list")
    .description("list listeners and their mappings")
    .option("--json", "print a JSON array")
    .action(async (opts: { json?: boolean }) => {
      const rows = await withDatabase(async ({ db }) => {
        const { listListeners, listMappings } = await import("../lib/listeners");
        return Promise.all((await listListeners(db)).map(async (l) => ({ ...l, mappings: await listMappings(db, l.id) })));
      });
      if (opts.json) return printJson(rows);
      if (!rows.length) return void process.stdout.write("no listeners\n");
      const lines: string[] = [];
      for (const l of rows) {
        lines.push(`${l.id}  ${l.name}  ${l.kind}://${l.bindAddress}:${l.port}  ${describeTarget(l)}${l.enabled ? "" : "  (disabled)"}`);
        for (const m of l.mappings) lines.push(`    ${mappingLine(m)}`);
      }
      process.stdout.write(`${lines.join("\n")}\n`);
    });

  listener
    .command("info <idOrName>")
    .description("show one listener: settings, mappings, and what the edge last saw it serve")
    .option("--json", "print JSON")
    .action(async (idOrName: string, opts: { json?: boolean }) => {
      const view = await withDatabase(async ({ db }) => {
        const { checkView, listChecks, listMappings, listenerBindProblem } = await import("../lib/listeners");
        const l = await findListener(db, idOrName);
        const checks = await listChecks(db, l.id);
        return {
          ...l,
          mappings: await listMappings(db, l.id),
          bindProblem: await listenerBindProblem(db, l.id),
          // The same shape as GET /api/v1/listeners/{id}.
          checks: checks.map(checkView),
        };
      });
      if (opts.json) return printJson(view);
      printFields([
        ["ID", view.id],
        ["Name", view.name],
        ["Address", `${view.kind}://${view.bindAddress}:${view.port}  ${describeTarget(view)}`],
        ["Enabled", view.enabled ? "yes" : "no"],
        ...(view.kind === "https"
          ? ([
              ["Minimum TLS", view.minTlsVersion],
              ["Default cert", dash(view.defaultCertificateId)],
              ["Fallback", view.fallbackPolicy === "refuse" ? "refuse unknown names" : "self-signed certificate for unknown names"],
            ] as [string, string][])
          : []),
        ...(view.bindProblem ? ([["Problem", `${view.bindProblem.message} (${view.bindProblem.at})`]] as [string, string][]) : []),
      ]);
      if (view.kind !== "https") return;
      if (!view.mappings.length) {
        process.stdout.write(`\nno mappings; add one with: portcullis listener map ${view.name} <certificate>\n`);
        return;
      }
      const checkFor = new Map(view.checks.map((c) => [c.hostname, c]));
      process.stdout.write("\n");
      printTable(
        ["HOSTNAME", "CERTIFICATE", "STATUS", "SERVED", "CHECKED", "WARNINGS"],
        view.mappings.map((m) => {
          const check = checkFor.get(m.hostname);
          return [m.hostname, m.certificateName, m.certificateStatus, check ? check.status : "not checked yet", dash(check?.checkedAt), [...m.warnings, ...(check?.detail && check.status !== "serving" ? [check.detail] : [])].join("; ")];
        }),
      );
    });

  listener
    .command("map <listener> <certificate>")
    .description("serve a certificate on an HTTPS listener: every DNS name it covers (like \"Serve on\" in the console), or the names given")
    .option("--hostname <name>", "map only this name (repeat for more); replaces an earlier mapping of the name", collect)
    .option("--json", "print the listener's mappings as JSON")
    .action(async (listenerRef: string, certificateRef: string, opts: { hostname?: string[]; json?: boolean }) => {
      const result = await withDatabase(async ({ db }) => {
        const { serveCertificateOnListener, setMappings } = await import("../lib/listeners");
        const { CLI_ACTOR } = await import("../lib/audit");
        const l = await findListener(db, listenerRef);
        const cert = await findCertificate(db, certificateRef);
        if (!opts.hostname?.length) {
          const served = await serveCertificateOnListener(db, CLI_ACTOR, l.id, cert.id);
          if (!served.mapped.length) {
            const { AppError } = await import("../lib/errors");
            throw new AppError("validation_failed", `nothing was mapped on "${l.name}": certificate "${cert.name}" has no DNS names; give names with --hostname, or make it the listener's default certificate`);
          }
          return { listener: l, certificate: cert, ...served };
        }
        // The names given replace their earlier mappings and leave the others, as "Serve on" does.
        const { listMappings } = await import("../lib/listeners");
        const wanted = opts.hostname.map((h) => ({ raw: h, hostname: h }));
        for (const w of wanted) w.hostname = await normalizeHostname(w.raw);
        const names = new Set(wanted.map((w) => w.hostname));
        const kept = (await listMappings(db, l.id)).filter((m) => !names.has(m.hostname)).map((m) => ({ hostname: m.hostname, certificateId: m.certificateId }));
        const saved = await setMappings(db, CLI_ACTOR, l.id, { mappings: [...kept, ...wanted.map((w) => ({ hostname: w.raw, certificateId: cert.id }))] });
        return { listener: l, certificate: cert, ...saved, mapped: [...names] };
      });
      const mapped = new Set(result.mapped);
      const warnings = result.warnings.filter((w) => result.mapped.some((name) => w.startsWith(`${name}: `)));
      for (const w of warnings) warn(w);
      if (opts.json) {
        return printJson({ listenerId: result.listener.id, certificateId: result.certificate.id, mapped: result.mapped, warnings, mappings: result.mappings });
      }
      process.stdout.write(`serving ${result.certificate.name} on ${result.listener.name}: ${result.mappings.filter((m) => mapped.has(m.hostname)).map((m) => m.hostname).join(", ")}\n`);
    });

  listener
    .command("unmap <listener> <hostname>")
    .description("stop serving a name on a listener (clients asking for it get the listener's fallback)")
    .option("--json", "print JSON")
    .action(async (listenerRef: string, hostname: string, opts: { json?: boolean }) => {
      const removed = await withDatabase(async ({ db }) => {
        const { removeMapping } = await import("../lib/listeners");
        const { CLI_ACTOR } = await import("../lib/audit");
        const { AppError } = await import("../lib/errors");
        const l = await findListener(db, listenerRef);
        const name = await normalizeHostname(hostname);
        try {
          await removeMapping(db, CLI_ACTOR, l.id, name);
        } catch (err) {
          if (err instanceof AppError && err.code === "not_found") throw new AppError("not_found", `listener "${l.name}" has no mapping for ${name}`);
          throw err;
        }
        return { listenerId: l.id, listenerName: l.name, hostname: name };
      });
      if (opts.json) return printJson({ listenerId: removed.listenerId, unmapped: removed.hostname });
      process.stdout.write(`${removed.hostname} is no longer mapped on ${removed.listenerName}\n`);
    });

  addListenerEditCommands(listener);
  return listener;
}

type ListenerOptions = {
  name?: string;
  kind?: string;
  bind?: string;
  port?: string;
  upstream?: string;
  verifyUpstream?: string;
  minTls?: string;
  defaultCert?: string;
  fallback?: string;
  httpAction?: string;
  redirectPort?: string;
  disabled?: boolean;
  json?: boolean;
};

/** "on" / "off" (yes / no, true / false) as a boolean; anything else goes to the library as given, which names what it accepts. */
function onOff(value: string): boolean | string {
  const v = value.trim().toLowerCase();
  if (["on", "yes", "true"].includes(v)) return true;
  if (["off", "no", "false"].includes(v)) return false;
  return value;
}

/** "1.2" → "TLSv1.2"; anything else goes to the library as given, which names what it accepts. */
function tlsVersion(value: string): string {
  return /^(tlsv?)?1\.[23]$/i.test(value.trim()) ? `TLSv${value.trim().slice(-3)}` : value;
}

/** The API's listener body from the options given (only those: `update` merges them over the current listener). */
async function listenerFields(db: Db, opts: ListenerOptions): Promise<Record<string, unknown>> {
  const fields: Record<string, unknown> = {};
  if (opts.name !== undefined) fields.name = opts.name;
  if (opts.kind !== undefined) fields.kind = opts.kind;
  if (opts.bind !== undefined) fields.bindAddress = opts.bind;
  if (opts.port !== undefined) fields.port = opts.port;
  if (opts.upstream !== undefined) fields.upstreamUrl = opts.upstream;
  if (opts.verifyUpstream !== undefined) fields.upstreamTlsVerify = onOff(opts.verifyUpstream);
  if (opts.minTls !== undefined) fields.minTlsVersion = tlsVersion(opts.minTls);
  if (opts.defaultCert !== undefined) fields.defaultCertificateId = opts.defaultCert === "" || opts.defaultCert === "none" ? null : (await findCertificate(db, opts.defaultCert)).id;
  if (opts.fallback !== undefined) fields.fallbackPolicy = opts.fallback;
  if (opts.httpAction !== undefined) fields.httpAction = opts.httpAction;
  if (opts.redirectPort !== undefined) fields.redirectPort = opts.redirectPort;
  if (opts.disabled) fields.enabled = false;
  return fields;
}

/** The PUT body that keeps every current setting: the API replaces them all. */
function currentFields(l: ListenerView): Record<string, unknown> {
  return {
    name: l.name,
    kind: l.kind,
    bindAddress: l.bindAddress,
    port: l.port,
    upstreamUrl: l.upstreamUrl,
    upstreamTlsVerify: l.upstreamTlsVerify,
    minTlsVersion: l.minTlsVersion,
    defaultCertificateId: l.defaultCertificateId,
    fallbackPolicy: l.fallbackPolicy,
    httpAction: l.httpAction ?? "redirect",
    redirectPort: l.redirectPort ?? 443,
    enabled: l.enabled,
  };
}

function printSaved(verb: string, l: ListenerView, json?: boolean) {
  if (json) return printJson(l);
  process.stdout.write(`${verb} listener ${l.name} (${l.id}): ${l.kind}://${l.bindAddress}:${l.port}  ${describeTarget(l)}${l.enabled ? "" : "  (disabled)"}\n`);
}

function withListenerOptions(command: Command, creating: boolean) {
  if (creating) command.requiredOption("--name <name>", "the listener's name");
  else command.option("--name <name>", "a new name");
  return command
    .option("--kind <kind>", creating ? "https (serves certificates by SNI name) or http (redirects to HTTPS or proxies)" : "https or http (cannot change; shown for symmetry with create)")
    .option("--bind <address>", creating ? "the IP address to listen on (default 0.0.0.0: every IPv4 address; :: for every address)" : "the IP address to listen on")
    .option("--port <port>", "the port to listen on, 1 to 65535")
    .option("--upstream <url>", "where requests go, like http://127.0.0.1:3000 (HTTPS listeners, and HTTP ones with --http-action proxy)")
    .option("--verify-upstream <on|off>", "for an https:// upstream: on checks its certificate (the default), off accepts any (a self-signed upstream)")
    .option("--min-tls <version>", "HTTPS: the oldest TLS version accepted, 1.2 or 1.3 (default 1.2)")
    .option("--default-cert <certificate>", "HTTPS: the certificate (id or name) for clients that send no known name; \"none\" to clear")
    .option("--fallback <policy>", "HTTPS: for unknown names, self_signed (serve a self-signed certificate) or refuse (default self_signed)")
    .option("--http-action <action>", "HTTP: redirect (to HTTPS) or proxy (to --upstream) (default redirect)")
    .option("--redirect-port <port>", "HTTP: the HTTPS port redirects point to (default 443)")
    .option("--disabled", creating ? "save it without opening the port" : "stop serving (like `listener disable`)")
    .option("--json", "print the listener as JSON");
}

function addListenerEditCommands(listener: Command) {
  withListenerOptions(listener.command("create").description("add a listener (checks the port can be opened; the worker's edge starts serving it)"), true)
    .addHelpText("after", "\nExamples:\n  portcullis listener create --name public --kind https --bind 0.0.0.0 --port 443 --upstream http://127.0.0.1:3000\n  portcullis listener create --name redirect --kind http --port 80")
    .action(async (opts: ListenerOptions) => {
      if (opts.kind === undefined) throw new UsageError("give the listener's kind: --kind https or --kind http");
      if (opts.port === undefined) throw new UsageError("give the port to listen on: --port 443");
      const created = await withDatabase(async ({ db }) => {
        const { createListener } = await import("../lib/listeners");
        const { CLI_ACTOR } = await import("../lib/audit");
        return createListener(db, CLI_ACTOR, await listenerFields(db, opts));
      });
      printSaved("created", created, opts.json);
    });

  withListenerOptions(listener.command("update <listener>").description("change a listener's settings (only the options given; the others are kept)"), false).action(
    async (listenerRef: string, opts: ListenerOptions) => {
      const { json: _json, ...given } = opts;
      if (!Object.values(given).some((v) => v !== undefined)) throw new UsageError("nothing to change: give at least one option, like --port 8443 (see --help)");
      const updated = await withDatabase(async ({ db }) => {
        const { updateListener } = await import("../lib/listeners");
        const { CLI_ACTOR } = await import("../lib/audit");
        const l = await findListener(db, listenerRef);
        return updateListener(db, CLI_ACTOR, l.id, { ...currentFields(l), ...(await listenerFields(db, opts)) });
      });
      printSaved("updated", updated, opts.json);
    },
  );

  for (const [verb, enabled] of [["enable", true], ["disable", false]] as const) {
    listener
      .command(`${verb} <listener>`)
      .description(enabled ? "start serving a disabled listener (checks the port can be opened)" : "stop serving a listener, keeping its settings and mappings")
      .option("--json", "print the listener as JSON")
      .action(async (listenerRef: string, opts: { json?: boolean }) => {
        const saved = await withDatabase(async ({ db }) => {
          const { updateListener } = await import("../lib/listeners");
          const { CLI_ACTOR } = await import("../lib/audit");
          const l = await findListener(db, listenerRef);
          return updateListener(db, CLI_ACTOR, l.id, { ...currentFields(l), enabled });
        });
        printSaved(enabled ? "enabled" : "disabled", saved, opts.json);
      });
  }

  listener
    .command("delete <listener>")
    .description("delete a listener and its mappings (the edge stops serving its port)")
    .option("--yes", "do not ask; required when there is no terminal to ask on")
    .option("--json", "print JSON")
    .action(async (listenerRef: string, opts: { yes?: boolean; json?: boolean }) => {
      const deleted = await withDatabase(async ({ db }) => {
        const { deleteListener, listMappings } = await import("../lib/listeners");
        const { CLI_ACTOR } = await import("../lib/audit");
        const l = await findListener(db, listenerRef);
        if (!opts.yes) {
          const mappings = await listMappings(db, l.id);
          const what = `delete listener ${l.name} (${l.id}, ${l.kind}://${l.bindAddress}:${l.port})${mappings.length ? ` and its ${mappings.length} mapping(s)` : ""}?`;
          if (!process.stdin.isTTY) throw new UsageError(`add --yes to ${what.slice(0, -1)}`);
          if (!(await confirm(what[0]!.toUpperCase() + what.slice(1)))) throw new UsageError("not deleted");
        }
        return deleteListener(db, CLI_ACTOR, l.id);
      });
      if (opts.json) return printJson({ deleted: deleted.id, name: deleted.name });
      process.stdout.write(`deleted listener ${deleted.name} (${deleted.id})\n`);
    });
}
