import type { Kysely, Migration } from "kysely";

// DNS-01: provider credentials (sealed tokens), the TXT records Portcullis created at a provider
// (so that a crashed worker's records are still removed), and zone tests run by the worker.
export function dns(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("dns_credentials")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull().unique())
        .addColumn("provider", "text", (c) => c.notNull())
        .addColumn("sealed_token", "text", (c) => c.notNull())
        .addColumn("token_hint", "text", (c) => c.notNull())
        .addColumn("verified_at", "text")
        .addColumn("verification", "text")
        .addColumn("created_by", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .execute();

      await db.schema
        .createTable("dns_records")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("credential_id", "text", (c) => c.notNull())
        .addColumn("certificate_id", "text")
        .addColumn("test_id", "text")
        .addColumn("zone_id", "text", (c) => c.notNull())
        .addColumn("zone_name", "text", (c) => c.notNull())
        .addColumn("fqdn", "text", (c) => c.notNull())
        .addColumn("value", "text", (c) => c.notNull())
        .addColumn("provider_record_id", "text")
        .addColumn("state", "text", (c) => c.notNull())
        .addColumn("last_error", "text")
        .addColumn("expires_at", "text", (c) => c.notNull())
        .addColumn("created_at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("dns_records_certificate_idx").on("dns_records").column("certificate_id").execute();
      await db.schema.createIndex("dns_records_name_idx").on("dns_records").columns(["zone_id", "fqdn", "value"]).execute();

      await db.schema
        .createTable("dns_tests")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("credential_id", "text", (c) => c.notNull())
        .addColumn("zone", "text", (c) => c.notNull())
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("message", "text")
        .addColumn("lease_owner", "text")
        .addColumn("lease_expires_at", "text")
        .addColumn("created_by", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("finished_at", "text")
        .execute();
      await db.schema.createIndex("dns_tests_credential_idx").on("dns_tests").columns(["credential_id", "created_at"]).execute();
      await db.schema.createIndex("certificates_dns_credential_idx").on("certificates").column("dns_credential_id").execute();
    },
  };
}
