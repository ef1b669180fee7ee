import { InvalidArgumentError, type Command } from "commander";
import type { Db } from "../lib/db";
import type { TokenView } from "../lib/tokens";
import { readSecretLine, withDatabase } from "./context";
import { dash, printJson, printList } from "./output";

async function findUserByEmail(db: Db, email: string) {
  const owner = await db.selectFrom("users").select(["id", "email"]).where("email", "=", email.trim().toLowerCase()).executeTakeFirst();
  if (!owner) {
    const { AppError } = await import("../lib/errors");
    throw new AppError("not_found", `no user with the email ${email}; create one with: portcullis user add --email ${email}`);
  }
  return owner;
}

/** A token by id, or by the prefix shown in lists (pct_ and the next 6 characters); exit 3 when none. */
async function findToken(db: Db, ref: string): Promise<TokenView> {
  const { listApiTokens } = await import("../lib/tokens");
  const { AppError } = await import("../lib/errors");
  const tokens = await listApiTokens(db);
  const byId = tokens.find((t) => t.id === ref);
  if (byId) return byId;
  const byPrefix = ref.length >= 6 ? tokens.filter((t) => t.prefix.startsWith(ref) || ref.startsWith(t.prefix)) : [];
  const active = byPrefix.filter((t) => !t.revokedAt);
  if (active.length === 1) return active[0]!;
  if (active.length > 1) throw new AppError("conflict", `${active.length} tokens start with ${ref}; revoke by id: ${active.map((t) => t.id).join(", ")}`);
  if (byPrefix.length === 1) return byPrefix[0]!;
  throw new AppError("not_found", `no API token with the id or prefix "${ref}"; list them with: portcullis token list`);
}

export function addUserCommands(program: Command) {
  const user = program.command("user").description("manage users");
  user
    .command("add")
    .description("create a user; the password is read from a prompt, or from the first line of standard input")
    .requiredOption("--email <email>", "the user's email address")
    .option("--role <role>", "admin or viewer", (v: string) => {
      if (v !== "admin" && v !== "viewer") throw new InvalidArgumentError("accepted values: admin, viewer");
      return v;
    }, "admin")
    .option("--json", "print the result as JSON")
    .action(async (opts: { email: string; role: "admin" | "viewer"; json?: boolean }) => {
      const password = await readSecretLine("Password (10+ characters): ");
      const created = await withDatabase(async ({ db }) => {
        const { createUser } = await import("../lib/users");
        const { CLI_ACTOR } = await import("../lib/audit");
        return createUser(db, CLI_ACTOR, { email: opts.email, password, role: opts.role });
      });
      if (opts.json) return printJson(created);
      process.stdout.write(`created ${created.role} ${created.email} (${created.id})\n`);
    });

  user
    .command("list")
    .description("list users")
    .option("--json", "print a JSON array")
    .action(async (opts: { json?: boolean }) => {
      const users = await withDatabase(async ({ db }) => (await import("../lib/users")).listUsers(db));
      printList(
        users,
        opts.json,
        "no users; add one with: portcullis user add --email you@example.com",
        ["ID", "EMAIL", "ROLE", "CREATED", "LAST SIGN-IN"],
        (u) => [u.id, u.email, u.role, u.createdAt, dash(u.lastLoginAt)],
      );
    });
  return user;
}

export function addTokenCommands(program: Command) {
  const token = program.command("token").description("manage API tokens");
  token
    .command("create")
    .description("create an API token for a user; the token is printed once")
    .requiredOption("--user <email>", "the owner; the token acts with this user's role")
    .requiredOption("--name <name>", "what the token is for")
    .option("--json", "print the result as JSON")
    .action(async (opts: { user: string; name: string; json?: boolean }) => {
      const created = await withDatabase(async ({ db }) => {
        const owner = await findUserByEmail(db, opts.user);
        const { createApiToken } = await import("../lib/tokens");
        const { CLI_ACTOR } = await import("../lib/audit");
        return createApiToken(db, CLI_ACTOR, { userId: owner.id, name: opts.name });
      });
      if (opts.json) return printJson(created);
      process.stdout.write(`${created.token}\n`);
    });

  token
    .command("list")
    .description("list API tokens (never the tokens themselves: their first characters)")
    .option("--user <email>", "only this user's tokens")
    .option("--json", "print a JSON array")
    .action(async (opts: { user?: string; json?: boolean }) => {
      const tokens = await withDatabase(async ({ db }) => {
        const { listApiTokens } = await import("../lib/tokens");
        return listApiTokens(db, opts.user ? (await findUserByEmail(db, opts.user)).id : undefined);
      });
      printList(
        tokens,
        opts.json,
        "no API tokens",
        ["ID", "PREFIX", "NAME", "USER", "CREATED", "LAST USED", "REVOKED"],
        (t) => [t.id, `${t.prefix}…`, t.name, t.userEmail, t.createdAt, dash(t.lastUsedAt), dash(t.revokedAt)],
      );
    });

  token
    .command("revoke <idOrPrefix>")
    .description("revoke an API token at once, by its id or its prefix (as `token list` shows it)")
    .option("--json", "print JSON")
    .action(async (ref: string, opts: { json?: boolean }) => {
      const result = await withDatabase(async ({ db }) => {
        const target = await findToken(db, ref.replace(/…$/, ""));
        if (target.revokedAt) return { token: target, already: true };
        const { revokeApiToken } = await import("../lib/tokens");
        const { CLI_ACTOR } = await import("../lib/audit");
        await revokeApiToken(db, CLI_ACTOR, target.id);
        return { token: target, already: false };
      });
      if (result.already) process.stderr.write(`portcullis: token ${result.token.id} was already revoked at ${result.token.revokedAt}\n`);
      if (opts.json) return printJson({ revoked: result.token.id, name: result.token.name, alreadyRevoked: result.already });
      if (!result.already) process.stdout.write(`revoked ${result.token.id} (${result.token.name}, ${result.token.userEmail})\n`);
    });
  return token;
}
