import { apiRoute, MAX_UPLOAD_BODY_BYTES, readJson } from "@/app/_lib/api";
import { createAcmeCertificate } from "@/lib/acme/certificates";
import { createSelfSignedCertificateRecord, listCertificates } from "@/lib/certificates";
import { createImportedCertificate, registerFileCertificate, toUploadInput } from "@/lib/certificates/imported";
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
  local_ca: "local-CA certificates arrive with the console TLS release",
};
const SOURCES = "acme, self_signed, upload, file";

export const POST = apiRoute("admin", async ({ request, caller }) => {
  const body = await readJson(request, MAX_UPLOAD_BODY_BYTES);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new AppError("bad_request", "the body must be a JSON object, like {\"source\":\"self_signed\",\"domains\":[\"example.test\"]}");
  }
  const { source = "self_signed", ...rest } = body as Record<string, unknown>;
  const db = getDb();
  const keyring = getKeyring(getConfig());
  const created = (cert: { id: string }, warnings: string[] = []) =>
    Response.json({ ...cert, warnings }, { status: 201, headers: { Location: `/api/v1/certificates/${cert.id}` } });
  if (source === "acme") {
    const result = await createAcmeCertificate(db, keyring, getConfig(), caller, rest);
    return created(result.certificate, result.warnings);
  }
  if (source === "self_signed") return created(await createSelfSignedCertificateRecord(db, keyring, caller, rest));
  if (source === "upload") {
    const { name, upload } = toUploadInput(rest);
    const result = await createImportedCertificate(db, keyring, caller, { name, upload });
    return created(result.certificate, result.warnings);
  }
  if (source === "file") {
    const result = await registerFileCertificate(db, keyring, caller, rest);
    return created(result.certificate, result.warnings);
  }
  const why = typeof source === "string" ? SOURCES_LATER[source] : undefined;
  throw new AppError("validation_failed", why ? `source "${source}" is not available yet: ${why}` : `source must be one of: ${SOURCES}`, {
    source: [`accepted values: ${SOURCES}`],
  });
});
