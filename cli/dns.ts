import type { Command } from "commander";
import type { Db } from "../lib/db";
import type { DnsCredentialView } from "../lib/dns/credentials";
import { confirm, withDatabase } from "./context";
import { dash, printJson, printList, UsageError } from "./output";
import { readSecret } from "./secret-input";

/** A DNS credential by id or by name, or exit code 3. */
async function findCredential(db: Db, idOrName: string): Promise<DnsCredentialView> {
  const { getCredential, listCredentials } = await import("../lib/dns/credentials");
  const byId = await getCredential(db, idOrName);
  if (byId) return byId;
  const byName = (await listCredentials(db)).find((c) => c.name === idOrName);
  if (byName) return byName;
  const { AppError } = await import("../lib/errors");
  throw new AppError("not_found", `no DNS credential named or with id "${idOrName}"; list them with: portcullis dns list`);
}

async function credentialOptions() {
  const { getConfig } = await import("../lib/config");
  const { dnsSettings } = await import("../lib/dns/credentials");
  return { settings: dnsSettings(getConfig()) };
}

function verificationLine(c: DnsCredentialView): string {
  if (!c.verification) return "not verified";
  return `${c.verification.summary}${c.verification.problems.length ? ` (${c.verification.problems.join(" ")})` : ""}`;
}

export function addDnsCommands(program: Command) {
  const dns = program.command("dns").description("DNS provider credentials for DNS-01 validation (Cloudflare API tokens)");

  dns
    .command("list")
    .description("list DNS credentials (tokens are never shown, only their last 4 characters)")
    .option("--json", "print a JSON array")
    .action(async (opts: { json?: boolean }) => {
      const rows = await withDatabase(async ({ db }) => (await import("../lib/dns/credentials")).listCredentials(db));
      printList(
        rows,
        opts.json,
        "no DNS credentials; add one with: portcullis dns add --name NAME --token-env VAR",
        ["ID", "NAME", "PROVIDER", "TOKEN", "VERIFIED", "CERTIFICATES", "RESULT"],
        (c) => [c.id, c.name, c.providerLabel, c.tokenHint, dash(c.verifiedAt), String(c.certificates.length), verificationLine(c)],
      );
    });

  dns
    .command("add")
    .description("add a DNS credential; the token is checked with the provider first and not saved if refused")
    .requiredOption("--name <name>", 'a name for the credential, like "prod Cloudflare"')
    .option("--provider <provider>", "the DNS provider (cloudflare)", "cloudflare")
    .option("--token-env <var>", "the environment variable holding the API token (else: standard input, or a prompt)")
    .option("--no-verify", "save without asking the provider (for a provider that cannot be reached now)")
    .option("--json", "print the credential as JSON")
    .addHelpText("after", "\nExamples:\n  CF_TOKEN=… portcullis dns add --name \"prod Cloudflare\" --token-env CF_TOKEN\n  portcullis dns add --name prod < token.txt")
    .action(async (opts: { name: string; provider: string; tokenEnv?: string; verify: boolean; json?: boolean }) => {
      const token = await readSecret("--token-env", opts.tokenEnv, "API token: ");
      const created = await withDatabase(async ({ db, keyring }) => {
        const { createCredential } = await import("../lib/dns/credentials");
        const { CLI_ACTOR } = await import("../lib/audit");
        return createCredential(db, keyring, CLI_ACTOR, { name: opts.name, provider: opts.provider, token, verify: opts.verify }, await credentialOptions());
      });
      if (opts.json) return printJson(created);
      process.stdout.write(`added DNS credential ${created.name} (${created.id}), token ${created.tokenHint}: ${verificationLine(created)}\n`);
    });

  dns
    .command("verify <credential>")
    .description("ask the provider now whether the token works and which zones it may edit (exit 1 if not)")
    .option("--json", "print the credential with its new verification as JSON")
    .action(async (ref: string, opts: { json?: boolean }) => {
      const checked = await withDatabase(async ({ db, keyring }) => {
        const { verifyCredential } = await import("../lib/dns/credentials");
        const { CLI_ACTOR } = await import("../lib/audit");
        const c = await findCredential(db, ref);
        return verifyCredential(db, keyring, CLI_ACTOR, c.id, await credentialOptions());
      });
      if (opts.json) printJson(checked);
      else process.stdout.write(`${checked.name} (${checked.id}): ${verificationLine(checked)}\n`);
      if (!checked.verification?.ok) process.exitCode = 1;
    });

  dns
    .command("delete <credential>")
    .description("delete a DNS credential (refused while certificates use it)")
    .option("--yes", "do not ask; required when there is no terminal to ask on")
    .option("--json", "print JSON")
    .action(async (ref: string, opts: { yes?: boolean; json?: boolean }) => {
      const deleted = await withDatabase(async ({ db }) => {
        const { deleteCredential } = await import("../lib/dns/credentials");
        const { CLI_ACTOR } = await import("../lib/audit");
        const c = await findCredential(db, ref);
        if (!opts.yes) {
          const what = `delete DNS credential ${c.name} (${c.id})?`;
          if (!process.stdin.isTTY) throw new UsageError(`add --yes to ${what.slice(0, -1)}`);
          if (!(await confirm(what[0]!.toUpperCase() + what.slice(1)))) throw new UsageError("not deleted");
        }
        return deleteCredential(db, CLI_ACTOR, c.id);
      });
      if (opts.json) return printJson({ deleted: deleted.id, name: deleted.name });
      process.stdout.write(`deleted DNS credential ${deleted.name} (${deleted.id})\n`);
    });

  return dns;
}
