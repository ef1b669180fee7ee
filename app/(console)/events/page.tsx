import type { Metadata } from "next";
import { EVENTS_PAGE_SIZE } from "@/components/events/display";
import { EventList } from "@/components/events/event-list";
import { listCertificates } from "@/lib/certificates";
import { getDb } from "@/lib/db";
import { listEventTypes } from "@/lib/events";
import { checkEventListQuery, listEventPage, resolveEventFilter, type EventListQuery } from "@/lib/events/query";

export const metadata: Metadata = { title: "Events" };

type SearchParams = Record<string, string | string[] | undefined>;

export default async function EventsPage({ searchParams }: { searchParams: Promise<SearchParams> }) {
  const db = getDb();
  const checked = checkEventListQuery(await searchParams);
  const query: Partial<EventListQuery> = checked.ok ? checked.query : {};
  const filters = { type: query.type, severity: query.severity, certificate: query.certificate };
  const [initial, types, certificates, resolved] = await Promise.all([
    listEventPage(db, { ...filters, order: "newest", limit: EVENTS_PAGE_SIZE }),
    listEventTypes(db),
    listCertificates(db, { limit: 200 }),
    resolveEventFilter(db, filters),
  ]);
  const named = certificates.items.find((c) => c.id === resolved.certificateId);
  const certificateLabel = named?.name ?? (filters.certificate ? await certificateName(db, resolved.certificateId) : null);
  return (
    <EventList
      filters={filters}
      initial={initial}
      types={types}
      certificates={certificates.items.map((c) => ({ id: c.id, name: c.name }))}
      certificateLabel={certificateLabel}
      problem={checked.ok ? null : checked.message}
    />
  );
}

async function certificateName(db: ReturnType<typeof getDb>, id: string | undefined) {
  if (!id) return null;
  const row = await db.selectFrom("certificates").select("name").where("id", "=", id).executeTakeFirst();
  return row?.name ?? null;
}
