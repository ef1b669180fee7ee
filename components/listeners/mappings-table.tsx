"use client";

import Link from "next/link";
import { useActionState } from "react";
import { removeMappingAction, saveMappingsAction, type ListenerActionState } from "@/app/(console)/listeners/actions";
import { Button } from "@/components/ui/button";
import { FormMessage } from "@/components/ui/field";
import type { MappingView } from "@/lib/listeners";
import type { CertificateOption } from "./data";
import { certificateOptionLabel } from "./labels";
import { currentCheck, ServedCheck, type ServedCheckView } from "./served-check";

// One form, two buttons: a row's Remove button is the submitter (and so sends "remove") only when it is clicked.
function submitMappings(prev: ListenerActionState, formData: FormData): Promise<ListenerActionState> {
  return formData.get("remove") ? removeMappingAction(prev, formData) : saveMappingsAction(prev, formData);
}

/**
 * Hostname → certificate, with what the edge really serves for each name. Admins change a row's
 * certificate and save them all at once, or remove one row.
 */
export function MappingsTable({
  listenerId,
  mappings,
  checks,
  certificates,
  isAdmin,
  listenerEnabled,
}: {
  listenerId: string;
  listenerEnabled: boolean;
  mappings: MappingView[];
  checks: ServedCheckView[];
  certificates: CertificateOption[];
  isAdmin: boolean;
}) {
  const [state, action, pending] = useActionState(submitMappings, undefined);
  const checkByHost = new Map(checks.map((c) => [c.hostname, c]));
  const fingerprintById = new Map(certificates.map((c) => [c.id, c.fingerprint]));
  if (mappings.length === 0) {
    return <p className="px-4 py-4 text-sm text-slate-600">No names are mapped yet: every handshake gets the default certificate, or the fallback.</p>;
  }
  return (
    <form action={action}>
      <input type="hidden" name="listenerId" value={listenerId} />
      <div className="overflow-x-auto">
        <table className="min-w-full divide-y divide-slate-200 text-sm" data-testid="mapping-table">
          <thead className="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-600">
            <tr>
              <th scope="col" className="px-4 py-3">Hostname</th>
              <th scope="col" className="px-4 py-3">Certificate</th>
              <th scope="col" className="px-4 py-3">Served now</th>
              {isAdmin ? (
                <th scope="col" className="px-4 py-3">
                  <span className="sr-only">Actions</span>
                </th>
              ) : null}
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100">
            {mappings.map((m) => (
              <tr key={m.hostname} data-testid={`mapping-${m.hostname}`} className="align-top">
                <td className="px-4 py-3 font-mono text-xs">{m.hostname}</td>
                <td className="px-4 py-3">
                  {isAdmin ? (
                    <>
                      <input type="hidden" name="hostname" value={m.hostname} />
                      <label htmlFor={`certificate-for-${m.hostname}`} className="sr-only">
                        Certificate for {m.hostname}
                      </label>
                      <select
                        id={`certificate-for-${m.hostname}`}
                        name="certificateId"
                        defaultValue={m.certificateId}
                        className="block w-full max-w-xs rounded-md border-0 px-2 py-1.5 text-slate-900 ring-1 ring-inset ring-slate-300 focus:ring-2 focus:ring-indigo-600 sm:text-sm"
                      >
                        {certificates.some((c) => c.id === m.certificateId) ? null : <option value={m.certificateId}>{m.certificateName}</option>}
                        {certificates.map((c) => (
                          <option key={c.id} value={c.id}>
                            {certificateOptionLabel(c)}
                          </option>
                        ))}
                      </select>
                    </>
                  ) : null}
                  <Link href={`/certificates/${m.certificateId}`} className={`text-indigo-700 hover:underline ${isAdmin ? "mt-1 inline-block text-xs" : ""}`}>
                    {isAdmin ? "open certificate" : m.certificateName}
                  </Link>
                  {m.warnings.length ? (
                    <ul className="mt-1 space-y-0.5 text-xs text-amber-800" data-testid={`warnings-${m.hostname}`}>
                      {m.warnings.map((w) => (
                        <li key={w}>⚠ {w}</li>
                      ))}
                    </ul>
                  ) : null}
                </td>
                <td className="px-4 py-3">
                  <ServedCheck
                    hostname={m.hostname}
                    check={currentCheck(checkByHost.get(m.hostname), fingerprintById.get(m.certificateId))}
                    listenerEnabled={listenerEnabled}
                  />
                </td>
                {isAdmin ? (
                  <td className="px-4 py-3 text-right">
                    <Button type="submit" variant="secondary" name="remove" value={m.hostname} disabled={pending} aria-label={`Remove ${m.hostname}`}>
                      Remove
                    </Button>
                  </td>
                ) : null}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {isAdmin ? (
        <div className="space-y-2 border-t border-slate-200 px-4 py-3">
          <FormMessage message={state?.message} tone={state?.ok ? "success" : "error"} />
          {state?.warnings?.length ? (
            <ul className="list-inside list-disc text-sm text-amber-800">
              {state.warnings.map((w) => (
                <li key={w}>{w}</li>
              ))}
            </ul>
          ) : null}
          {state?.errors?.mappings?.length ? (
            <ul className="list-inside list-disc text-sm text-red-700">
              {state.errors.mappings.map((e) => (
                <li key={e}>{e}</li>
              ))}
            </ul>
          ) : null}
          <Button type="submit" disabled={pending}>
            {pending ? "Saving…" : "Save mappings"}
          </Button>
        </div>
      ) : null}
    </form>
  );
}
