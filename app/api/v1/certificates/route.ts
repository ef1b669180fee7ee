import { apiRoute, readJson } from "@/app/_lib/api";
import { createSelfSignedCertificateRecord, listCertificates } from "@/lib/certificates";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { AppError } from "@/lib/errors";
import { getKeyring } from "@/lib/runtime";

export const dynamic = "force-dynamic";

export const GET = apiRoute("viewer", async ({ request }) => {
  const params = new URL(request.url).searchParams;
  const page = await listCertificates(getDb(), {
    limit: (params.get("limit") ?? undefined) as unknown as number | undefined,
    cursor: params.get("cursor") ?? undefined,
    status: (params.get("status") ?? undefined) as never,
  });
  return Response.json(page);
});

const SOURCES_LATER: Record<string, string> = {
  acme: "ACME certificates arrive with the ACME engine; create a self_signed certificate for now",
  upload: "uploads arrive with the listeners release; create a self_signed certificate for now",
  file: "certificates on disk arrive with the listeners release",
  local_ca: "local-CA certificates arrive with the console TLS release",
};

export const POST = apiRoute("admin", async ({ request, caller }) => {
  const body = await readJson(request);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new AppError("bad_request", "the body must be a JSON object, like {\"source\":\"self_signed\",\"domains\":[\"example.test\"]}");
  }
  const { source = "self_signed", ...rest } = body as Record<string, unknown>;
  if (source !== "self_signed") {
    const why = typeof source === "string" ? SOURCES_LATER[source] : undefined;
    throw new AppError("validation_failed", why ? `source "${source}" is not available yet: ${why}` : "source must be one of: self_signed", {
      source: ["accepted values: self_signed"],
    });
  }
  const cert = await createSelfSignedCertificateRecord(getDb(), getKeyring(getConfig()), caller, rest);
  return Response.json(cert, { status: 201, headers: { Location: `/api/v1/certificates/${cert.id}` } });
});
