"use client";

import { useActionState } from "react";
import { createUserAction } from "@/app/(console)/settings/actions";
import { Button } from "@/components/ui/button";
import { FormMessage, SelectField, TextField } from "@/components/ui/field";
import type { UserView } from "@/lib/users";

export function UserSettings({ users, isAdmin }: { users: UserView[]; isAdmin: boolean }) {
  const [state, action, pending] = useActionState(createUserAction, undefined);
  return (
    <div className="space-y-6">
      <h1 className="text-2xl font-bold">Users</h1>
      <ul className="divide-y divide-slate-100 rounded-lg bg-white text-sm ring-1 ring-slate-200">
        {users.map((u) => (
          <li key={u.id} className="flex justify-between px-4 py-2">
            <span>{u.email}</span>
            <span className="rounded bg-slate-100 px-1.5 py-0.5 text-xs">{u.role}</span>
          </li>
        ))}
      </ul>
      {isAdmin ? (
        <form action={action} className="max-w-lg space-y-3 rounded-lg bg-white p-4 ring-1 ring-slate-200">
          <h2 className="font-semibold">Add a user</h2>
          <TextField name="email" label="Email" type="email" required errors={state?.errors?.email} />
          <TextField name="password" label="Password" type="password" autoComplete="new-password" hint="At least 10 characters." required errors={state?.errors?.password} />
          <SelectField
            name="role"
            label="Role"
            defaultValue="viewer"
            options={[
              { value: "viewer", label: "Viewer (read-only)" },
              { value: "admin", label: "Admin" },
            ]}
            errors={state?.errors?.role}
          />
          <FormMessage message={state?.message} tone={state?.ok ? "success" : "error"} />
          <Button type="submit" disabled={pending}>
            Add user
          </Button>
        </form>
      ) : null}
    </div>
  );
}
