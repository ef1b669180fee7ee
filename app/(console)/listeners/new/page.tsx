import type { Metadata } from "next";
import { requirePageUser } from "@/app/_lib/session";
import { loadIssuedCertificates } from "@/components/listeners/data";
import { ListenerForm } from "@/components/listeners/listener-form";
import { getDb } from "@/lib/db";

export const metadata: Metadata = { title: "New listener" };

export default async function NewListenerPage() {
  const user = await requirePageUser();
  if (user.role !== "admin") {
    return (
      <p className="rounded-md bg-amber-50 px-4 py-3 text-sm text-amber-900" data-testid="read-only-notice">
        Your account is read-only (viewer). Ask an admin to create listeners.
      </p>
    );
  }
  return <ListenerForm certificates={await loadIssuedCertificates(getDb())} />;
}
