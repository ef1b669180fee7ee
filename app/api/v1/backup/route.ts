import { apiRoute, readJson } from "@/app/_lib/api";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { createBackupDownload } from "@/lib/ops/backup-download";
import { getKeyring } from "@/lib/runtime";

export const dynamic = "force-dynamic";

/** {password, passphrase} → the encrypted backup as a file (admins; the caller's password is checked again). */
export const POST = apiRoute("admin", async ({ request, caller }) => {
  const { bytes, fileName } = await createBackupDownload(getDb(), getKeyring(getConfig()), caller, await readJson(request));
  return new Response(new Uint8Array(bytes), {
    status: 200,
    headers: {
      "Content-Type": "application/octet-stream",
      "Content-Disposition": `attachment; filename="${fileName}"`,
      "Content-Length": String(bytes.length),
      "Cache-Control": "no-store",
    },
  });
});
