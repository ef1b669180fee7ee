import { apiRoute, MAX_UPLOAD_BODY_BYTES, readJson } from "@/app/_lib/api";
import { previewUpload, toUploadInput } from "@/lib/certificates/imported";
import { validateUpload } from "@/lib/pki/upload";

export const dynamic = "force-dynamic";

/** Validates an upload and shows what it holds (names, issuer, expiry, warnings); saves nothing. */
export const POST = apiRoute("admin", async ({ request }) => {
  const { upload } = toUploadInput(await readJson(request, MAX_UPLOAD_BODY_BYTES));
  return Response.json(previewUpload(validateUpload(upload)));
});
