import { apiRoute } from "@/app/_lib/api";
import { downloadFileName, requireCertificate } from "@/lib/certificates";
import { getDb } from "@/lib/db";
import { AppError } from "@/lib/errors";

export const dynamic = "force-dynamic";

/** The certificate chain in PEM (public material only). */
export const GET = apiRoute<{ id: string }>("viewer", async ({ params }) => {
  const cert = await requireCertificate(getDb(), params.id);
  if (!cert.chainPem) throw new AppError("not_found", `certificate "${cert.name}" has not been issued yet`);
  return new Response(cert.chainPem, {
    headers: {
      "Content-Type": "application/x-pem-file",
      "Content-Disposition": `attachment; filename="${downloadFileName(cert.name)}.pem"`,
      "Cache-Control": "no-store",
    },
  });
});
