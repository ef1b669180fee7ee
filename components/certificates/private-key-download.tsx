"use client";

import { useState } from "react";
import { fetchFile } from "@/components/forms/api";
import { useApiSubmit } from "@/components/forms/use-api-submit";
import { Button } from "@/components/ui/button";
import { FormMessage, TextField } from "@/components/ui/field";

/** The key is released only after the admin re-enters their password; the server audits it. */
export function PrivateKeyDownload({ id }: { id: string }) {
  const [open, setOpen] = useState(false);
  const { pending, message, submit } = useApiSubmit();

  function download(formData: FormData) {
    return submit(
      () => fetchFile("POST", `/api/v1/certificates/${id}/private-key`, { password: formData.get("password") }),
      ({ blob, fileName }) => {
        const url = URL.createObjectURL(blob);
        const link = document.createElement("a");
        link.href = url;
        link.download = fileName ?? "private-key.pem";
        link.click();
        URL.revokeObjectURL(url);
        setOpen(false);
      },
    );
  }

  if (!open) {
    return (
      <span className="flex flex-wrap items-center gap-3">
        Stored sealed; never shown.
        <Button variant="secondary" type="button" onClick={() => setOpen(true)}>
          Download private key…
        </Button>
      </span>
    );
  }
  return (
    <form action={download} className="max-w-sm space-y-3">
      <TextField name="password" label="Re-enter your password to download the private key" type="password" autoComplete="current-password" required />
      <FormMessage message={message?.text} tone={message?.tone} />
      <div className="flex gap-2">
        <Button type="submit" disabled={pending}>
          {pending ? "Checking…" : "Download key"}
        </Button>
        <Button type="button" variant="secondary" onClick={() => setOpen(false)}>
          Cancel
        </Button>
      </div>
    </form>
  );
}
