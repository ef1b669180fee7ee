import { requirePageUser } from "@/app/_lib/session";
import { signOut } from "@/auth";
import { LiveEvents } from "@/components/events/live-events";
import { Nav } from "@/components/shell/nav";
import { QueryProvider } from "@/components/shell/query-provider";
import { ServiceBanner } from "@/components/shell/banner";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { latestEventId } from "@/lib/events";
import { serviceWarnings } from "@/lib/warnings";

export const dynamic = "force-dynamic";

export default async function ConsoleLayout({ children }: { children: React.ReactNode }) {
  // Taken before the page reads anything: the live stream starts here, so no change falls between.
  const streamCursor = await latestEventId(getDb());
  const user = await requirePageUser();
  async function signOutAction() {
    "use server";
    await signOut({ redirectTo: "/login" });
  }
  return (
    <QueryProvider>
      <LiveEvents startAfter={streamCursor}>
        <Nav email={user.email} role={user.role} signOutAction={signOutAction} />
        <ServiceBanner warnings={await serviceWarnings(getDb(), getConfig())} />
        <main className="mx-auto max-w-6xl px-4 py-6">{children}</main>
      </LiveEvents>
    </QueryProvider>
  );
}
