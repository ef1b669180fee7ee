import type { Command } from "commander";
import type { Db } from "../lib/db";
import type { ListenerView, MappingView } from "../lib/listeners";
import { findCertificate } from "./cert";
import { withDatabase } from "./context";
import { collect, dash, printFields, printJson, printTable, warn } from "./output";

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
  if (l.kind === "https" || l.httpAction === "proxy") return `→ ${l.upstreamUrl}`;
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
  const listener = program.command("listener").description("inspect listeners and map certificates to their names");

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
        const { listChecks, listMappings, listenerBindProblem } = await import("../lib/listeners");
        const l = await findListener(db, idOrName);
        const checks = await listChecks(db, l.id);
        return {
          ...l,
          mappings: await listMappings(db, l.id),
          bindProblem: await listenerBindProblem(db, l.id),
          // The same shape as GET /api/v1/listeners/{id}.
          checks: checks.map((c) => ({
            hostname: c.hostname,
            status: c.status,
            checkedAt: c.checked_at,
            expectedFingerprint: c.expected_fingerprint,
            servedFingerprint: c.served_fingerprint,
            servedSubject: c.served_subject,
            detail: c.detail,
          })),
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

  return listener;
}
