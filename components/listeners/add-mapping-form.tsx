"use client";

import { useActionState } from "react";
import { addMappingAction } from "@/app/(console)/listeners/actions";
import { Button } from "@/components/ui/button";
import { FormMessage, SelectField, TextField } from "@/components/ui/field";
import type { CertificateOption } from "./data";
import { certificateOptionLabel } from "./labels";

export function AddMappingForm({ listenerId, certificates }: { listenerId: string; certificates: CertificateOption[] }) {
  const [state, action, pending] = useActionState(addMappingAction, undefined);
  if (certificates.length === 0) {
    return <p className="text-sm text-slate-600">Create or issue a certificate first; then map names to it here.</p>;
  }
  return (
    <form action={action} className="space-y-4" noValidate aria-labelledby="add-mapping-heading">
      <input type="hidden" name="listenerId" value={listenerId} />
      <div className="grid gap-4 sm:grid-cols-2">
        <TextField
          name="hostname"
          label="Hostname"
          placeholder="www.example.com or *.example.com"
          hint="The SNI name clients ask for; a wildcard covers one label."
          errors={state?.errors?.hostname}
          required
        />
        <SelectField
          name="certificateId"
          label="Certificate"
          options={certificates.map((c) => ({ value: c.id, label: certificateOptionLabel(c) }))}
          errors={state?.errors?.certificateId}
        />
      </div>
      <FormMessage message={state?.message} tone={state?.ok ? "success" : "error"} />
      {state?.ok && state.warnings?.length ? (
        <ul className="list-inside list-disc text-sm text-amber-800">
          {state.warnings.map((w) => (
            <li key={w}>{w}</li>
          ))}
        </ul>
      ) : null}
      <Button type="submit" disabled={pending}>
        {pending ? "Adding…" : "Add mapping"}
      </Button>
    </form>
  );
}
