"use client";

import { useState } from "react";
import { Button } from "@/components/ui/button";
import { FormMessage, TextField } from "@/components/ui/field";

/** The key is released only after the admin re-enters their password; the server audits it. */
export function PrivateKeyDownload({ id }: { id: string }) {
  const [open, setOpen] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const [pending, setPending] = useState(false);

  async function download(formData: FormData) {
    setPending(true);
    setError(null);
    try {
      const response = await fetch(`/api/v1/certificates/${id}/private-key`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ password: formData.get("password") }),
      });
      if (!response.ok) {
        const body = (await response.json().catch(() => null)) as { error?: { message?: string } } | null;
        setError(body?.error?.message ?? `the server answered ${response.status}`);
        return;
      }
      const disposition = response.headers.get("content-disposition") ?? "";
      const fileName = /filename="([^"]+)"/.exec(disposition)?.[1] ?? "private-key.pem";
      const url = URL.createObjectURL(await response.blob());
      const link = document.createElement("a");
      link.href = url;
      link.download = fileName;
      link.click();
      URL.revokeObjectURL(url);
      setOpen(false);
    } catch {
      setError("could not reach the console; check your connection");
    } finally {
      setPending(false);
    }
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
      <FormMessage message={error} />
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
