import type { ColumnDefinitionBuilder, Kysely, Migration } from "kysely";
import type { DatabaseKind } from "../connection";

// Written once for both engines: the only difference is how an auto-increment key is spelled.
export function foundation(kind: DatabaseKind): Migration {
  const idType = kind === "postgres" ? "serial" : "integer";
  const idColumn = (c: ColumnDefinitionBuilder) => (kind === "postgres" ? c.primaryKey() : c.primaryKey().autoIncrement());

  return {
    async up(db: Kysely<unknown>) {

      await db.schema
        .createTable("users")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("email", "text", (c) => c.notNull().unique())
        .addColumn("password_hash", "text", (c) => c.notNull())
        .addColumn("role", "text", (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .addColumn("last_login_at", "text")
        .execute();

      await db.schema
        .createTable("api_tokens")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("user_id", "text", (c) => c.notNull().references("users.id").onDelete("cascade"))
        .addColumn("name", "text", (c) => c.notNull())
        .addColumn("token_hash", "text", (c) => c.notNull().unique())
        .addColumn("prefix", "text", (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("last_used_at", "text")
        .addColumn("revoked_at", "text")
        .execute();
      await db.schema.createIndex("api_tokens_user_idx").on("api_tokens").column("user_id").execute();

      await db.schema
        .createTable("audit_log")
        .addColumn("id", idType, idColumn)
        .addColumn("at", "text", (c) => c.notNull())
        .addColumn("actor_id", "text")
        .addColumn("actor_label", "text", (c) => c.notNull())
        .addColumn("action", "text", (c) => c.notNull())
        .addColumn("target_type", "text")
        .addColumn("target_id", "text")
        .addColumn("detail", "text")
        .addColumn("ip", "text")
        .execute();
      await db.schema.createIndex("audit_log_at_idx").on("audit_log").column("at").execute();

      await db.schema
        .createTable("settings")
        .addColumn("key", "text", (c) => c.primaryKey())
        .addColumn("value", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .execute();

      await db.schema
        .createTable("login_attempts")
        .addColumn("id", idType, idColumn)
        .addColumn("at", "text", (c) => c.notNull())
        .addColumn("email", "text", (c) => c.notNull())
        .addColumn("ip", "text", (c) => c.notNull())
        .addColumn("succeeded", "integer", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("login_attempts_email_idx").on("login_attempts").columns(["email", "at"]).execute();
      await db.schema.createIndex("login_attempts_ip_idx").on("login_attempts").columns(["ip", "at"]).execute();

      await db.schema
        .createTable("certificates")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull().unique())
        .addColumn("source", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("domains", "text", (c) => c.notNull())
        .addColumn("key_type", "text", (c) => c.notNull())
        .addColumn("validity_days", "integer")
        .addColumn("chain_pem", "text")
        .addColumn("sealed_key", "text")
        .addColumn("subject", "text")
        .addColumn("issuer", "text")
        .addColumn("serial", "text")
        .addColumn("fingerprint_sha256", "text")
        .addColumn("not_before", "text")
        .addColumn("not_after", "text")
        .addColumn("renew_at", "text")
        .addColumn("renew_reason", "text")
        .addColumn("next_attempt_at", "text")
        .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("last_error", "text")
        .addColumn("lease_owner", "text")
        .addColumn("lease_expires_at", "text")
        .addColumn("created_by", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("certificates_created_idx").on("certificates").columns(["created_at", "id"]).execute();
      await db.schema.createIndex("certificates_status_idx").on("certificates").columns(["status", "not_after"]).execute();
      await db.schema.createIndex("certificates_not_after_idx").on("certificates").column("not_after").execute();

      await db.schema
        .createTable("certificate_versions")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("certificate_id", "text", (c) => c.notNull().references("certificates.id").onDelete("cascade"))
        .addColumn("version", "integer", (c) => c.notNull())
        .addColumn("chain_pem", "text", (c) => c.notNull())
        .addColumn("sealed_key", "text", (c) => c.notNull())
        .addColumn("fingerprint_sha256", "text", (c) => c.notNull())
        .addColumn("serial", "text", (c) => c.notNull())
        .addColumn("issuer", "text", (c) => c.notNull())
        .addColumn("not_before", "text", (c) => c.notNull())
        .addColumn("not_after", "text", (c) => c.notNull())
        .addColumn("reason", "text", (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .addUniqueConstraint("certificate_versions_cert_version_uq", ["certificate_id", "version"])
        .execute();

      await db.schema
        .createTable("events")
        .addColumn("id", idType, idColumn)
        .addColumn("at", "text", (c) => c.notNull())
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("severity", "text", (c) => c.notNull())
        .addColumn("certificate_id", "text")
        .addColumn("listener_id", "text")
        .addColumn("message", "text", (c) => c.notNull())
        .addColumn("detail", "text")
        .execute();
      await db.schema.createIndex("events_certificate_idx").on("events").columns(["certificate_id", "id"]).execute();
    },
  };
}
