import { z } from "zod";
import { apiRoute } from "@/app/_lib/api";
import { getDb } from "@/lib/db";
import { AppError } from "@/lib/errors";
import { listEvents } from "@/lib/events";

export const dynamic = "force-dynamic";

const querySchema = z.object({
  after: z.coerce.number({ error: "after must be an event id" }).int().min(0).optional(),
  certificate: z.string().max(100).optional(),
  limit: z.coerce.number({ error: "limit must be a number" }).int().min(1).max(500).default(100),
});

export const GET = apiRoute("viewer", async ({ request }) => {
  const parsed = querySchema.safeParse(Object.fromEntries(new URL(request.url).searchParams));
  if (!parsed.success) throw new AppError("validation_failed", parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  const events = await listEvents(getDb(), { after: parsed.data.after, certificateId: parsed.data.certificate, limit: parsed.data.limit });
  return Response.json({ items: events, cursor: events.at(-1)?.id ?? parsed.data.after ?? null });
});
