import type { Metadata } from "next";
import { LoginForm } from "@/components/auth/login-form";
import { getDb } from "@/lib/db";
import { countUsers } from "@/lib/users";

export const metadata: Metadata = { title: "Sign in" };
export const dynamic = "force-dynamic";

export default async function LoginPage({ searchParams }: { searchParams: Promise<{ callbackUrl?: string }> }) {
  const { callbackUrl } = await searchParams;
  const noUsers = (await countUsers(getDb())) === 0;
  return (
    <main className="flex min-h-screen items-center justify-center px-4">
      <div className="w-full max-w-sm space-y-6">
        <div>
          <p className="text-sm font-semibold text-indigo-600">Portcullis</p>
          <h1 className="mt-1 text-2xl font-bold">Sign in</h1>
        </div>
        {noUsers ? (
          <p className="rounded-md bg-amber-50 px-3 py-2 text-sm text-amber-900">
            No account exists yet. Open the setup link that Portcullis printed when it started, or run{" "}
            <code className="font-mono">portcullis user add --email you@example.com --role admin</code>.
          </p>
        ) : null}
        <LoginForm callbackUrl={callbackUrl} />
      </div>
    </main>
  );
}
