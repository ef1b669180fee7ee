"use client";

import { useRouter } from "next/navigation";
import { postJson } from "@/components/forms/api";
import { useApiSubmit } from "@/components/forms/use-api-submit";
import { Button } from "@/components/ui/button";
import { FormMessage, TextField } from "@/components/ui/field";
import { SourceTabs } from "./source-tabs";

/** Certificates another tool keeps on disk, like certbot's fullchain.pem and privkey.pem. */
export function RegisterFileForm() {
  const router = useRouter();
  const { pending, errors, message, submit } = useApiSubmit();

  function register(form: FormData) {
    return submit(
      () =>
        postJson<{ id: string }>("/api/v1/certificates", {
          source: "file",
          name: form.get("name"),
          certPath: form.get("certPath"),
          keyPath: form.get("keyPath"),
        }),
      (created) => {
        router.push(`/certificates/${created.id}`);
        router.refresh();
      },
      { showFailure: ({ fields, ...failure }) => ({ ...failure, fields: { ...fields, certPath: fields.certPath ?? fields.certificate ?? [], keyPath: fields.keyPath ?? fields.key ?? [] } }) },
    );
  }

  return (
    <div className="max-w-2xl space-y-6">
      <div>
        <h1 className="text-2xl font-bold">New certificate</h1>
        <SourceTabs current="file" />
      </div>
      <form onSubmit={(e) => { e.preventDefault(); void register(new FormData(e.currentTarget)); }} className="space-y-5 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200" noValidate>
        <p className="text-sm text-slate-600">
          Portcullis reads the files now, and again within seconds whenever they change; if a change leaves them broken, the last good
          certificate keeps serving and an event says why.
        </p>
        <TextField name="name" label="Display name (optional)" maxLength={100} errors={errors.name} />
        <TextField name="certPath" label="Certificate file (full chain)" placeholder="/etc/letsencrypt/live/example.com/fullchain.pem" errors={errors.certPath} required />
        <TextField name="keyPath" label="Private key file" placeholder="/etc/letsencrypt/live/example.com/privkey.pem" errors={errors.keyPath} required />
        <FormMessage message={message?.text} tone={message?.tone} />
        <Button type="submit" disabled={pending}>
          {pending ? "Reading…" : "Register"}
        </Button>
      </form>
    </div>
  );
}
