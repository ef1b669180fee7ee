import { apiRoute, readJson } from "@/app/_lib/api";
import { requestRenewal } from "@/lib/acme/certificates";
import { getDb } from "@/lib/db";
import { AppError } from "@/lib/errors";

export const dynamic = "force-dynamic";

/** "Renew now" / "Retry now": the worker acts within a second. Body (optional): {"force": true} to override rate limits. */
export const POST = apiRoute<{ id: string }>("admin", async ({ request, params, caller }) => {
  let force = false;
  if (request.headers.get("content-type")) {
    const body = await readJson(request);
    if (body !== null && (typeof body !== "object" || Array.isArray(body))) throw new AppError("bad_request", 'the body must be a JSON object, like {"force": true}, or empty');
    const value = (body as { force?: unknown } | null)?.force;
    if (value !== undefined && typeof value !== "boolean") throw new AppError("validation_failed", "force must be true or false", { force: ["true or false"] });
    force = value === true;
  }
  return Response.json(await requestRenewal(getDb(), caller, params.id, { force }), { status: 202 });
});
