"use client";

import { useActionState } from "react";
import { createTokenAction, revokeTokenAction } from "@/app/(console)/settings/actions";
import { Button } from "@/components/ui/button";
import { FormMessage, TextField } from "@/components/ui/field";
import type { TokenView } from "@/lib/tokens";

export function TokenSettings({ tokens, isAdmin }: { tokens: TokenView[]; isAdmin: boolean }) {
  const [state, action, pending] = useActionState(createTokenAction, undefined);
  return (
    <div className="space-y-6">
      <div>
        <h1 className="text-2xl font-bold">API tokens</h1>
        <p className="text-sm text-slate-600">
          Send a token as <code className="font-mono">Authorization: Bearer pct_…</code>. A token acts with its owner&apos;s role.
        </p>
      </div>
      {isAdmin ? (
        <form action={action} className="max-w-lg space-y-3 rounded-lg bg-white p-4 ring-1 ring-slate-200">
          <TextField name="name" label="Token name" placeholder="backup script" errors={state?.errors?.name} required maxLength={100} />
          <FormMessage message={state?.message} tone={state?.ok ? "success" : "error"} />
          {state?.token ? (
            <p className="break-all rounded-md bg-slate-900 px-3 py-2 font-mono text-sm text-emerald-300" data-testid="new-token">
              {state.token}
            </p>
          ) : null}
          <Button type="submit" disabled={pending}>
            Create token
          </Button>
        </form>
      ) : null}
      <div className="overflow-x-auto rounded-lg bg-white ring-1 ring-slate-200">
        <table className="min-w-full divide-y divide-slate-200 text-sm">
          <thead className="bg-slate-50 text-left text-xs font-semibold uppercase text-slate-600">
            <tr>
              <th scope="col" className="px-4 py-2">Name</th>
              <th scope="col" className="px-4 py-2">Starts with</th>
              <th scope="col" className="px-4 py-2">Owner</th>
              <th scope="col" className="px-4 py-2">Last used</th>
              <th scope="col" className="px-4 py-2"><span className="sr-only">Actions</span></th>
            </tr>
          </thead>
          <tbody className="divide-y divide-slate-100">
            {tokens.length === 0 ? (
              <tr>
                <td colSpan={5} className="px-4 py-4 text-slate-500">No tokens.</td>
              </tr>
            ) : null}
            {tokens.map((t) => (
              <tr key={t.id}>
                <td className="px-4 py-2">{t.name}</td>
                <td className="px-4 py-2 font-mono text-xs">{t.prefix}…</td>
                <td className="px-4 py-2">{t.userEmail}</td>
                <td className="px-4 py-2">{t.revokedAt ? "revoked" : (t.lastUsedAt ?? "never")}</td>
                <td className="px-4 py-2 text-right">{isAdmin && !t.revokedAt ? <RevokeButton id={t.id} /> : null}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </div>
  );
}

function RevokeButton({ id }: { id: string }) {
  const [state, action, pending] = useActionState(revokeTokenAction, undefined);
  return (
    <form action={action}>
      <input type="hidden" name="id" value={id} />
      <Button variant="secondary" type="submit" disabled={pending}>
        Revoke
      </Button>
      {state?.message && !state.ok ? <span className="ml-2 text-xs text-red-700">{state.message}</span> : null}
    </form>
  );
}
