"use client";

import { useId } from "react";
import { Button } from "./button";
import { FormMessage } from "./field";

/** The "are you sure?" step of a delete: a small alert dialog that posts the id to the action. */
export function ConfirmDeleteForm({
  action,
  id,
  question,
  pending,
  error,
  onCancel,
  className = "",
}: {
  action: (formData: FormData) => void;
  id: string;
  question: React.ReactNode;
  pending: boolean;
  error?: string | null;
  onCancel: () => void;
  className?: string;
}) {
  const titleId = useId();
  return (
    <form action={action} role="alertdialog" aria-labelledby={titleId} className={`w-full space-y-3 rounded-lg bg-red-50 p-4 ring-1 ring-red-200 ${className}`}>
      <p id={titleId} className="text-sm text-red-900">
        {question}
      </p>
      <input type="hidden" name="id" value={id} />
      <FormMessage message={error} />
      <div className="flex gap-2">
        <Button type="submit" variant="danger" disabled={pending}>
          {pending ? "Deleting…" : "Yes, delete"}
        </Button>
        <Button type="button" variant="secondary" onClick={onCancel}>
          Cancel
        </Button>
      </div>
    </form>
  );
}
