import { apiRoute, MAX_UPLOAD_BODY_BYTES, readJson } from "@/app/_lib/api";
import { getConfig } from "@/lib/config";
import { uploadConsoleCertificate } from "@/lib/console/tls-settings";
import { getDb } from "@/lib/db";
import { getKeyring } from "@/lib/runtime";

export const dynamic = "force-dynamic";

/** {certificatePem, privateKeyPem, passphrase?}: checked like a certificate upload, stored sealed, served at once (mode provided). */
export const POST = apiRoute("admin", async ({ request, caller }) => {
  const config = getConfig();
  const status = await uploadConsoleCertificate(getDb(), getKeyring(config), config, caller, await readJson(request, MAX_UPLOAD_BODY_BYTES));
  return Response.json(status, { headers: { "Cache-Control": "no-store" } });
});
