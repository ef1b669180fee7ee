import { z } from "zod";
import { writeAudit, type Actor } from "../audit";
import { ACME_DIRECTORY_ALIASES } from "../config";
import type { Keyring } from "../crypto/seal";
import type { Db } from "../db";
import { isUniqueViolation } from "../db/connection";
import type { AcmeAccountsTable } from "../db/schema";
import { AppError, notFound } from "../errors";
import { newId, nowIso } from "../ids";
import { acme, createAcmeClient } from "./client";
import { caName } from "./errors";

export const accountKeyContext = (id: string) => `acme-account-key:${id}`;
export const eabContext = (id: string) => `acme-eab:${id}`;

export const DIRECTORY_PRESETS = [
  { id: "letsencrypt", label: "Let's Encrypt", url: ACME_DIRECTORY_ALIASES.letsencrypt },
  { id: "letsencrypt-staging", label: "Let's Encrypt staging (test certificates)", url: ACME_DIRECTORY_ALIASES["letsencrypt-staging"] },
  { id: "zerossl", label: "ZeroSSL (needs External Account Binding)", url: ACME_DIRECTORY_ALIASES.zerossl },
] as const;

export type AcmeAccountView = {
  id: string;
  directoryUrl: string;
  caName: string;
  email: string | null;
  registered: boolean;
  accountUrl: string | null;
  eabKid: string | null;
  tosAgreedAt: string | null;
  isDefault: boolean;
  lastError: string | null;
  certificates: number;
  createdAt: string;
};

const directoryField = z
  .string({ error: "give the ACME directory URL, or letsencrypt, letsencrypt-staging or zerossl" })
  .trim()
  .min(1, "give the ACME directory URL, or letsencrypt, letsencrypt-staging or zerossl")
  .transform((v) => ACME_DIRECTORY_ALIASES[v] ?? v)
  .pipe(z.url({ protocol: /^https?$/, error: "the directory must be an https:// URL, like https://acme-v02.api.letsencrypt.org/directory" }));

export const accountInputSchema = z
  .object({
    directoryUrl: directoryField,
    email: z
      .union([z.literal(""), z.email({ error: "the contact must be an email address, like ops@example.com" })])
      .optional()
      .transform((v) => (v ? v.toLowerCase() : "")),
    eabKid: z.string().trim().max(500, "the key id is too long").optional().transform((v) => v || undefined),
    eabHmacKey: z
      .string()
      .trim()
      .max(500, "the HMAC key is too long")
      .optional()
      .transform((v) => v || undefined)
      .refine((v) => v === undefined || (/^[A-Za-z0-9_-]+={0,2}$/.test(v) && Buffer.from(v, "base64url").length >= 16), {
        message: "the HMAC key must be the base64url text the CA gave you (at least 16 bytes)",
      }),
    agreeTos: z.union([z.boolean(), z.enum(["on", "true"]).transform(() => true)]).optional(),
    makeDefault: z.union([z.boolean(), z.enum(["on", "true"]).transform(() => true)]).optional(),
  })
  .superRefine((v, ctx) => {
    if (Boolean(v.eabKid) !== Boolean(v.eabHmacKey)) {
      ctx.addIssue({ code: "custom", path: [v.eabKid ? "eabHmacKey" : "eabKid"], message: "External Account Binding needs both the key id and the HMAC key" });
    }
    if (v.agreeTos !== true) {
      ctx.addIssue({ code: "custom", path: ["agreeTos"], message: "agree to the CA's terms of service to create an account" });
    }
  });

export type AccountInput = z.input<typeof accountInputSchema>;

function toView(r: AcmeAccountsTable, certificates: number): AcmeAccountView {
  return {
    id: r.id,
    directoryUrl: r.directory_url,
    caName: caName(r.directory_url),
    email: r.email || null,
    registered: Boolean(r.account_url),
    accountUrl: r.account_url,
    eabKid: r.eab_kid,
    tosAgreedAt: r.tos_agreed_at,
    isDefault: r.is_default === 1,
    lastError: r.last_error,
    certificates,
    createdAt: r.created_at,
  };
}

export async function listAccounts(db: Db): Promise<AcmeAccountView[]> {
  const rows = await db.selectFrom("acme_accounts").selectAll().orderBy("created_at").execute();
  const counts = await db
    .selectFrom("certificates")
    .select(["acme_account_id", (eb) => eb.fn.countAll().as("n")])
    .where("acme_account_id", "is not", null)
    .groupBy("acme_account_id")
    .execute();
  const byId = new Map(counts.map((c) => [c.acme_account_id, Number(c.n)]));
  return rows.map((r) => toView(r, byId.get(r.id) ?? 0));
}

export async function getAccount(db: Db, id: string): Promise<AcmeAccountView | undefined> {
  return (await listAccounts(db)).find((a) => a.id === id);
}

