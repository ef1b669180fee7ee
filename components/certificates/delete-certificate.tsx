"use client";

import { useActionState, useState } from "react";
import { deleteCertificateAction } from "@/app/(console)/certificates/actions";
import { Button } from "@/components/ui/button";
import { FormMessage } from "@/components/ui/field";

export function DeleteCertificate({ id, name }: { id: string; name: string }) {
  const [confirming, setConfirming] = useState(false);
  const [state, action, pending] = useActionState(deleteCertificateAction, undefined);
  if (!confirming) {
    return (
      <Button variant="secondary" onClick={() => setConfirming(true)}>
        Delete
      </Button>
    );
  }
  return (
    <form action={action} role="alertdialog" aria-labelledby="delete-title" className="w-full max-w-sm space-y-3 rounded-lg bg-red-50 p-4 ring-1 ring-red-200">
      <p id="delete-title" className="text-sm text-red-900">
        Delete <strong className="break-all">{name}</strong> and all its versions? This cannot be undone.
      </p>
      <input type="hidden" name="id" value={id} />
      <FormMessage message={state?.message} />
      <div className="flex gap-2">
        <Button type="submit" variant="danger" disabled={pending}>
          {pending ? "Deleting…" : "Yes, delete"}
        </Button>
        <Button type="button" variant="secondary" onClick={() => setConfirming(false)}>
          Cancel
        </Button>
      </div>
    </form>
  );
}
