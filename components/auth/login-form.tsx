"use client";

import { useActionState } from "react";
import { authenticate } from "@/app/(auth)/login/actions";
import { Button } from "@/components/ui/button";
import { FormMessage, TextField } from "@/components/ui/field";

export function LoginForm({ callbackUrl }: { callbackUrl?: string }) {
  const [state, action, pending] = useActionState(authenticate, undefined);
  return (
    <form action={action} className="space-y-4 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200">
      <TextField name="email" label="Email" type="email" autoComplete="username" required errors={state?.errors?.email} />
      <TextField name="password" label="Password" type="password" autoComplete="current-password" required errors={state?.errors?.password} />
      <input type="hidden" name="callbackUrl" value={callbackUrl ?? "/"} />
      <FormMessage message={state?.message} />
      <Button type="submit" disabled={pending} className="w-full">
        {pending ? "Signing in…" : "Sign in"}
      </Button>
    </form>
  );
}
