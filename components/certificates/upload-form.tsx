"use client";

import { useRouter } from "next/navigation";
import { useState } from "react";
import { postJson, type FieldErrors } from "@/components/forms/api";
import { notSent, useApiSubmit, type SubmitOutcome } from "@/components/forms/use-api-submit";
import { Button } from "@/components/ui/button";
import { FormMessage, TextAreaField, TextField } from "@/components/ui/field";
import type { UploadPreview } from "@/lib/certificates/imported";
import { SourceTabs } from "./source-tabs";

const MAX_FILE_BYTES = 1024 * 1024;

async function readFile(file: File, as: "text" | "base64"): Promise<string> {
  if (as === "text") return file.text();
  const bytes = new Uint8Array(await file.arrayBuffer());
  let binary = "";
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary);
}

/**
 * Paste or choose PEM files (certificate or full chain, key, optional chain), or a PKCS#12 file.
 * "Check" validates on the server and shows what the certificate holds; "Save" stores it.
 * With `certificateId`, the upload becomes a new version of that certificate.
 */
export function UploadCertificateForm({ certificateId, certificateName }: { certificateId?: string; certificateName?: string }) {
  const router = useRouter();
  const [mode, setMode] = useState<"pem" | "pkcs12">("pem");
  const [preview, setPreview] = useState<UploadPreview | null>(null);
  const { pending, errors, message, submit } = useApiSubmit();

  /** The request body, or the fields whose files cannot be sent. */
  async function bodyFrom(form: FormData): Promise<SubmitOutcome<Record<string, unknown>>> {
    const fileErrors: FieldErrors = {};
    const take = async (field: string, fileField: string, as: "text" | "base64") => {
      const file = form.get(fileField);
      if (file instanceof File && file.size > 0) {
        if (file.size > MAX_FILE_BYTES) {
          fileErrors[field] = [`${file.name} is ${(file.size / 1024 / 1024).toFixed(1)} MB; a certificate file is at most 1 MiB`];
          return "";
        }
        return readFile(file, as);
      }
      return String(form.get(field) ?? "");
    };
    const name = String(form.get("name") ?? "");
    let body: Record<string, unknown>;
    if (mode === "pkcs12") {
      body = { name, pkcs12Base64: await take("pkcs12", "pkcs12File", "base64"), password: String(form.get("password") ?? "") };
      if (!body.pkcs12Base64 && !fileErrors.pkcs12) fileErrors.file = ["choose a .p12 or .pfx file"];
    } else {
      body = {
        name,
        certificatePem: await take("certificatePem", "certificateFile", "text"),
        keyPem: await take("keyPem", "keyFile", "text"),
        chainPem: (await take("chainPem", "chainFile", "text")) || undefined,
        passphrase: String(form.get("passphrase") ?? "") || undefined,
      };
    }
    if (Object.keys(fileErrors).length) return notSent("nothing was uploaded: check the highlighted fields", fileErrors);
    return { ok: true, data: body };
  }

  function check(form: FormData) {
    setPreview(null);
    return submit(async () => {
      const body = await bodyFrom(form);
      return body.ok ? postJson<UploadPreview>("/api/v1/certificates/preview", body.data) : body;
    }, setPreview);
  }

  function save(form: FormData) {
    return submit(
      async () => {
        const body = await bodyFrom(form);
        if (!body.ok) return body;
        const url = certificateId ? `/api/v1/certificates/${certificateId}/upload` : "/api/v1/certificates";
        return postJson<{ id: string }>(url, certificateId ? body.data : { source: "upload", ...body.data });
      },
      (saved) => {
        router.push(`/certificates/${saved.id}`);
        router.refresh();
      },
    );
  }

  return (
    <div className="max-w-2xl space-y-6">
      <div>
        <h1 className="text-2xl font-bold">{certificateId ? `New version of ${certificateName}` : "New certificate"}</h1>
        {certificateId ? null : <SourceTabs current="upload" />}
      </div>
      <form className="space-y-5 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200" noValidate onSubmit={(e) => e.preventDefault()} onChange={() => setPreview(null)}>
        <fieldset className="flex gap-4 text-sm">
          <legend className="sr-only">Format</legend>
          <label className="flex items-center gap-2">
            <input type="radio" name="mode" checked={mode === "pem"} onChange={() => setMode("pem")} /> PEM files or text
          </label>
          <label className="flex items-center gap-2">
            <input type="radio" name="mode" checked={mode === "pkcs12"} onChange={() => setMode("pkcs12")} /> PKCS#12 (.p12, .pfx)
          </label>
        </fieldset>
        {certificateId ? null : <TextField name="name" label="Display name (optional)" placeholder="defaults to the first name" maxLength={100} errors={errors.name} />}
        {mode === "pem" ? (
          <>
            <TextAreaField name="certificatePem" label="Certificate (or full chain)" rows={5} placeholder="-----BEGIN CERTIFICATE-----" errors={errors.certificate} />
            <input type="file" name="certificateFile" aria-label="Certificate file" accept=".pem,.crt,.cer" className="text-sm" />
            <TextAreaField name="keyPem" label="Private key" rows={4} placeholder="-----BEGIN PRIVATE KEY-----" errors={errors.key} />
            <input type="file" name="keyFile" aria-label="Private key file" accept=".pem,.key" className="text-sm" />
            <TextField name="passphrase" label="Key passphrase (if the key is encrypted)" type="password" autoComplete="off" errors={errors.passphrase} />
            <TextAreaField name="chainPem" label="Intermediate certificates (optional)" rows={3} errors={errors.chain} />
            <input type="file" name="chainFile" aria-label="Chain file" accept=".pem,.crt" className="text-sm" />
          </>
        ) : (
          <>
            <div className="space-y-1">
              <label htmlFor="pkcs12File" className="block text-sm font-medium text-slate-800">
                PKCS#12 file
              </label>
              <input id="pkcs12File" type="file" name="pkcs12File" accept=".p12,.pfx" aria-describedby="file-error" className="text-sm" />
              <div id="file-error" aria-live="polite">
                {(errors.file ?? errors.pkcs12)?.map((e) => (
                  <p key={e} className="text-sm text-red-600">
                    {e}
                  </p>
                ))}
              </div>
            </div>
            <TextField name="password" label="PKCS#12 password" type="password" autoComplete="off" errors={errors.password} />
          </>
        )}
        <FormMessage message={message?.text} tone={message?.tone} />
        {preview ? (
          <section aria-label="What this certificate holds" data-testid="upload-preview" className="space-y-2 rounded-md bg-slate-50 p-4 text-sm ring-1 ring-slate-200">
            <p>
              <span className="font-medium">Names:</span> <span className="font-mono text-xs">{preview.names.join(", ")}</span>
            </p>
            <p>
              <span className="font-medium">Issuer:</span> {preview.issuer}
            </p>
            <p>
              <span className="font-medium">Expires:</span> {preview.notAfter.replace("T", " ").slice(0, 16)} UTC
            </p>
            <p>
              <span className="font-medium">Key:</span> {preview.keyType} · chain of {preview.chainLength}
            </p>
            {preview.warnings.map((w) => (
              <p key={w} className="text-amber-800">
                Warning: {w}
              </p>
            ))}
          </section>
        ) : null}
        <div className="flex gap-2">
          <Button type="button" variant="secondary" disabled={pending} onClick={(e) => void check(new FormData(e.currentTarget.form!))}>
            Check
          </Button>
          <Button type="button" disabled={pending || !preview} onClick={(e) => void save(new FormData(e.currentTarget.form!))}>
            {certificateId ? "Save new version" : "Save certificate"}
          </Button>
        </div>
      </form>
    </div>
  );
}
