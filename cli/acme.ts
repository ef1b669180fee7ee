import type { Command } from "commander";
import type { Db } from "../lib/db";
import type { AcmeAccountView } from "../lib/acme/accounts";
import { confirm, withDatabase } from "./context";
import { dash, printJson, printList, UsageError } from "./output";
import { readSecret } from "./secret-input";

async function findAccount(db: Db, id: string): Promise<AcmeAccountView> {
  const { getAccount } = await import("../lib/acme/accounts");
  const account = await getAccount(db, id);
  if (account) return account;
  const { AppError } = await import("../lib/errors");
  throw new AppError("not_found", `no ACME account with id "${id}"; list them with: portcullis acme account list`);
}

function describe(a: AcmeAccountView) {
  return `${a.id}  ${a.caName}  ${a.email ?? "no contact address"}${a.isDefault ? "  (default)" : ""}`;
}

export function addAcmeCommands(program: Command) {
  const acme = program.command("acme").description("ACME (Let's Encrypt, ZeroSSL, …) accounts");
  const account = acme.command("account").description("ACME accounts that certificates are ordered with");

  account
    .command("list")
    .description("list ACME accounts")
    .option("--json", "print a JSON array")
    .action(async (opts: { json?: boolean }) => {
      const rows = await withDatabase(async ({ db }) => (await import("../lib/acme/accounts")).listAccounts(db));
      printList(
        rows,
        opts.json,
        "no ACME accounts; add one with: portcullis acme account add --directory letsencrypt --email you@example.com --agree-tos",
        ["ID", "CA", "CONTACT", "DEFAULT", "REGISTERED", "CERTIFICATES", "LAST ERROR"],
        (a) => [a.id, a.caName, dash(a.email), a.isDefault ? "yes" : "", a.registered ? "yes" : "not yet", String(a.certificates), dash(a.lastError)],
      );
    });

  account
    .command("add")
    .description("add an ACME account (its key is made now; the CA registers it on first use)")
    .requiredOption("--directory <url>", "the CA's directory URL, or letsencrypt, letsencrypt-staging or zerossl")
    .option("--email <address>", "the contact address the CA writes to about expiring certificates")
    .option("--eab-kid <kid>", "External Account Binding key id (ZeroSSL, some commercial CAs)")
    .option("--eab-hmac-env <var>", "the environment variable holding the EAB HMAC key (else: standard input, or a prompt, when --eab-kid is given)")
    .option("--agree-tos", "agree to the CA's terms of service (required)")
    .option("--default", "make it the default account for new certificates (the first account always is)")
    .option("--json", "print the account as JSON")
    .addHelpText("after", "\nExamples:\n  portcullis acme account add --directory letsencrypt --email ops@example.com --agree-tos\n  EAB_HMAC=… portcullis acme account add --directory zerossl --email ops@example.com --eab-kid KID --eab-hmac-env EAB_HMAC --agree-tos")
    .action(async (opts: { directory: string; email?: string; eabKid?: string; eabHmacEnv?: string; agreeTos?: boolean; default?: boolean; json?: boolean }) => {
      if (opts.eabHmacEnv !== undefined && opts.eabKid === undefined) throw new UsageError("--eab-hmac-env goes with --eab-kid: give the key id too");
      const eabHmacKey = opts.eabKid !== undefined ? await readSecret("--eab-hmac-env", opts.eabHmacEnv, "EAB HMAC key: ") : undefined;
      const created = await withDatabase(async ({ db, keyring }) => {
        const { createAccount } = await import("../lib/acme/accounts");
        const { CLI_ACTOR } = await import("../lib/audit");
        return createAccount(db, keyring, CLI_ACTOR, {
          directoryUrl: opts.directory,
          email: opts.email,
          eabKid: opts.eabKid,
          eabHmacKey,
          agreeTos: opts.agreeTos === true,
          makeDefault: opts.default === true,
        });
      });
      if (opts.json) return printJson(created);
      process.stdout.write(`added ACME account ${describe(created)}\n`);
    });

  account
    .command("default <id>")
    .description("make an account the default for new certificates")
    .option("--json", "print the account as JSON")
    .action(async (id: string, opts: { json?: boolean }) => {
      const updated = await withDatabase(async ({ db }) => {
        const { setDefaultAccount } = await import("../lib/acme/accounts");
        const { CLI_ACTOR } = await import("../lib/audit");
        const a = await findAccount(db, id);
        await setDefaultAccount(db, CLI_ACTOR, a.id);
        return findAccount(db, a.id);
      });
      if (opts.json) return printJson(updated);
      process.stdout.write(`default ACME account: ${describe(updated)}\n`);
    });

  account
    .command("delete <id>")
    .description("delete an ACME account (refused while certificates use it)")
    .option("--yes", "do not ask; required when there is no terminal to ask on")
    .option("--json", "print JSON")
    .action(async (id: string, opts: { yes?: boolean; json?: boolean }) => {
      const deleted = await withDatabase(async ({ db }) => {
        const { deleteAccount } = await import("../lib/acme/accounts");
        const { CLI_ACTOR } = await import("../lib/audit");
        const a = await findAccount(db, id);
        if (!opts.yes) {
          const what = `delete ACME account ${describe(a)}?`;
          if (!process.stdin.isTTY) throw new UsageError(`add --yes to ${what.slice(0, -1)}`);
          if (!(await confirm(what[0]!.toUpperCase() + what.slice(1)))) throw new UsageError("not deleted");
        }
        await deleteAccount(db, CLI_ACTOR, a.id);
        return a;
      });
      if (opts.json) return printJson({ deleted: deleted.id });
      process.stdout.write(`deleted ACME account ${deleted.id}\n`);
    });

  return acme;
}
