"use client";

import Link from "next/link";
import { useActionState } from "react";
import { serveCertificateAction } from "@/app/(console)/listeners/actions";
import { Button } from "@/components/ui/button";
import { FormMessage } from "@/components/ui/field";
import type { CertificatePlacement, ListenerChoice } from "@/components/listeners/data";

/** Where a certificate is served, and (for admins) one button per enabled HTTPS listener to serve it there. */
export function ServeOnListener({
  certificateId,
  listeners,
  placements,
  canServe,
}: {
  certificateId: string;
  listeners: ListenerChoice[];
  placements: CertificatePlacement[];
  canServe: boolean;
}) {
  return (
    <section aria-labelledby="listeners-heading" className="rounded-lg bg-white ring-1 ring-slate-200">
      <h2 id="listeners-heading" className="border-b border-slate-200 px-4 py-3 text-lg font-semibold">
        Listeners
      </h2>
      <div className="space-y-4 px-4 py-3 text-sm">
        {placements.length === 0 ? (
          <p className="text-slate-600" data-testid="placements-empty">
            Not served on any listener.
          </p>
        ) : (
          <ul className="space-y-1" data-testid="placements">
            {placements.map((p) => (
              <li key={p.listenerId}>
                <Link href={`/listeners/${p.listenerId}`} className="font-medium text-indigo-700 hover:underline">
                  {p.listenerName}
                </Link>
                {p.enabled ? "" : " (disabled)"}:{" "}
                {p.hostnames.length ? <span className="font-mono text-xs">{p.hostnames.join(", ")}</span> : null}
                {p.isDefault ? <span className="text-slate-600">{p.hostnames.length ? "; " : ""}the default certificate</span> : null}
              </li>
            ))}
          </ul>
        )}
        {canServe ? (
          listeners.length === 0 ? (
            <p className="text-slate-600">
              No enabled HTTPS listener.{" "}
              <Link href="/listeners/new" className="text-indigo-700 hover:underline">
                Create one
              </Link>{" "}
              to serve this certificate.
            </p>
          ) : (
            <div className="space-y-3">
              <p className="text-slate-600">Serving maps every DNS name of this certificate on the listener, replacing earlier mappings of those names.</p>
              {listeners.map((l) => (
                <ServeButton key={l.id} certificateId={certificateId} listener={l} />
              ))}
            </div>
          )
        ) : null}
      </div>
    </section>
  );
}

function ServeButton({ certificateId, listener }: { certificateId: string; listener: ListenerChoice }) {
  const [state, action, pending] = useActionState(serveCertificateAction, undefined);
  return (
    <form action={action} className="space-y-2" data-testid={`serve-${listener.name}`}>
      <input type="hidden" name="listenerId" value={listener.id} />
      <input type="hidden" name="certificateId" value={certificateId} />
      <div className="flex flex-wrap items-center gap-2">
        <Button type="submit" variant="secondary" disabled={pending}>
          {pending ? `Serving on ${listener.name}…` : `Serve on ${listener.name}`}
        </Button>
        <span className="font-mono text-xs text-slate-500">{listener.address}</span>
      </div>
      <FormMessage message={state?.message} tone={state?.ok ? "success" : "error"} />
      {state?.warnings?.length ? (
        <ul className="list-inside list-disc text-amber-800">
          {state.warnings.map((w) => (
            <li key={w}>{w}</li>
          ))}
        </ul>
      ) : null}
    </form>
  );
}
