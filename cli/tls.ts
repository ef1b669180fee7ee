import type { Command } from "commander";
import type { ConsoleTlsStatus } from "../lib/console/tls-status";
import { withDatabase } from "./context";
import { dash, printFields, printJson, UsageError, warn } from "./output";

// The console's own TLS (Settings → TLS). This process is not the console: the status is derived from
// the database and the environment. A running HTTPS console follows a change within seconds (it is
// announced as a console.tls_changed event); a switch between plain HTTP and HTTPS needs its restart.

function printStatus(s: ConsoleTlsStatus) {
  const source = s.modeSource === "env" ? "set by PORTCULLIS_TLS_MODE" : s.modeSource === "settings" ? "chosen in the settings" : "the default";
  printFields([
    ["Mode", `${s.mode} (${source})`],
    ["Serves", s.https ? "HTTPS" : "plain HTTP"],
    ["Certificate", s.served ? `${s.served.kind}: ${s.served.subject}, ${s.served.names.join(", ")}; expires ${s.served.notAfter}${s.served.trusted ? "" : " (not trusted by browsers unless the CA is installed)"}` : "—"],
    ["Fingerprint", dash(s.served?.fingerprintSha256)],
    ["Local CA", s.localCa ? `${s.localCa.subject} (SHA-256 ${s.localCa.fingerprintSha256})` : "—"],
    ["Let's Encrypt", s.acme.enabled ? `on for ${dash(s.acme.domain)} (${dash(s.acme.email)})${s.acme.status ? `, certificate ${s.acme.status}` : ""}${s.acme.lastError ? `: ${s.acme.lastError}` : ""}` : "off"],
    ["Provided", s.provided.source ? `${s.provided.source}${s.provided.certFile ? ` (${s.provided.certFile})` : ""}` : "—"],
    ...(Object.keys(s.locked).length ? ([["Locked", Object.entries(s.locked).map(([field, variable]) => `${field} by ${variable}`).join(", ")]] as [string, string][]) : []),
    ...(s.restartRequired ? ([["Restart", s.restartRequired]] as [string, string][]) : []),
  ]);
}

async function update(input: unknown): Promise<ConsoleTlsStatus> {
  return withDatabase(async ({ db, keyring }) => {
    const { getConfig } = await import("../lib/config");
    const { updateTlsSettings } = await import("../lib/console/tls-settings");
    const { CLI_ACTOR } = await import("../lib/audit");
    return updateTlsSettings(db, keyring, getConfig(), CLI_ACTOR, input);
  });
}

function printChanged(status: ConsoleTlsStatus, json?: boolean) {
  warn("a running HTTPS console applies the change within seconds; a switch between plain HTTP and HTTPS takes effect when it restarts");
  if (json) return printJson(status);
  printStatus(status);
}

export function addTlsCommands(program: Command) {
  const tls = program.command("tls").description("the console's own TLS: mode, certificate, Let's Encrypt for the console");

  tls
    .command("status")
    .description("what the console serves: the mode in force, its certificate, Let's Encrypt and locked settings")
    .option("--json", "print JSON (the shape of GET /api/v1/settings/tls)")
    .action(async (opts: { json?: boolean }) => {
      const status = await withDatabase(async ({ db }) => {
        const { getConfig } = await import("../lib/config");
        const { getConsoleTlsStatus } = await import("../lib/console/tls-status");
        return getConsoleTlsStatus(db, getConfig());
      });
      if (opts.json) return printJson(status);
      printStatus(status);
    });

  tls
    .command("set")
    .description("choose the console's TLS mode (PORTCULLIS_TLS_MODE, when set, wins)")
    .requiredOption("--mode <mode>", "auto, acme, provided, off or behind_proxy")
    .option("--json", "print the new status as JSON")
    .action(async (opts: { mode: string; json?: boolean }) => printChanged(await update({ mode: opts.mode }), opts.json));

  tls
    .command("acme")
    .description("turn Let's Encrypt for the console on (mode acme) or off (back to auto)")
    .option("--enable", "get a certificate for the console's domain")
    .option("--disable", "stop; the console goes back to its local CA")
    .option("--domain <name>", "the name browsers use to reach the console, like console.example.com")
    .option("--email <address>", "the contact address for the CA")
    .option("--challenge <type>", "http-01 or tls-alpn-01")
    .option("--json", "print the new status as JSON")
    .action(async (opts: { enable?: boolean; disable?: boolean; domain?: string; email?: string; challenge?: string; json?: boolean }) => {
      if (Boolean(opts.enable) === Boolean(opts.disable)) throw new UsageError("give either --enable (with --domain and --email) or --disable");
      const acme: Record<string, unknown> = { enabled: Boolean(opts.enable) };
      if (opts.domain !== undefined) acme.domain = opts.domain;
      if (opts.email !== undefined) acme.email = opts.email;
      if (opts.challenge !== undefined) acme.challenge = opts.challenge;
      printChanged(await update({ acme }), opts.json);
    });

  return tls;
}
