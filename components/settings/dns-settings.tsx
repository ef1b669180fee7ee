"use client";

import Link from "next/link";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { postJson, sendJson, type ApiFailure } from "@/components/forms/api";
import { useApiSubmit } from "@/components/forms/use-api-submit";
import { Button } from "@/components/ui/button";
import { ConfirmDeleteForm } from "@/components/ui/confirm-delete";
import { FormMessage, TextField } from "@/components/ui/field";
import type { DnsCredentialView, ZoneTestView } from "@/lib/dns/credentials";
import { formatDateTime } from "@/lib/format";

type Environment = { cloudflareApiUrl: string | null; resolvers: string[] };

const TEST_STATUS: Record<string, { label: string; className: string }> = {
  queued: { label: "Queued", className: "bg-slate-100 text-slate-700" },
  running: { label: "Running", className: "bg-sky-50 text-sky-700" },
  passed: { label: "Passed", className: "bg-emerald-50 text-emerald-700" },
  failed: { label: "Failed", className: "bg-red-50 text-red-700" },
};

/**
 * Settings → DNS: provider credentials for DNS-01. Add (verified before it is saved), Verify again,
 * Test on a zone (the worker's steps appear as they happen: each is an event, and the live stream
 * re-renders this page), Delete (refused while certificates use the credential).
 */
export function DnsSettings({ credentials, tests, isAdmin, environment }: { credentials: DnsCredentialView[]; tests: Record<string, ZoneTestView>; isAdmin: boolean; environment: Environment }) {
  const router = useRouter();
  const { pending, errors, message, setMessage, submit } = useApiSubmit();
  const [formKey, setFormKey] = useState(0);

  function add(form: FormData) {
    return submit(
      () => postJson<DnsCredentialView>("/api/v1/dns-credentials", { name: form.get("name"), provider: "cloudflare", token: form.get("token") }),
      (saved) => {
        setFormKey((k) => k + 1);
        setMessage({ text: `Saved "${saved.name}" (token ${saved.tokenHint}). ${saved.verification?.summary ?? ""}`, tone: "success" });
        router.refresh();
      },
    );
  }

  return (
    <div className="space-y-6">
      <div>
        <h1 className="text-2xl font-bold">DNS credentials</h1>
        <p className="mt-1 text-sm text-slate-600">
          DNS-01 proves control of a name with a TXT record at <code className="font-mono text-xs">_acme-challenge.&lt;name&gt;</code>, and it is the only way a CA validates wildcard names. Portcullis creates
          those records through a provider&apos;s API and removes them right after validation. A Cloudflare API token needs <strong>Zone → Zone → Read</strong> and <strong>Zone → DNS → Edit</strong> for
          your zones (the &quot;Edit zone DNS&quot; template). Tokens are sealed in the database and never shown again: only their last 4 characters.
        </p>
      </div>

      {credentials.length === 0 ? (
        <p className="rounded-lg bg-white px-4 py-6 text-sm text-slate-600 ring-1 ring-slate-200">No DNS credential yet. Add a Cloudflare API token below.</p>
      ) : (
        <ul className="space-y-4" aria-label="DNS credentials">
          {credentials.map((c) => (
            <CredentialCard key={c.id} credential={c} test={tests[c.id]} isAdmin={isAdmin} />
          ))}
        </ul>
      )}

      {isAdmin ? (
        <form key={formKey} onSubmit={(e) => { e.preventDefault(); void add(new FormData(e.currentTarget)); }} className="max-w-2xl space-y-5 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200" noValidate data-testid="dns-credential-form">
          <h2 className="text-lg font-semibold">Add a Cloudflare credential</h2>
          <TextField name="name" label="Name" placeholder="prod Cloudflare" maxLength={100} errors={errors.name} autoComplete="off" />
          <TextField
            name="token"
            type="password"
            label="API token"
            autoComplete="off"
            spellCheck={false}
            errors={errors.token}
            hint="Cloudflare dashboard → My Profile → API Tokens → Create Token → “Edit zone DNS”. Not the Global API Key."
          />
          <FormMessage message={message?.text} tone={message?.tone} />
          <Button type="submit" disabled={pending}>
            {pending ? "Verifying with Cloudflare…" : "Verify and save"}
          </Button>
        </form>
      ) : (
        <FormMessage message={message?.text} tone={message?.tone} />
      )}

      <section className="rounded-lg bg-white p-4 text-sm ring-1 ring-slate-200">
        <h2 className="mb-2 font-semibold">From the environment</h2>
        <dl className="grid gap-1 sm:grid-cols-[16rem_1fr]">
          <dt className="text-slate-600">PORTCULLIS_CLOUDFLARE_API_URL</dt>
          <dd className="break-all font-mono text-xs">{environment.cloudflareApiUrl ?? "not set (https://api.cloudflare.com/client/v4)"}</dd>
          <dt className="text-slate-600">PORTCULLIS_DNS_RESOLVERS</dt>
          <dd className="break-all font-mono text-xs" data-testid="dns-resolvers">
            {environment.resolvers.length ? `${environment.resolvers.join(", ")}: asked whether a TXT record is visible` : "not set: each zone's authoritative name servers are asked directly"}
          </dd>
        </dl>
      </section>
    </div>
  );
}

