import { apiRoute } from "@/app/_lib/api";
import { getConfig } from "@/lib/config";
import { dashboardOverview } from "@/lib/dashboard";
import { getDb } from "@/lib/db";

export const dynamic = "force-dynamic";

/** The dashboard's data: counts, the 90-day expiry timeline and what needs attention (any signed-in user). */
export const GET = apiRoute("viewer", async () => {
  return Response.json(await dashboardOverview(getDb(), getConfig()), { headers: { "Cache-Control": "no-store" } });
});
