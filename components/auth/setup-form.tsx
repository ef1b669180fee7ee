"use client";

import { useActionState } from "react";
import { createFirstAdmin } from "@/app/(auth)/setup/actions";
import { Button } from "@/components/ui/button";
import { FormMessage, TextField } from "@/components/ui/field";

export function SetupForm({ token }: { token: string }) {
  const [state, action, pending] = useActionState(createFirstAdmin, undefined);
  return (
    <form action={action} className="space-y-4 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200">
      <input type="hidden" name="token" value={token} />
      <TextField name="email" label="Email" type="email" autoComplete="username" required errors={state?.errors?.email} />
      <TextField name="password" label="Password" type="password" autoComplete="new-password" hint="At least 10 characters." required errors={state?.errors?.password} />
      <TextField name="confirm" label="Repeat the password" type="password" autoComplete="new-password" required errors={state?.errors?.confirm} />
      <FormMessage message={state?.message} />
      <Button type="submit" disabled={pending} className="w-full">
        {pending ? "Creating…" : "Create admin"}
      </Button>
    </form>
  );
}
