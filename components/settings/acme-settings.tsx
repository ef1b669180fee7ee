"use client";

import { useRouter } from "next/navigation";
import { useState } from "react";
import { postJson, sendJson } from "@/components/forms/api";
import { UNREACHABLE, useApiSubmit } from "@/components/forms/use-api-submit";
import { Button } from "@/components/ui/button";
import { FormMessage, SelectField, TextField } from "@/components/ui/field";
import type { AcmeAccountView } from "@/lib/acme/accounts";
import { formatDateTime } from "@/lib/format";

type Preset = { id: string; label: string; url: string };
type Configured = { directoryUrl: string; caName: string; caBundle: string | null; email: string | null };

/** Settings → ACME: the accounts certificates are ordered with, one per CA and contact address. */
export function AcmeSettings({ accounts, isAdmin, presets, configured }: { accounts: AcmeAccountView[]; isAdmin: boolean; presets: Preset[]; configured: Configured }) {
  const router = useRouter();
  const { pending, errors, message, setMessage, submit } = useApiSubmit();
  const [preset, setPreset] = useState(presets.find((p) => p.url === configured.directoryUrl)?.id ?? "custom");

  function add(form: FormData) {
    const directoryUrl = preset === "custom" ? form.get("directoryUrl") : presets.find((p) => p.id === preset)?.url;
    return submit(
      () =>
        postJson<AcmeAccountView>("/api/v1/acme/accounts", {
          directoryUrl,
          email: form.get("email"),
          eabKid: form.get("eabKid"),
          eabHmacKey: form.get("eabHmacKey"),
          agreeTos: form.get("agreeTos") === "on",
          makeDefault: form.get("makeDefault") === "on",
        }),
      (account) => {
        setMessage({ text: `Saved. ${account.caName} registers the account when the first certificate is ordered.`, tone: "success" });
        router.refresh();
      },
    );
  }

  // Not through `submit`: the table's buttons neither wait for nor hold up the add form, and leave its field errors alone.
  async function act(url: string, method: "POST" | "DELETE") {
    setMessage(null);
    const result = await sendJson<unknown>(method, url).catch(() => null);
    if (!result) return setMessage({ text: UNREACHABLE, tone: "error" });
    if (!result.ok) return setMessage({ text: result.error.message, tone: "error" });
    router.refresh();
  }

  return (
    <div className="space-y-6">
      <div>
        <h1 className="text-2xl font-bold">ACME accounts</h1>
        <p className="mt-1 text-sm text-slate-600">
          Certificates are ordered with one of these accounts. Account keys and EAB HMAC keys are sealed in the database and never shown again.
        </p>
      </div>

      <section className="rounded-lg bg-white ring-1 ring-slate-200" aria-labelledby="accounts-heading">
        <h2 id="accounts-heading" className="sr-only">
          Accounts
        </h2>
        {accounts.length === 0 ? (
          <p className="px-4 py-6 text-sm text-slate-600">No account yet. Add one below, or agree to the terms when you request the first certificate.</p>
        ) : (
          <div className="overflow-x-auto">
            <table className="min-w-full divide-y divide-slate-200 text-sm" data-testid="acme-accounts">
              <thead className="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-600">
                <tr>
                  <th className="px-4 py-2">CA</th>
                  <th className="px-4 py-2">Contact</th>
                  <th className="px-4 py-2">Registered</th>
                  <th className="px-4 py-2">EAB key id</th>
                  <th className="px-4 py-2">Certificates</th>
                  <th className="px-4 py-2" />
                </tr>
              </thead>
              <tbody className="divide-y divide-slate-100">
                {accounts.map((a) => (
                  <tr key={a.id}>
                    <td className="px-4 py-2">
                      <span className="font-medium">{a.caName}</span>
                      {a.isDefault ? <span className="ml-2 rounded bg-indigo-50 px-1.5 py-0.5 text-xs text-indigo-700">default</span> : null}
                      <span className="block break-all font-mono text-xs text-slate-500">{a.directoryUrl}</span>
                    </td>
                    <td className="px-4 py-2">{a.email ?? <span className="text-slate-400">none</span>}</td>
                    <td className="px-4 py-2">
                      {a.registered ? "yes" : <span className="text-slate-500">on first order</span>}
                      <span className="block text-xs text-slate-500">terms agreed {a.tosAgreedAt ? formatDateTime(a.tosAgreedAt) : "—"}</span>
                      {a.lastError ? <span className="block text-xs text-red-700">{a.lastError}</span> : null}
                    </td>
                    <td className="px-4 py-2 font-mono text-xs">{a.eabKid ?? "—"}</td>
                    <td className="px-4 py-2">{a.certificates}</td>
                    <td className="space-x-2 whitespace-nowrap px-4 py-2 text-right">
                      {isAdmin && !a.isDefault ? (
                        <Button variant="secondary" onClick={() => void act(`/api/v1/acme/accounts/${a.id}/default`, "POST")}>
                          Make default
                        </Button>
                      ) : null}
                      {isAdmin ? (
                        <Button variant="secondary" onClick={() => void act(`/api/v1/acme/accounts/${a.id}`, "DELETE")}>
                          Delete
                        </Button>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>

      {isAdmin ? (
        <form onSubmit={(e) => { e.preventDefault(); void add(new FormData(e.currentTarget)); }} className="max-w-2xl space-y-5 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200" noValidate data-testid="acme-account-form">
          <h2 className="text-lg font-semibold">Add an account</h2>
          <SelectField
            name="preset"
            label="Certificate authority"
            options={[...presets.map((p) => ({ value: p.id, label: p.label })), { value: "custom", label: "Another ACME CA (directory URL)" }]}
            value={preset}
            onChange={(e) => setPreset(e.target.value)}
          />
          {preset === "custom" ? <TextField name="directoryUrl" label="Directory URL" placeholder="https://acme.example.net/directory" errors={errors.directoryUrl} defaultValue={presets.some((p) => p.url === configured.directoryUrl) ? "" : configured.directoryUrl} /> : null}
          <TextField name="email" type="email" label="Contact email (optional)" defaultValue={configured.email ?? ""} errors={errors.email} />
          <div className="grid gap-5 sm:grid-cols-2">
            <TextField name="eabKid" label="EAB key id (if the CA asks for one)" errors={errors.eabKid} autoComplete="off" />
            <TextField name="eabHmacKey" type="password" label="EAB HMAC key" errors={errors.eabHmacKey} autoComplete="off" />
          </div>
          <label className="flex items-start gap-2 text-sm">
            <input type="checkbox" name="agreeTos" className="mt-1" />
            <span>I agree to the CA&apos;s terms of service.</span>
          </label>
          {errors.agreeTos?.map((e) => (
            <p key={e} className="text-sm text-red-600">
              {e}
            </p>
          ))}
          <label className="flex items-start gap-2 text-sm">
            <input type="checkbox" name="makeDefault" className="mt-1" />
            <span>Use it for new certificates by default.</span>
          </label>
          <FormMessage message={message?.text} tone={message?.tone} />
          <Button type="submit" disabled={pending}>
            {pending ? "Saving…" : "Add account"}
          </Button>
        </form>
      ) : (
        <FormMessage message={message?.text} tone={message?.tone} />
      )}

      <section className="rounded-lg bg-white p-4 text-sm ring-1 ring-slate-200">
        <h2 className="mb-2 font-semibold">From the environment</h2>
        <dl className="grid gap-1 sm:grid-cols-[16rem_1fr]">
          <dt className="text-slate-600">PORTCULLIS_ACME_DIRECTORY_URL</dt>
          <dd className="break-all font-mono text-xs">
            {configured.directoryUrl} ({configured.caName}): used when a certificate is requested before any account exists
          </dd>
          <dt className="text-slate-600">PORTCULLIS_ACME_CA_BUNDLE</dt>
          <dd className="break-all font-mono text-xs">{configured.caBundle ?? "not set (the system's trusted roots only)"}</dd>
        </dl>
      </section>
    </div>
  );
}
