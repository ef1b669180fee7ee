import type { Kysely, Migration } from "kysely";

// Whether the edge checks an https:// upstream's certificate (1, the default) or accepts any,
// for upstreams that serve a self-signed certificate (a NAS, a hypervisor's console, a router).
export function upstreamTls(): Migration {
  return {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable("listeners")
        .addColumn("upstream_tls_verify", "integer", (c) => c.notNull().defaultTo(1))
        .execute();
    },
  };
}
