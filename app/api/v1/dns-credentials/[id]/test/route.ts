import { apiRoute, readJson } from "@/app/_lib/api";
import { getDb } from "@/lib/db";
import { requestZoneTest } from "@/lib/dns/credentials";

export const dynamic = "force-dynamic";

/** {zone}: queues a test that the worker runs (create a TXT record, wait until it is seen, delete it); 202 with the test. */
export const POST = apiRoute<{ id: string }>("admin", async ({ request, params, caller }) => {
  const test = await requestZoneTest(getDb(), caller, params.id, await readJson(request));
  return Response.json(test, { status: 202, headers: { Location: `/api/v1/dns-credentials/${params.id}/tests/${test.id}` } });
});
