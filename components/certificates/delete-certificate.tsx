"use client";

import { useActionState, useState } from "react";
import { deleteCertificateAction } from "@/app/(console)/certificates/actions";
import { Button } from "@/components/ui/button";
import { ConfirmDeleteForm } from "@/components/ui/confirm-delete";

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
    <ConfirmDeleteForm
      action={action}
      id={id}
      className="max-w-sm"
      question={
        <>
          Delete <strong className="break-all">{name}</strong> and all its versions? This cannot be undone.
        </>
      }
      pending={pending}
      error={state?.message}
      onCancel={() => setConfirming(false)}
    />
  );
}
