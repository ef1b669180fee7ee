import { readForPage } from "@/app/_lib/page-read";
import { requirePageUser } from "@/app/_lib/session";
import { signOut } from "@/auth";
import { LiveEvents } from "@/components/events/live-events";
import { Nav } from "@/components/shell/nav";
import { QueryProvider } from "@/components/shell/query-provider";
import { ServiceBanner } from "@/components/shell/banner";
import { StorageUnavailable } from "@/components/shell/storage-unavailable";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { latestEventId } from "@/lib/events";
import { serviceWarnings } from "@/lib/warnings";

export const dynamic = "force-dynamic";

export default async function ConsoleLayout({ children }: { children: React.ReactNode }) {
  const shell = await readForPage("the console's page", async () => ({
    // Taken before the page reads anything: the live stream starts here, so no change falls between.
    streamCursor: await latestEventId(getDb()),
    user: await requirePageUser(),
    warnings: await serviceWarnings(getDb(), getConfig()),
  }));
  // The database is down or locked: the page would fail too, so it is not rendered.
  if (!shell.ok) return <StorageUnavailable message={shell.message} />;
  const { streamCursor, user, warnings } = shell.value;
  async function signOutAction() {
    "use server";
    await signOut({ redirectTo: "/login" });
  }
  return (
    <QueryProvider>
      <LiveEvents startAfter={streamCursor}>
        <Nav email={user.email} role={user.role} signOutAction={signOutAction} />
        <ServiceBanner warnings={warnings} />
        <main className="mx-auto max-w-6xl px-4 py-6">{children}</main>
      </LiveEvents>
    </QueryProvider>
  );
}
