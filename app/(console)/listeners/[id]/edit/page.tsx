import type { Metadata } from "next";
import { notFound } from "next/navigation";
import { requirePageUser } from "@/app/_lib/session";
import { loadIssuedCertificates } from "@/components/listeners/data";
import { ListenerForm } from "@/components/listeners/listener-form";
import { getDb } from "@/lib/db";
import { getListener } from "@/lib/listeners";

export const metadata: Metadata = { title: "Edit listener" };

export default async function EditListenerPage({ params }: { params: Promise<{ id: string }> }) {
  const { id } = await params;
  const user = await requirePageUser();
  const listener = await getListener(getDb(), id);
  if (!listener) notFound();
  if (user.role !== "admin") {
    return (
      <p className="rounded-md bg-amber-50 px-4 py-3 text-sm text-amber-900" data-testid="read-only-notice">
        Your account is read-only (viewer). Ask an admin to change listeners.
      </p>
    );
  }
  return <ListenerForm listener={listener} certificates={await loadIssuedCertificates(getDb())} />;
}
