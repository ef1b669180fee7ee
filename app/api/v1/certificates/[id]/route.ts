import { apiRoute } from "@/app/_lib/api";
import { deleteCertificate, requireCertificate } from "@/lib/certificates";
import { getDb } from "@/lib/db";

export const dynamic = "force-dynamic";

export const GET = apiRoute<{ id: string }>("viewer", async ({ params }) => {
  return Response.json(await requireCertificate(getDb(), params.id));
});

export const DELETE = apiRoute<{ id: string }>("admin", async ({ params, caller }) => {
  const cert = await deleteCertificate(getDb(), caller, params.id);
  return Response.json({ deleted: cert.id });
});
