"use client";

import Link from "next/link";
import { useActionState, useState } from "react";
import { deleteListenerAction, toggleListenerAction } from "@/app/(console)/listeners/actions";
import { Button, secondaryLinkClass } from "@/components/ui/button";
import { ConfirmDeleteForm } from "@/components/ui/confirm-delete";
import { FormMessage } from "@/components/ui/field";

/** Edit, enable/disable and delete (after a confirmation): the admin's buttons on a listener's page. */
export function ListenerControls({ id, name, enabled }: { id: string; name: string; enabled: boolean }) {
  const [confirming, setConfirming] = useState(false);
  const [toggleState, toggle, toggling] = useActionState(toggleListenerAction, undefined);
  const [deleteState, remove, deleting] = useActionState(deleteListenerAction, undefined);
  return (
    <div className="flex max-w-md flex-col items-end gap-2">
      <div className="flex flex-wrap justify-end gap-2">
        <Link href={`/listeners/${id}/edit`} className={secondaryLinkClass}>
          Edit
        </Link>
        <form action={toggle}>
          <input type="hidden" name="id" value={id} />
          <Button type="submit" variant="secondary" disabled={toggling}>
            {toggling ? "Saving…" : enabled ? "Disable" : "Enable"}
          </Button>
        </form>
        {confirming ? null : (
          <Button variant="secondary" onClick={() => setConfirming(true)}>
            Delete
          </Button>
        )}
      </div>
      <FormMessage message={toggleState?.message} tone={toggleState?.ok ? "success" : "error"} />
      {confirming ? (
        <ConfirmDeleteForm
          action={remove}
          id={id}
          question={
            <>
              Delete the listener <strong className="break-all">{name}</strong> and its mappings? Its port closes at once; the certificates stay.
            </>
          }
          pending={deleting}
          error={deleteState?.message}
          onCancel={() => setConfirming(false)}
        />
      ) : null}
    </div>
  );
}
