import { apiRoute, MAX_UPLOAD_BODY_BYTES, readJson } from "@/app/_lib/api";
import { addCertificateVersion, toUploadInput } from "@/lib/certificates/imported";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { getKeyring } from "@/lib/runtime";

export const dynamic = "force-dynamic";

/** A new version of an uploaded certificate; earlier versions stay in its history. */
export const POST = apiRoute<{ id: string }>("admin", async ({ request, params, caller }) => {
  const { upload } = toUploadInput(await readJson(request, MAX_UPLOAD_BODY_BYTES));
  const result = await addCertificateVersion(getDb(), getKeyring(getConfig()), caller, params.id, upload, "new version uploaded");
  return Response.json({ ...result.certificate, warnings: result.warnings }, { status: 201 });
});
