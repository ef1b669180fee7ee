"use client";

import { useActionState } from "react";
import { createSelfSigned } from "@/app/(console)/certificates/actions";
import { Button } from "@/components/ui/button";
import { FormMessage, SelectField, TextAreaField, TextField } from "@/components/ui/field";
import { SourceTabs } from "./source-tabs";

const KEY_TYPE_OPTIONS = [
  { value: "ecdsa-p256", label: "ECDSA P-256 (recommended)" },
  { value: "ecdsa-p384", label: "ECDSA P-384" },
  { value: "rsa-2048", label: "RSA 2048" },
  { value: "rsa-4096", label: "RSA 4096 (slow to generate)" },
];

export function NewSelfSignedForm() {
  const [state, action, pending] = useActionState(createSelfSigned, undefined);
  return (
    <div className="max-w-2xl space-y-6">
      <div>
        <h1 className="text-2xl font-bold">New certificate</h1>
        <SourceTabs current="self_signed" />
      </div>
      <form key={JSON.stringify(state?.values ?? null)} action={action} className="space-y-5 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200" noValidate>
        <TextAreaField
          name="domains"
          label="Names"
          rows={4}
          placeholder={"example.test\n*.example.test\n192.0.2.10"}
          hint="DNS names, wildcards (*.example.com) and IPv4/IPv6 addresses; one per line or separated by commas."
          errors={state?.errors?.domains}
          defaultValue={state?.values?.domains}
          required
        />
        <TextField name="name" label="Display name (optional)" placeholder="defaults to the first name" errors={state?.errors?.name} maxLength={100} defaultValue={state?.values?.name} />
        <div className="grid gap-5 sm:grid-cols-2">
          <SelectField name="keyType" label="Key type" options={KEY_TYPE_OPTIONS} defaultValue={state?.values?.keyType || "ecdsa-p256"} errors={state?.errors?.keyType} />
          <TextField
            name="validityDays"
            label="Validity (days)"
            type="number"
            inputMode="numeric"
            min={1}
            max={3650}
            defaultValue={state?.values?.validityDays || 365}
            hint="1 to 3650 days."
            errors={state?.errors?.validityDays}
          />
        </div>
        <FormMessage message={state?.message} />
        <Button type="submit" disabled={pending}>
          {pending ? "Creating…" : "Create certificate"}
        </Button>
      </form>
    </div>
  );
}
