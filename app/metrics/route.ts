import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { logger } from "@/lib/log";
import { authorizeMetricsRequest } from "@/lib/metrics/auth";
import { METRICS_CONTENT_TYPE, renderMetrics } from "@/lib/metrics/scrape";

export const dynamic = "force-dynamic";

const plain = (status: number, text: string, headers: Record<string, string> = {}) =>
  new Response(`${text}\n`, { status, headers: { "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store", ...headers } });

// Prometheus scrapes this outside /api (the path every Prometheus default expects); proxy.ts leaves it to
// this handler, which accepts PORTCULLIS_METRICS_TOKEN, an API token, or an address in PORTCULLIS_METRICS_ALLOW.
export async function GET(request: Request) {
  try {
    const db = getDb();
    const access = await authorizeMetricsRequest(db, getConfig().metrics, {
      authorization: request.headers.get("authorization"),
      clientIp: request.headers.get("x-portcullis-client-ip"),
    });
    if (!access.ok) return plain(access.status, access.reason, access.status === 401 ? { "WWW-Authenticate": 'Bearer realm="portcullis metrics"' } : {});
    const body = await renderMetrics(db, { processMetrics: true });
    return new Response(body, { headers: { "Content-Type": METRICS_CONTENT_TYPE, "Cache-Control": "no-store" } });
  } catch (err) {
    logger().error({ err }, "metrics: the scrape failed");
    return plain(503, "The metrics could not be read from the database; the details are in the console's log.");
  }
}
