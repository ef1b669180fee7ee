"use client";

import { useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { postJson, type FieldErrors } from "@/components/forms/api";
import { notSent, renameFields, useApiSubmit } from "@/components/forms/use-api-submit";
import { Button } from "@/components/ui/button";
import { FormMessage, TextAreaField, TextField } from "@/components/ui/field";
import type { ConsoleTlsStatus } from "@/lib/console/tls-status";
import { tlsStatusKey } from "./tls-status-query";

const MAX_FILE_BYTES = 1024 * 1024;

/** The API may name a field by its body key or by a short name; both land on the same input. */
const FIELD_ALIASES: Record<string, string> = {
  certificatePem: "tlsCertificatePem",
  certificate: "tlsCertificatePem",
  chain: "tlsCertificatePem",
  privateKeyPem: "tlsPrivateKeyPem",
  keyPem: "tlsPrivateKeyPem",
  key: "tlsPrivateKeyPem",
  passphrase: "tlsPassphrase",
};

/** Upload PEMs for the console itself: certificate with its chain, the private key, and a passphrase if the key is encrypted. */
export function TlsUploadForm({ locked, switchesMode }: { locked?: string; switchesMode?: boolean }) {
  const queryClient = useQueryClient();
  const router = useRouter();
  const { pending, errors, message, setMessage, submit } = useApiSubmit();
  const [formKey, setFormKey] = useState(0);

  async function take(form: FormData, field: string, fileField: string, fileErrors: FieldErrors): Promise<string> {
    const file = form.get(fileField);
    if (file instanceof File && file.size > 0) {
      if (file.size > MAX_FILE_BYTES) {
        fileErrors[field] = [`${file.name} is ${(file.size / 1024 / 1024).toFixed(1)} MB; a PEM file is at most 1 MiB`];
        return "";
      }
      return file.text();
    }
    return String(form.get(field) ?? "");
  }

  function upload(form: FormData) {
    return submit(
      async () => {
        const fileErrors: FieldErrors = {};
        const certificatePem = (await take(form, "tlsCertificatePem", "tlsCertificateFile", fileErrors)).trim();
        const privateKeyPem = (await take(form, "tlsPrivateKeyPem", "tlsPrivateKeyFile", fileErrors)).trim();
        const passphrase = String(form.get("tlsPassphrase") ?? "");
        if (!certificatePem && !fileErrors.tlsCertificatePem) fileErrors.tlsCertificatePem = ["paste the certificate (and its chain) or choose its file"];
        if (!privateKeyPem && !fileErrors.tlsPrivateKeyPem) fileErrors.tlsPrivateKeyPem = ["paste the private key or choose its file"];
        if (Object.keys(fileErrors).length) return notSent("nothing was uploaded: check the highlighted fields", fileErrors);
        return postJson<ConsoleTlsStatus>("/api/v1/settings/tls/upload", { certificatePem, privateKeyPem, passphrase: passphrase || undefined });
      },
      (status) => {
        if (status && typeof status === "object" && "mode" in status) queryClient.setQueryData(tlsStatusKey, status);
        setFormKey((k) => k + 1);
        setMessage({
          text: status?.restartRequired ? `Saved. ${status.restartRequired}` : "Saved: the console serves this certificate now.",
          tone: "success",
        });
        router.refresh();
      },
      // Local keys (tlsCertificatePem, …) have no alias and pass through unchanged.
      { showFailure: renameFields((field) => FIELD_ALIASES[field] ?? field) },
    );
  }

  if (locked) {
    return (
      <p className="text-slate-600" data-testid="tls-upload-locked">
        Uploading is off: {locked === "PORTCULLIS_TLS_MODE" ? "the mode is set by PORTCULLIS_TLS_MODE" : `the console's certificate is set by ${locked}`}.
      </p>
    );
  }
  return (
    <form
      key={formKey}
      className="space-y-4 rounded-md bg-slate-50 p-4 ring-1 ring-slate-200"
      noValidate
      data-testid="tls-upload-form"
      onSubmit={(e) => {
        e.preventDefault();
        void upload(new FormData(e.currentTarget));
      }}
    >
      <h3 className="font-semibold">Upload a certificate for the console</h3>
      {switchesMode ? <p className="text-sm text-slate-600">Uploading switches the console to the provided mode and serves this certificate.</p> : null}
      <TextAreaField
        name="tlsCertificatePem"
        label="Console certificate and chain"
        rows={5}
        placeholder="-----BEGIN CERTIFICATE-----"
        hint="The server certificate first, then its intermediates."
        errors={errors.tlsCertificatePem}
        spellCheck={false}
      />
      <input type="file" name="tlsCertificateFile" aria-label="Console certificate file" accept=".pem,.crt,.cer" className="text-sm" />
      <TextAreaField name="tlsPrivateKeyPem" label="Console private key" rows={4} placeholder="-----BEGIN PRIVATE KEY-----" errors={errors.tlsPrivateKeyPem} spellCheck={false} />
      <input type="file" name="tlsPrivateKeyFile" aria-label="Console private key file" accept=".pem,.key" className="text-sm" />
      <TextField name="tlsPassphrase" label="Key passphrase (if the key is encrypted)" type="password" autoComplete="off" errors={errors.tlsPassphrase} />
      <FormMessage message={message?.text} tone={message?.tone} />
      <Button type="submit" disabled={pending}>
        {pending ? "Checking…" : "Upload and serve"}
      </Button>
    </form>
  );
}
