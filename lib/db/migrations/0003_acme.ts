import type { ColumnDefinitionBuilder, Kysely, Migration } from "kysely";
import type { DatabaseKind } from "../connection";

// ACME accounts, the engine's order state on certificates, and the Let's Encrypt rate-limit ledger.
export function acme(kind: DatabaseKind): Migration {
  const idType = kind === "postgres" ? "serial" : "integer";
  const idColumn = (c: ColumnDefinitionBuilder) => (kind === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement());
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("acme_accounts")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("directory_url", "text", (c) => c.notNull())
        .addColumn("email", "text", (c) => c.notNull())
        .addColumn("sealed_key", "text", (c) => c.notNull())
        .addColumn("account_url", "text")
        .addColumn("eab_kid", "text")
        .addColumn("sealed_eab_hmac", "text")
        .addColumn("tos_agreed_at", "text")
        .addColumn("is_default", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("last_error", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .addUniqueConstraint("acme_accounts_directory_email_uq", ["directory_url", "email"])
        .execute();

      const add = (name: string, type: "text" | "integer" = "text") =>
        db.schema.alterTable("certificates").addColumn(name, type).execute();
      await add("acme_account_id");
      await add("challenge");
      await add("dns_credential_id");
      await add("acme_step");
      await add("order_url");
      await add("pending_sealed_key");
      await add("last_error_detail");
      await add("ari_checked_at");
      await add("ari_window");
      await add("force_next_order", "integer");
      await db.schema.createIndex("certificates_due_idx").on("certificates").columns(["source", "next_attempt_at"]).execute();

      await db.schema.alterTable("acme_challenges").addColumn("certificate_id", "text").execute();
      await db.schema.createIndex("acme_challenges_certificate_idx").on("acme_challenges").column("certificate_id").execute();

      await db.schema
        .createTable("acme_rate_ledger")
        .addColumn("id", idType, idColumn)
        .addColumn("directory_url", "text", (c) => c.notNull())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("registered_domain", "text")
        .addColumn("names_key", "text")
        .addColumn("identifier", "text")
        .addColumn("certificate_id", "text")
        .addColumn("exempt", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("acme_rate_ledger_domain_idx").on("acme_rate_ledger").columns(["directory_url", "kind", "registered_domain", "at"]).execute();
      await db.schema.createIndex("acme_rate_ledger_names_idx").on("acme_rate_ledger").columns(["directory_url", "kind", "names_key", "at"]).execute();
      await db.schema.createIndex("acme_rate_ledger_identifier_idx").on("acme_rate_ledger").columns(["directory_url", "kind", "identifier", "at"]).execute();
      await db.schema.createIndex("events_type_idx").on("events").columns(["type", "id"]).execute();
    },
  };
}
