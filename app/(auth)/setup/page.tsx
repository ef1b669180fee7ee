import type { Metadata } from "next";
import { redirect } from "next/navigation";
import { readForPage } from "@/app/_lib/page-read";
import { SetupForm } from "@/components/auth/setup-form";
import { StorageUnavailable } from "@/components/shell/storage-unavailable";
import { getDb } from "@/lib/db";
import { countUsers, isSetupTokenValid } from "@/lib/users";

export const metadata: Metadata = { title: "Set up" };
export const dynamic = "force-dynamic";

export default async function SetupPage({ searchParams }: { searchParams: Promise<{ token?: string }> }) {
  const { token = "" } = await searchParams;
  const db = getDb();
  const read = await readForPage("the setup page", async () => ({ users: await countUsers(db), valid: await isSetupTokenValid(db, token) }));
  if (!read.ok) return <StorageUnavailable message={read.message} />;
  if (read.value.users > 0) redirect("/login");
  const { valid } = read.value;
  return (
    <main className="flex min-h-screen items-center justify-center px-4">
      <div className="w-full max-w-sm space-y-6">
        <div>
          <p className="text-sm font-semibold text-indigo-600">Portcullis</p>
          <h1 className="mt-1 text-2xl font-bold">Create the first admin</h1>
        </div>
        {valid ? (
          <SetupForm token={token} />
        ) : (
          <p className="rounded-md bg-red-50 px-3 py-2 text-sm text-red-700" data-testid="setup-invalid">
            This setup link is missing its token or is no longer valid. Use the link Portcullis printed when it started
            (restart it to print a new one), or run <code className="font-mono">portcullis user add</code>.
          </p>
        )}
      </div>
    </main>
  );
}
