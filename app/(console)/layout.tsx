import { requirePageUser } from "@/app/_lib/session";
import { signOut } from "@/auth";
import { Nav } from "@/components/shell/nav";
import { ServiceBanner } from "@/components/shell/banner";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { serviceWarnings } from "@/lib/warnings";

export const dynamic = "force-dynamic";

export default async function ConsoleLayout({ children }: { children: React.ReactNode }) {
  const user = await requirePageUser();
  async function signOutAction() {
    "use server";
    await signOut({ redirectTo: "/login" });
  }
  return (
    <>
      <Nav email={user.email} role={user.role} signOutAction={signOutAction} />
      <ServiceBanner warnings={await serviceWarnings(getDb(), getConfig())} />
      <main className="mx-auto max-w-6xl px-4 py-6">{children}</main>
    </>
  );
}
