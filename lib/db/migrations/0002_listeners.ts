import type { Kysely, Migration } from "kysely";

export function listeners(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      // Certificates that other tools keep on disk (certbot's fullchain.pem / privkey.pem).
      await db.schema.alterTable("certificates").addColumn("source_cert_path", "text").execute();
      await db.schema.alterTable("certificates").addColumn("source_key_path", "text").execute();
      await db.schema.alterTable("certificates").addColumn("source_hash", "text").execute();
      await db.schema
        .createTable("listeners")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull().unique())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("bind_address", "text", (c) => c.notNull())
        .addColumn("port", "integer", (c) => c.notNull())
        .addColumn("upstream_url", "text")
        .addColumn("min_tls_version", "text", (c) => c.notNull().defaultTo("TLSv1.2"))
        .addColumn("default_certificate_id", "text", (c) => c.references("certificates.id").onDelete("set null"))
        .addColumn("fallback_policy", "text", (c) => c.notNull().defaultTo("self_signed"))
        .addColumn("http_action", "text")
        .addColumn("redirect_port", "integer")
        .addColumn("enabled", "integer", (c) => c.notNull().defaultTo(1))
        .addColumn("fallback_chain_pem", "text")
        .addColumn("fallback_sealed_key", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .addUniqueConstraint("listeners_bind_port_uq", ["bind_address", "port"])
        .execute();

      await db.schema
        .createTable("certificate_mappings")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("listener_id", "text", (c) => c.notNull().references("listeners.id").onDelete("cascade"))
        .addColumn("hostname", "text", (c) => c.notNull())
        .addColumn("certificate_id", "text", (c) => c.notNull().references("certificates.id").onDelete("cascade"))
        .addColumn("created_at", "text", (c) => c.notNull())
        .addUniqueConstraint("certificate_mappings_listener_host_uq", ["listener_id", "hostname"])
        .execute();
      await db.schema.createIndex("certificate_mappings_cert_idx").on("certificate_mappings").column("certificate_id").execute();

      await db.schema
        .createTable("acme_challenges")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("kind", "text", (c) => c.notNull())
        .addColumn("identifier", "text", (c) => c.notNull())
        .addColumn("token", "text")
        .addColumn("key_authorization", "text")
        .addColumn("certificate_pem", "text")
        .addColumn("sealed_key", "text")
        .addColumn("expires_at", "text", (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("acme_challenges_token_idx").on("acme_challenges").columns(["kind", "token"]).execute();
      await db.schema.createIndex("acme_challenges_identifier_idx").on("acme_challenges").columns(["kind", "identifier"]).execute();

      await db.schema
        .createTable("listener_checks")
        .addColumn("listener_id", "text", (c) => c.notNull().references("listeners.id").onDelete("cascade"))
        .addColumn("hostname", "text", (c) => c.notNull())
        .addColumn("checked_at", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("expected_fingerprint", "text")
        .addColumn("served_fingerprint", "text")
        .addColumn("served_subject", "text")
        .addColumn("detail", "text")
        .addPrimaryKeyConstraint("listener_checks_pk", ["listener_id", "hostname"])
        .execute();
    },
  };
}
