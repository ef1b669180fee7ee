import { TryAgain } from "./try-again";

/** In place of a page whose database reads failed: what happened, what to do, and a way to try again. */
export function StorageUnavailable({ message }: { message: string }) {
  return (
    <main className="flex min-h-screen items-center justify-center px-4">
      <div role="alert" data-testid="storage-unavailable" className="w-full max-w-lg space-y-4">
        <div>
          <p className="text-sm font-semibold text-indigo-600">Portcullis</p>
          <h1 className="mt-1 text-2xl font-bold">The console cannot read its database</h1>
        </div>
        <p className="rounded-md bg-red-50 px-3 py-2 text-sm text-red-800">{asSentence(message)}</p>
        <p className="text-sm text-slate-600">
          The worker&apos;s listeners keep serving the certificates they have loaded. Nothing was changed; this page works again as soon
          as the database answers.
        </p>
        <TryAgain />
      </div>
    </main>
  );
}

/** A failure message ("the database cannot be reached: …") as a sentence of its own. */
export const asSentence = (text: string) => `${text.charAt(0).toUpperCase()}${text.slice(1).replace(/\.$/, "")}.`;
