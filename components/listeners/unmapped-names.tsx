"use client";

import Link from "next/link";
import { useActionState } from "react";
import { addMappingAction } from "@/app/(console)/listeners/actions";
import { Button } from "@/components/ui/button";
import type { UnmappedName } from "./data";

/** Names clients asked for that got the fallback certificate, each with the certificates that would cover it. */
export function UnmappedNames({ listenerId, names, isAdmin }: { listenerId: string; names: UnmappedName[]; isAdmin: boolean }) {
  if (names.length === 0) {
    return <p className="px-4 py-4 text-sm text-slate-600">No client asked for an unmapped name in the last 7 days.</p>;
  }
  return (
    <ul className="divide-y divide-slate-100 text-sm">
      {names.map((n) => (
        <UnmappedNameRow key={n.serverName} listenerId={listenerId} name={n} isAdmin={isAdmin} />
      ))}
    </ul>
  );
}

function UnmappedNameRow({ listenerId, name, isAdmin }: { listenerId: string; name: UnmappedName; isAdmin: boolean }) {
  const [state, action, pending] = useActionState(addMappingAction, undefined);
  const selectId = `suggestion-for-${name.serverName}`;
  const seen = `${name.times} time${name.times === 1 ? "" : "s"}, last ${name.lastSeen.slice(0, 16).replace("T", " ")} UTC`;
  const problem = state && !state.ok ? [state.message, ...Object.values(state.errors ?? {}).flat()].filter(Boolean).join(": ") : undefined;
  return (
    <li className="flex flex-wrap items-center justify-between gap-3 px-4 py-3" data-testid={`unmapped-${name.serverName}`}>
      <div>
        <p className="font-mono text-xs">{name.serverName}</p>
        <p className="text-xs text-slate-500">Fallback served {seen}</p>
      </div>
      {name.suggestions.length === 0 ? (
        <p className="text-slate-600">
          No certificate covers this name.{" "}
          {isAdmin ? (
            <Link href="/certificates/new" className="text-indigo-700 hover:underline">
              Create one
            </Link>
          ) : null}
        </p>
      ) : isAdmin ? (
        <form action={action} className="flex flex-wrap items-center gap-2">
          <input type="hidden" name="listenerId" value={listenerId} />
          <input type="hidden" name="hostname" value={name.serverName} />
          <label htmlFor={selectId} className="sr-only">
            Certificate for {name.serverName}
          </label>
          <select
            id={selectId}
            name="certificateId"
            defaultValue={name.suggestions[0].id}
            className="rounded-md border-0 px-2 py-1.5 text-slate-900 ring-1 ring-inset ring-slate-300 focus:ring-2 focus:ring-indigo-600 sm:text-sm"
          >
            {name.suggestions.map((s) => (
              <option key={s.id} value={s.id}>
                {s.name}
                {s.status === "active" ? "" : ` (${s.status})`}
              </option>
            ))}
          </select>
          <Button type="submit" disabled={pending} aria-label={`Map ${name.serverName}`}>
            {pending ? "Mapping…" : "Map"}
          </Button>
          {problem ? (
            <p role="status" className="w-full text-sm text-red-700">
              {problem}
            </p>
          ) : null}
        </form>
      ) : (
        <p className="text-slate-600">Covered by: {name.suggestions.map((s) => s.name).join(", ")}</p>
      )}
    </li>
  );
}