/** Stores the account with a new key; the CA registers it on first use (or now, with register()). */
export async function createAccount(db: Db, keyring: Keyring, actor: Actor, input: unknown, now = new Date()): Promise<AcmeAccountView> {
  const parsed = accountInputSchema.safeParse(input);
  if (!parsed.success) {
    throw new AppError("validation_failed", "the ACME account was not saved: check the highlighted fields", z.flattenError(parsed.error).fieldErrors as Record<string, string[]>);
  }
  const v = parsed.data;
  const id = newId("acc");
  const key = (await acme.crypto.createPrivateEcdsaKey("P-256")).toString();
  const at = nowIso(now);
  try {
    await db.transaction().execute(async (trx) => {
      const existing = await trx.selectFrom("acme_accounts").select("id").limit(1).execute();
      const makeDefault = v.makeDefault === true || existing.length === 0;
      if (makeDefault) await trx.updateTable("acme_accounts").set({ is_default: 0 }).execute();
      await trx
        .insertInto("acme_accounts")
        .values({
          id,
          directory_url: v.directoryUrl,
          email: v.email,
          sealed_key: keyring.seal(key, accountKeyContext(id)),
          account_url: null,
          eab_kid: v.eabKid ?? null,
          sealed_eab_hmac: v.eabHmacKey ? keyring.seal(v.eabHmacKey, eabContext(id)) : null,
          tos_agreed_at: at,
          is_default: makeDefault ? 1 : 0,
          last_error: null,
          created_at: at,
          updated_at: at,
        })
        .execute();
    });
  } catch (err) {
    if (isUniqueViolation(err)) {
      throw new AppError("conflict", `there is already an account for ${caName(v.directoryUrl)} with ${v.email || "no contact address"}`, {
        email: ["one account per CA and contact address: use the existing one, or another address"],
      });
    }
    throw err;
  }
  await writeAudit(db, actor, "acme_account.create", { type: "acme_account", id }, { directoryUrl: v.directoryUrl, email: v.email, eab: Boolean(v.eabKid) });
  return (await getAccount(db, id))!;
}

export async function setDefaultAccount(db: Db, actor: Actor, id: string) {
  const row = await db.selectFrom("acme_accounts").select("id").where("id", "=", id).executeTakeFirst();
  if (!row) throw notFound(`ACME account "${id}"`);
  await db.transaction().execute(async (trx) => {
    await trx.updateTable("acme_accounts").set({ is_default: 0 }).execute();
    await trx.updateTable("acme_accounts").set({ is_default: 1, updated_at: nowIso() }).where("id", "=", id).execute();
  });
  await writeAudit(db, actor, "acme_account.default", { type: "acme_account", id });
}

export async function deleteAccount(db: Db, actor: Actor, id: string) {
  const account = await getAccount(db, id);
  if (!account) throw notFound(`ACME account "${id}"`);
  const users = await db.selectFrom("certificates").select("name").where("acme_account_id", "=", id).orderBy("name").limit(11).execute();
  if (users.length) {
    const names = users.slice(0, 10).map((u) => `"${u.name}"`).join(", ");
    throw new AppError("conflict", `the account is used by ${names}${users.length > 10 ? " and more" : ""}; delete those certificates or move them to another account first`);
  }
  await db.deleteFrom("acme_accounts").where("id", "=", id).execute();
  await writeAudit(db, actor, "acme_account.delete", { type: "acme_account", id }, { directoryUrl: account.directoryUrl, email: account.email });
}

/**
 * The account a new certificate uses: the one asked for, else the default, else (only when the caller
 * agrees to the terms) a new one for the configured directory.
 */
export async function resolveAccountForCertificate(
  db: Db,
  keyring: Keyring,
  actor: Actor,
  opts: { accountId?: string; email?: string; agreeTos?: boolean; directoryUrl: string },
): Promise<AcmeAccountView> {
  if (opts.accountId) {
    const account = await getAccount(db, opts.accountId);
    if (!account) throw new AppError("validation_failed", `ACME account "${opts.accountId}" does not exist`, { accountId: ["pick an account from Settings → ACME"] });
    return account;
  }
  const accounts = await listAccounts(db);
  const chosen = accounts.find((a) => a.isDefault) ?? accounts[0];
  if (chosen) return chosen;
  if (opts.agreeTos) return createAccount(db, keyring, actor, { directoryUrl: opts.directoryUrl, email: opts.email ?? "", agreeTos: true });
  throw new AppError("validation_failed", "there is no ACME account yet: add one in Settings → ACME, or send agreeTos: true (and an email) to create one for the configured CA", {
    agreeTos: [`agree to ${caName(opts.directoryUrl)}'s terms of service to create its account`],
  });
}

/** A client for the account, registering it with the CA first if it is new (idempotent: same key, same account). */
export async function accountClient(db: Db, keyring: Keyring, accountId: string): Promise<{ client: acme.Client; directoryUrl: string }> {
  const row = await db.selectFrom("acme_accounts").selectAll().where("id", "=", accountId).executeTakeFirst();
  if (!row) throw new Error(`the certificate's ACME account ${accountId} no longer exists`);
  const accountKey = keyring.open(row.sealed_key, accountKeyContext(row.id));
  const externalAccountBinding =
    row.eab_kid && row.sealed_eab_hmac ? { kid: row.eab_kid, hmacKey: keyring.open(row.sealed_eab_hmac, eabContext(row.id)) } : undefined;
  const client = createAcmeClient({ directoryUrl: row.directory_url, accountKey, accountUrl: row.account_url ?? undefined, externalAccountBinding });
  if (!row.account_url) {
    try {
      await client.createAccount({ termsOfServiceAgreed: true, contact: row.email ? [`mailto:${row.email}`] : undefined });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      await db.updateTable("acme_accounts").set({ last_error: message.slice(0, 500), updated_at: nowIso() }).where("id", "=", row.id).execute();
      throw err;
    }
    await db
      .updateTable("acme_accounts")
      .set({ account_url: client.getAccountUrl(), last_error: null, updated_at: nowIso() })
      .where("id", "=", row.id)
      .execute();
  }
  return { client, directoryUrl: row.directory_url };
}
