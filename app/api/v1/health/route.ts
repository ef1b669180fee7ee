import { sql } from "kysely";
import { getDb } from "@/lib/db";

export const dynamic = "force-dynamic";

// Public: load balancers and compose health checks call it without a token.
export async function GET() {
  try {
    await sql`select 1`.execute(getDb());
    return Response.json({ status: "ok", database: "ok" }, { headers: { "Cache-Control": "no-store" } });
  } catch {
    return Response.json({ status: "degraded", database: "unreachable" }, { status: 503 });
  }
}