const foldFields = ({ message, fields }: ApiFailure): ApiFailure => ({ message: [message, ...Object.values(fields).flat()].join(": "), fields: {} });

function CredentialCard({ credential: c, test, isAdmin }: { credential: DnsCredentialView; test?: ZoneTestView; isAdmin: boolean }) {
  const router = useRouter();
  const { busy, errors, message, setMessage, submit } = useApiSubmit();
  const [confirming, setConfirming] = useState(false);
  const [replacing, setReplacing] = useState(false);
  const v = c.verification;
  const testing = test && (test.status === "queued" || test.status === "running");

  function replaceToken(form: FormData) {
    return submit(
      () => sendJson<{ tokenHint?: string } | null>("PATCH", `/api/v1/dns-credentials/${c.id}`, { token: form.get(`new-token-${c.id}`) }),
      (replaced) => {
        setReplacing(false);
        setMessage({ text: `Token replaced (now ${replaced?.tokenHint ?? "saved"}).`, tone: "success" });
        router.refresh();
      },
      { action: "replace" },
    );
  }

  // Verify, Test and Delete have no fields of their own: what the API says about fields joins the message.
  function call(action: string, url: string, method: "POST" | "DELETE", body?: unknown, onDone?: () => void) {
    return submit(
      () => sendJson<unknown>(method, url, body),
      () => {
        router.refresh();
        onDone?.();
      },
      { action, keepErrors: true, showFailure: foldFields },
    );
  }

  return (
    <li className="rounded-lg bg-white ring-1 ring-slate-200" data-testid="dns-credential" data-name={c.name}>
      <div className="flex flex-wrap items-center justify-between gap-2 border-b border-slate-200 px-4 py-3">
        <div>
          <h2 className="text-lg font-semibold">{c.name}</h2>
          <p className="text-xs text-slate-500">
            {c.providerLabel} · token <span className="font-mono" data-testid="token-hint">{c.tokenHint}</span> · added {formatDateTime(c.createdAt)}
          </p>
        </div>
        {isAdmin ? (
          <div className="flex gap-2">
            <Button variant="secondary" disabled={busy !== null} onClick={() => void call("verify", `/api/v1/dns-credentials/${c.id}/verify`, "POST")}>
              {busy === "verify" ? "Verifying…" : "Verify"}
            </Button>
            <Button variant="secondary" disabled={busy !== null} onClick={() => setReplacing((r) => !r)}>
              Replace token
            </Button>
            <Button variant="secondary" disabled={busy !== null} onClick={() => setConfirming(true)}>
              Delete
            </Button>
          </div>
        ) : null}
      </div>
      <div className="space-y-3 px-4 py-3 text-sm">
        {confirming ? (
          <ConfirmDeleteForm
            action={() => void call("delete", `/api/v1/dns-credentials/${c.id}`, "DELETE", undefined, () => setConfirming(false))}
            id={c.id}
            question={<>Delete the credential &quot;{c.name}&quot;? Its sealed token is erased; certificates cannot use it afterwards.</>}
            pending={busy === "delete"}
            onCancel={() => setConfirming(false)}
          />
        ) : null}
        {replacing ? (
          <form onSubmit={(e) => { e.preventDefault(); void replaceToken(new FormData(e.currentTarget)); }} className="space-y-3 rounded-md bg-slate-50 p-3" noValidate data-testid="replace-token-form">
            <TextField name={`new-token-${c.id}`} type="password" label="New API token" autoComplete="off" spellCheck={false} errors={errors.token} hint="Verified with Cloudflare before it replaces the current one; certificates keep using this credential." />
            <div className="flex gap-2">
              <Button type="submit" disabled={busy !== null}>
                {busy === "replace" ? "Verifying…" : "Verify and replace"}
              </Button>
              <Button type="button" variant="secondary" onClick={() => setReplacing(false)}>
                Cancel
              </Button>
            </div>
          </form>
        ) : null}
        <FormMessage message={message?.text} tone={message?.tone} />
        <div data-testid="verification" data-ok={v ? String(v.ok) : "unknown"}>
          {v ? (
            <>
              <p className={v.ok ? "text-emerald-800" : v.transient ? "text-amber-800" : "text-red-700"}>
                <span className="font-medium">{v.ok ? "Verified" : v.transient ? "Not checked" : "Problem"}:</span> {v.summary}
                {v.raw ? <span className="ml-1 font-mono text-xs text-slate-500">({v.raw})</span> : null}
              </p>
              {v.problems.length ? (
                <ul className="mt-1 list-disc pl-5 text-slate-700">
                  {v.problems.map((p) => (
                    <li key={p}>{p}</li>
                  ))}
                </ul>
              ) : null}
              <p className="mt-1 text-xs text-slate-500">
                Checked {formatDateTime(v.checkedAt)}
                {v.expiresOn ? ` · token expires ${formatDateTime(v.expiresOn)}` : ""}
              </p>
            </>
          ) : (
            <p className="text-slate-600">Not verified yet: press Verify.</p>
          )}
        </div>

        {v?.zones.length ? (
          <div className="overflow-x-auto">
            <table className="min-w-full divide-y divide-slate-200 text-sm" data-testid="dns-zones">
              <thead className="bg-slate-50 text-left text-xs font-semibold uppercase tracking-wide text-slate-600">
                <tr>
                  <th className="px-3 py-2">Zone</th>
                  <th className="px-3 py-2">Status</th>
                  <th className="px-3 py-2">May edit DNS</th>
                  <th className="px-3 py-2" />
                </tr>
              </thead>
              <tbody className="divide-y divide-slate-100">
                {v.zones.slice(0, 50).map((z) => (
                  <tr key={z.id} data-zone={z.name}>
                    <td className="px-3 py-1.5 font-mono text-xs">{z.name}</td>
                    <td className="px-3 py-1.5">{z.status}</td>
                    <td className="px-3 py-1.5">{z.canEditDns === null ? <span className="text-slate-500">not reported</span> : z.canEditDns ? "yes" : <span className="text-red-700">no</span>}</td>
                    <td className="px-3 py-1.5 text-right">
                      {isAdmin ? (
                        <Button variant="secondary" disabled={busy !== null || Boolean(testing)} onClick={() => void call("test", `/api/v1/dns-credentials/${c.id}/test`, "POST", { zone: z.name })} aria-label={`Test ${z.name}`}>
                          Test
                        </Button>
                      ) : null}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {v.zones.length > 50 ? <p className="px-3 py-1 text-xs text-slate-500">and {v.zones.length - 50} more zones (the REST API lists them all)</p> : null}
          </div>
        ) : null}

        {test ? (
          <div className="rounded-md bg-slate-50 p-3" data-testid="zone-test" data-status={test.status}>
            <p className="font-medium">
              Test on {test.zone}{" "}
              <span className={`ml-1 rounded px-1.5 py-0.5 text-xs ${TEST_STATUS[test.status]?.className ?? ""}`} data-testid="zone-test-status">
                {TEST_STATUS[test.status]?.label ?? test.status}
              </span>
              <span className="ml-2 text-xs font-normal text-slate-500">{formatDateTime(test.createdAt)}</span>
            </p>
            <ol className="mt-2 space-y-1 text-xs" data-testid="zone-test-steps">
              {test.steps.map((s) => (
                <li key={s.id} className={s.severity === "error" ? "text-red-700" : s.severity === "warning" ? "text-amber-800" : "text-slate-700"}>
                  <span className="text-slate-500">{formatDateTime(s.at)}</span> · {s.message}
                </li>
              ))}
              {testing ? <li className="text-slate-500">…</li> : null}
            </ol>
          </div>
        ) : null}

        <p className="text-slate-700" data-testid="credential-certificates">
          {c.certificates.length ? (
            <>
              Used by{" "}
              {c.certificates.map((cert, i) => (
                <span key={cert.id}>
                  {i ? ", " : ""}
                  <Link href={`/certificates/${cert.id}`} className="text-indigo-700 hover:underline">
                    {cert.name}
                  </Link>
                </span>
              ))}
            </>
          ) : (
            <span className="text-slate-500">No certificate uses it yet.</span>
          )}
        </p>
      </div>
    </li>
  );
}
