import type { Metadata } from "next";
import { readForPage } from "@/app/_lib/page-read";
import { LoginForm } from "@/components/auth/login-form";
import { asSentence } from "@/components/shell/storage-unavailable";
import { getDb } from "@/lib/db";
import { countUsers } from "@/lib/users";

export const metadata: Metadata = { title: "Sign in" };
export const dynamic = "force-dynamic";

export default async function LoginPage({ searchParams }: { searchParams: Promise<{ callbackUrl?: string }> }) {
  const { callbackUrl } = await searchParams;
  const users = await readForPage("the sign-in page", () => countUsers(getDb()));
  return (
    <main className="flex min-h-screen items-center justify-center px-4">
      <div className="w-full max-w-sm space-y-6">
        <div>
          <p className="text-sm font-semibold text-indigo-600">Portcullis</p>
          <h1 className="mt-1 text-2xl font-bold">Sign in</h1>
        </div>
        {!users.ok ? (
          <p role="alert" data-testid="storage-unavailable" className="rounded-md bg-red-50 px-3 py-2 text-sm text-red-800">
            You cannot sign in right now. {asSentence(users.message)}
          </p>
        ) : users.value === 0 ? (
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
