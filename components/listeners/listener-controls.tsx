"use client";

import Link from "next/link";
import { useActionState, useState } from "react";
import { deleteListenerAction, toggleListenerAction } from "@/app/(console)/listeners/actions";
import { Button, secondaryLinkClass } from "@/components/ui/button";
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
        <form action={remove} role="alertdialog" aria-labelledby="delete-listener-title" className="w-full space-y-3 rounded-lg bg-red-50 p-4 ring-1 ring-red-200">
          <p id="delete-listener-title" className="text-sm text-red-900">
            Delete the listener <strong className="break-all">{name}</strong> and its mappings? Its port closes at once; the certificates stay.
          </p>
          <input type="hidden" name="id" value={id} />
          <FormMessage message={deleteState?.message} />
          <div className="flex gap-2">
            <Button type="submit" variant="danger" disabled={deleting}>
              {deleting ? "Deleting…" : "Yes, delete"}
            </Button>
            <Button type="button" variant="secondary" onClick={() => setConfirming(false)}>
              Cancel
            </Button>
          </div>
        </form>
      ) : null}
    </div>
  );
}
