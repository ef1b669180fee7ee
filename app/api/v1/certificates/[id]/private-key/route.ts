import { z } from "zod";
import { apiRoute, readJson } from "@/app/_lib/api";
import { downloadFileName, exportPrivateKey } from "@/lib/certificates";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { AppError } from "@/lib/errors";
import { getKeyring } from "@/lib/runtime";
import { checkPassword } from "@/lib/users";

export const dynamic = "force-dynamic";

const bodySchema = z.object({ password: z.string({ error: "enter your password" }).min(1, "enter your password").max(1000) });

/** Admins only, and only after re-entering their password; every download is audited. */
export const POST = apiRoute<{ id: string }>("admin", async ({ request, params, caller }) => {
  const parsed = bodySchema.safeParse(await readJson(request));
  if (!parsed.success) throw new AppError("validation_failed", "enter your password to download the private key", { password: ["enter your password"] });
  if (!(await checkPassword(getDb(), caller.id, parsed.data.password))) {
    throw new AppError("forbidden", "that password is not right; the private key was not released", { password: ["wrong password"] });
  }
  const key = await exportPrivateKey(getDb(), getKeyring(getConfig()), caller, params.id);
  return new Response(key.pem, {
    headers: {
      "Content-Type": "application/x-pem-file",
      "Content-Disposition": `attachment; filename="${downloadFileName(key.name)}.key.pem"`,
      "Cache-Control": "no-store",
    },
  });
});
