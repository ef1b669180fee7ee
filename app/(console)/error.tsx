"use client";

import { useEffect, useState } from "react";
import { TryAgain } from "@/components/shell/try-again";

type Database = "checking" | "ok" | "unreachable" | "console-unreachable";

/**
 * A console page that failed to render. Next sends the browser only a reference (the digest) for a
 * server error, so the health check says whether the database is the cause; the reference finds the
 * error in the console's log. An error without a digest happened in the browser.
 */
export default function ConsoleError({ error, retry }: { error: unknown; retry: () => void }) {
  const [database, setDatabase] = useState<Database>("checking");
  const digest = error instanceof Error ? (error as Error & { digest?: string }).digest : undefined;
  useEffect(() => {
    let current = true;
    fetch("/api/v1/health", { cache: "no-store" })
      .then((res) => res.json() as Promise<{ database?: string }>)
      .then((body) => current && setDatabase(body.database === "ok" ? "ok" : "unreachable"))
      .catch(() => current && setDatabase("console-unreachable"));
    return () => {
      current = false;
    };
  }, [error]);
  return (
    <div role="alert" data-testid="page-error" className="max-w-2xl space-y-3">
      <h1 className="text-2xl font-bold">This page could not be loaded</h1>
      {database === "unreachable" ? (
        <p className="rounded-md bg-red-50 px-3 py-2 text-sm text-red-800">
          The console cannot read its database. On PostgreSQL, check that the server is running and that DATABASE_URL
          points at it; on SQLite, that no other process holds the file locked. The worker&apos;s listeners keep serving
          the certificates they have loaded.
        </p>
      ) : database === "console-unreachable" ? (
        <p className="rounded-md bg-red-50 px-3 py-2 text-sm text-red-800">The console itself is not answering: it may be restarting.</p>
      ) : database === "ok" ? (
        <p className="text-sm text-slate-700">
          Something went wrong {digest ? "on the server while loading it" : "in the browser while showing it"}; nothing was changed.
        </p>
      ) : null}
      {digest ? (
        <p className="text-sm text-slate-600">
          The console&apos;s log has the details (reference <code className="font-mono">{digest}</code>).
        </p>
      ) : null}
      <TryAgain onClick={retry} />
    </div>
  );
}
