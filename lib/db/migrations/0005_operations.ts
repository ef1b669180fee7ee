import type { Kysely, Migration } from "kysely";

// Operations: webhook alerts with their delivery attempts and per-problem deduplication,
// expiry notices already sent, and the edge's handshake counters (summed by /metrics).
export function operations(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable("webhooks")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("name", "text", (c) => c.notNull().unique())
        .addColumn("url", "text", (c) => c.notNull())
        /** The HMAC signing secret, sealed with context `webhook-secret:<id>`. */
        .addColumn("sealed_secret", "text", (c) => c.notNull())
        /** JSON array of event types this webhook receives. */
        .addColumn("event_types", "text", (c) => c.notNull())
        .addColumn("enabled", "integer", (c) => c.notNull().defaultTo(1))
        .addColumn("created_by", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .execute();

      await db.schema
        .createTable("webhook_deliveries")
        .addColumn("id", "text", (c) => c.primaryKey())
        .addColumn("webhook_id", "text", (c) => c.notNull())
        .addColumn("event_id", "integer")
        /** The problem this delivery is about (deduplication key), or `test:<id>` for the Test button. */
        .addColumn("problem_key", "text", (c) => c.notNull())
        .addColumn("type", "text", (c) => c.notNull())
        /** JSON body as sent. */
        .addColumn("payload", "text", (c) => c.notNull())
        /** pending, delivered, failed (after the last attempt). */
        .addColumn("status", "text", (c) => c.notNull())
        .addColumn("attempts", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("next_attempt_at", "text")
        .addColumn("last_status_code", "integer")
        .addColumn("last_error", "text")
        .addColumn("last_duration_ms", "integer")
        .addColumn("lease_owner", "text")
        .addColumn("lease_expires_at", "text")
        .addColumn("created_at", "text", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .execute();
      await db.schema.createIndex("webhook_deliveries_webhook_idx").on("webhook_deliveries").columns(["webhook_id", "created_at"]).execute();
      await db.schema.createIndex("webhook_deliveries_due_idx").on("webhook_deliveries").columns(["status", "next_attempt_at"]).execute();

      // One row per open problem (a certificate failing to renew, expiring within N days, a listener
      // serving its fallback, a mismatch): alerts go out when a problem opens, not once per retry.
      await db.schema
        .createTable("alert_problems")
        .addColumn("problem_key", "text", (c) => c.primaryKey())
        .addColumn("type", "text", (c) => c.notNull())
        .addColumn("certificate_id", "text")
        .addColumn("listener_id", "text")
        .addColumn("opened_at", "text", (c) => c.notNull())
        .addColumn("last_seen_at", "text", (c) => c.notNull())
        .addColumn("last_event_id", "integer")
        .addColumn("occurrences", "integer", (c) => c.notNull().defaultTo(1))
        .addColumn("resolved_at", "text")
        .execute();

      // The events cursor of the alert dispatcher (one row per consumer name).
      await db.schema
        .createTable("event_cursors")
        .addColumn("name", "text", (c) => c.primaryKey())
        .addColumn("last_event_id", "integer", (c) => c.notNull())
        .addColumn("updated_at", "text", (c) => c.notNull())
        .execute();

      // Expiry notices sent, per certificate version (fingerprint) and threshold (30, 14, 7, 1 days; 0 = expired).
      await db.schema
        .createTable("expiry_notices")
        .addColumn("certificate_id", "text", (c) => c.notNull())
        .addColumn("fingerprint_sha256", "text", (c) => c.notNull())
        .addColumn("threshold_days", "integer", (c) => c.notNull())
        .addColumn("at", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("expiry_notices_pk", ["certificate_id", "fingerprint_sha256", "threshold_days"])
        .execute();

      // Cumulative counters of each worker's edge, flushed every few seconds; /metrics sums them.
      await db.schema
        .createTable("listener_counters")
        .addColumn("worker_id", "text", (c) => c.notNull())
        .addColumn("listener_id", "text", (c) => c.notNull())
        .addColumn("handshakes", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("handshake_errors", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("fallback_served", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("requests", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("upstream_errors", "integer", (c) => c.notNull().defaultTo(0))
        .addColumn("updated_at", "text", (c) => c.notNull())
        .addPrimaryKeyConstraint("listener_counters_pk", ["worker_id", "listener_id"])
        .execute();
    },
  };
}
