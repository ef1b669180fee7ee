import { getDb } from "@/lib/db";
import { readLocalCa } from "@/lib/console/tls-store";

export const dynamic = "force-dynamic";

// Public, like /api/v1/health: clients fetch the local CA to pin or install it before they can trust
// the console. Only the certificate; its key never leaves the database sealed.
export async function GET(request: Request) {
  const ca = await readLocalCa(getDb());
  if (!ca) {
    return Response.json(
      {
        error: {
          code: "not_found",
          message:
            "this console has no local CA: it is created when the console serves HTTPS in auto mode on a non-loopback address (or when its certificate is regenerated in Settings → TLS)",
        },
      },
      { status: 404, headers: { "Cache-Control": "no-store" } },
    );
  }
  const format = new URL(request.url).searchParams.get("format");
  if (format === "pem") {
    return new Response(ca.certificatePem, {
      headers: { "Content-Type": "application/x-pem-file", "Content-Disposition": 'attachment; filename="portcullis-local-ca.pem"', "Cache-Control": "no-store" },
    });
  }
  if (format !== null && format !== "json") {
    return Response.json({ error: { code: "bad_request", message: "format must be pem or json (the default)" } }, { status: 400 });
  }
  return Response.json(
    {
      certificatePem: ca.certificatePem,
      fingerprintSha256: ca.facts.fingerprintSha256,
      fingerprintSha256Hex: ca.facts.fingerprintSha256.replace(/:/g, "").toLowerCase(),
      subject: ca.facts.subject,
      notAfter: ca.facts.notAfter,
    },
    { headers: { "Cache-Control": "no-store" } },
  );
}
