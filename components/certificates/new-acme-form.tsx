"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { markRequested } from "@/components/events/live-events";
import { postJson } from "@/components/forms/api";
import { useApiSubmit } from "@/components/forms/use-api-submit";
import { Button } from "@/components/ui/button";
import { FormMessage, SelectField, TextAreaField, TextField } from "@/components/ui/field";
import { SourceTabs } from "./source-tabs";

export type AccountChoice = { id: string; label: string; isDefault: boolean };
export type DnsCredentialChoice = { id: string; label: string };

const CHALLENGES = [
  { value: "http-01", label: "HTTP-01: the CA fetches a token from port 80 (needs an HTTP listener)" },
  { value: "tls-alpn-01", label: "TLS-ALPN-01: the CA connects to port 443 (needs an HTTPS listener)" },
  { value: "dns-01", label: "DNS-01: a TXT record through your DNS provider (needed for wildcards)" },
];

const KEY_TYPES = [
  { value: "ecdsa-p256", label: "ECDSA P-256 (recommended)" },
  { value: "ecdsa-p384", label: "ECDSA P-384" },
  { value: "rsa-2048", label: "RSA 2048" },
  { value: "rsa-4096", label: "RSA 4096" },
];

/** Certificates → New → Let's Encrypt: the names, how the CA validates them, and which account asks. */
export function NewAcmeForm({ accounts, defaultCa, dnsCredentials }: { accounts: AccountChoice[]; defaultCa: string; dnsCredentials: DnsCredentialChoice[] }) {
  const router = useRouter();
  const { pending, errors, message, submit } = useApiSubmit();
  const [throttled, setThrottled] = useState(false);
  const [challenge, setChallenge] = useState("http-01");

  function request(form: FormData) {
    return submit(
      async () => {
        const result = await postJson<{ id: string }>("/api/v1/certificates", {
          source: "acme",
          name: form.get("name"),
          domains: form.get("domains"),
          challenge: form.get("challenge"),
          dnsCredentialId: form.get("challenge") === "dns-01" ? form.get("dnsCredentialId") || undefined : undefined,
          keyType: form.get("keyType"),
          accountId: form.get("accountId") || undefined,
          email: form.get("email") || undefined,
          agreeTos: form.get("agreeTos") === "on",
          force: form.get("force") === "on",
        });
        // A rate limit or a full order slot offers to send the order anyway.
        if (!result.ok) setThrottled(/rate|slot/i.test(result.error.message));
        return result;
      },
      (created) => {
        // Its page shows the order's every step from Pending, those done while the page loads included.
        markRequested(created.id);
        router.push(`/certificates/${created.id}`);
      },
    );
  }

  return (
    <div className="max-w-2xl space-y-6">
      <div>
        <h1 className="text-2xl font-bold">New certificate</h1>
        <SourceTabs current="acme" />
      </div>
      <form onSubmit={(e) => { e.preventDefault(); void request(new FormData(e.currentTarget)); }} className="space-y-5 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200" noValidate data-testid="acme-form">
        <TextAreaField
          name="domains"
          label="Names"
          rows={3}
          placeholder={"example.com\nwww.example.com"}
          hint={challenge === "dns-01" ? "One per line or separated by commas; wildcards like *.example.com are allowed with DNS-01." : "DNS names that point at this server's listeners; one per line or separated by commas."}
          errors={errors.domains}
          required
        />
        <SelectField name="challenge" label="How the CA checks that you control the names" options={CHALLENGES} value={challenge} onChange={(e) => setChallenge(e.target.value)} errors={errors.challenge} />
        {challenge === "dns-01" ? (
          dnsCredentials.length ? (
            <SelectField
              name="dnsCredentialId"
              label="DNS credential"
              options={dnsCredentials.map((c) => ({ value: c.id, label: c.label }))}
              defaultValue={dnsCredentials[0]?.id}
              errors={errors.dnsCredentialId}
              hint={<Link href="/settings/dns" className="text-indigo-700 hover:underline">Manage DNS credentials in Settings → DNS</Link>}
            />
          ) : (
            <div className="rounded-md bg-amber-50 p-3 text-sm text-amber-900" data-testid="no-dns-credential">
              DNS-01 needs a DNS provider credential. <Link href="/settings/dns" className="font-medium underline">Add your Cloudflare API token in Settings → DNS</Link> first.
              {errors.dnsCredentialId?.map((e) => (
                <p key={e} className="mt-1 text-red-700">
                  {e}
                </p>
              ))}
            </div>
          )
        ) : null}
        {accounts.length ? (
          <SelectField
            name="accountId"
            label="ACME account"
            options={accounts.map((a) => ({ value: a.id, label: `${a.label}${a.isDefault ? " (default)" : ""}` }))}
            defaultValue={accounts.find((a) => a.isDefault)?.id}
            errors={errors.accountId}
            hint={<Link href="/settings/acme" className="text-indigo-700 hover:underline">Manage accounts in Settings → ACME</Link>}
          />
        ) : (
          <fieldset className="space-y-3 rounded-md bg-slate-50 p-4">
            <legend className="text-sm font-medium text-slate-800">Account at {defaultCa}</legend>
            <TextField name="email" type="email" label="Contact email (optional; the CA writes about expiring certificates and problems)" errors={errors.email} />
            <label className="flex items-start gap-2 text-sm">
              <input type="checkbox" name="agreeTos" className="mt-1" data-testid="agree-tos" />
              <span>I agree to {defaultCa}&apos;s terms of service.</span>
            </label>
            {errors.agreeTos?.map((e) => (
              <p key={e} className="text-sm text-red-600">
                {e}
              </p>
            ))}
          </fieldset>
        )}
        <div className="grid gap-5 sm:grid-cols-2">
          <SelectField name="keyType" label="Key type" options={KEY_TYPES} defaultValue="ecdsa-p256" errors={errors.keyType} />
          <TextField name="name" label="Display name (optional)" placeholder="defaults to the first name" maxLength={100} errors={errors.name} />
        </div>
        {throttled ? (
          <label className="flex items-start gap-2 rounded-md bg-amber-50 p-3 text-sm text-amber-900">
            <input type="checkbox" name="force" className="mt-1" />
            <span>Send the order anyway. The CA may refuse it and count it against the limit again.</span>
          </label>
        ) : null}
        <FormMessage message={message?.text} tone={message?.tone} />
        <Button type="submit" disabled={pending}>
          {pending ? "Requesting…" : "Request certificate"}
        </Button>
      </form>
    </div>
  );
}
