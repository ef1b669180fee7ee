"use client";

import Link from "next/link";
import { useActionState, useState } from "react";
import { createListenerAction, updateListenerAction } from "@/app/(console)/listeners/actions";
import { Button, secondaryLinkClass } from "@/components/ui/button";
import { FormMessage, SelectField, TextField } from "@/components/ui/field";
import type { ListenerView } from "@/lib/listeners";
import type { CertificateOption } from "./data";
import { certificateOptionLabel } from "./labels";

const KIND_OPTIONS = [
  { value: "https", label: "HTTPS — serves certificates by SNI name and proxies to an upstream" },
  { value: "http", label: "HTTP — redirects to HTTPS or proxies; always answers ACME HTTP-01" },
];
const TLS_OPTIONS = [
  { value: "TLSv1.2", label: "TLS 1.2 (compatible)" },
  { value: "TLSv1.3", label: "TLS 1.3 only" },
];
const FALLBACK_OPTIONS = [
  { value: "self_signed", label: "Serve a self-signed fallback certificate" },
  { value: "refuse", label: "Refuse the connection" },
];
const HTTP_ACTION_OPTIONS = [
  { value: "redirect", label: "Redirect to HTTPS" },
  { value: "proxy", label: "Proxy to an upstream" },
];
const UPSTREAM_VERIFY_OPTIONS = [
  { value: "true", label: "Verify it (it needs a certificate from a trusted CA)" },
  { value: "false", label: "Accept any certificate (a self-signed upstream)" },
];
const DEFAULT_PORTS: Record<string, string> = { https: "443", http: "80" };

type Values = Record<string, string>;

function valuesOf(listener: ListenerView | undefined): Values {
  if (!listener) return { kind: "https", bindAddress: "0.0.0.0", upstreamTlsVerify: "true", minTlsVersion: "TLSv1.2", fallbackPolicy: "self_signed", httpAction: "redirect", redirectPort: "443", enabled: "on" };
  return {
    name: listener.name,
    kind: listener.kind,
    bindAddress: listener.bindAddress,
    port: String(listener.port),
    upstreamUrl: listener.upstreamUrl ?? "",
    upstreamTlsVerify: listener.upstreamTlsVerify ? "true" : "false",
    minTlsVersion: listener.minTlsVersion,
    defaultCertificateId: listener.defaultCertificateId ?? "",
    fallbackPolicy: listener.fallbackPolicy,
    httpAction: listener.httpAction ?? "redirect",
    redirectPort: String(listener.redirectPort ?? 443),
    enabled: listener.enabled ? "on" : "",
  };
}

/** Creates a listener, or edits one when `listener` is given (its kind then stays as it is). */
export function ListenerForm({ listener, certificates }: { listener?: ListenerView; certificates: CertificateOption[] }) {
  const [state, action, pending] = useActionState(listener ? updateListenerAction : createListenerAction, undefined);
  const values = state?.values ?? valuesOf(listener);
  const title = listener ? `Edit ${listener.name}` : "New listener";
  return (
    <div className="max-w-2xl space-y-6">
      <div>
        <Link href={listener ? `/listeners/${listener.id}` : "/listeners"} className="text-sm text-indigo-700 hover:underline">
          ← {listener ? listener.name : "Listeners"}
        </Link>
        <h1 className="mt-1 break-all text-2xl font-bold">{title}</h1>
      </div>
      <form action={action} className="space-y-5 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200" noValidate>
        {listener ? <input type="hidden" name="id" value={listener.id} /> : null}
        {/* Remounted with what was typed after each failed save, so the fields show it again. */}
        <ListenerFields key={JSON.stringify(state?.values ?? null)} values={values} errors={state?.errors ?? {}} certificates={certificates} kindFixed={Boolean(listener)} />
        <FormMessage message={state?.message} />
        <div className="flex gap-2">
          <Button type="submit" disabled={pending}>
            {pending ? "Saving…" : listener ? "Save listener" : "Create listener"}
          </Button>
          <Link href={listener ? `/listeners/${listener.id}` : "/listeners"} className={secondaryLinkClass}>
            Cancel
          </Link>
        </div>
      </form>
    </div>
  );
}

function ListenerFields({
  values,
  errors,
  certificates,
  kindFixed,
}: {
  values: Values;
  errors: Record<string, string[] | undefined>;
  certificates: CertificateOption[];
  kindFixed: boolean;
}) {
  const [kind, setKind] = useState(values.kind === "http" ? "http" : "https");
  const [httpAction, setHttpAction] = useState(values.httpAction === "proxy" ? "proxy" : "redirect");
  // The port follows the kind (443 / 80) until someone types one.
  const [portTouched, setPortTouched] = useState(values.port !== undefined);
  const [portDefault, setPortDefault] = useState(values.port ?? DEFAULT_PORTS[kind]);
  const chooseKind = (next: string) => {
    setKind(next);
    if (!portTouched) setPortDefault(DEFAULT_PORTS[next]);
  };
  const certificateOptions = [{ value: "", label: "None — only mapped names are served" }, ...certificates.map((c) => ({ value: c.id, label: certificateOptionLabel(c) }))];
  return (
    <>
      <TextField name="name" label="Name" placeholder="public https" maxLength={100} defaultValue={values.name} errors={errors.name} required />
      {kindFixed ? (
        <div className="space-y-1 text-sm">
          <input type="hidden" name="kind" value={kind} />
          <p className="font-medium text-slate-800">Kind</p>
          <p className="text-slate-600">{kind === "https" ? "HTTPS" : "HTTP"} (a listener&apos;s kind cannot change; create another listener instead)</p>
        </div>
      ) : (
        <SelectField name="kind" label="Kind" options={KIND_OPTIONS} defaultValue={kind} onChange={(e) => chooseKind(e.target.value)} errors={errors.kind} />
      )}
      <div className="grid gap-5 sm:grid-cols-2">
        <TextField
          name="bindAddress"
          label="Bind address"
          defaultValue={values.bindAddress}
          hint="0.0.0.0 for every IPv4 address, :: for every address, 127.0.0.1 for this machine only."
          errors={errors.bindAddress}
          required
        />
        <TextField
          key={`port-${portDefault}`}
          name="port"
          label="Port"
          type="number"
          inputMode="numeric"
          min={1}
          max={65535}
          defaultValue={portDefault}
          onChange={() => setPortTouched(true)}
          hint="Ports below 1024 need root or CAP_NET_BIND_SERVICE."
          errors={errors.port}
          required
        />
      </div>
      {kind === "https" ? (
        <>
          <UpstreamFields values={values} errors={errors} hint="Where decrypted requests go: an http:// or https:// URL." />
          <div className="grid gap-5 sm:grid-cols-2">
            <SelectField name="minTlsVersion" label="Minimum TLS version" options={TLS_OPTIONS} defaultValue={values.minTlsVersion || "TLSv1.2"} errors={errors.minTlsVersion} />
            <SelectField
              name="fallbackPolicy"
              label="When no certificate matches"
              options={FALLBACK_OPTIONS}
              defaultValue={values.fallbackPolicy || "self_signed"}
              errors={errors.fallbackPolicy}
            />
          </div>
          <SelectField
            name="defaultCertificateId"
            label="Default certificate"
            options={certificateOptions}
            defaultValue={values.defaultCertificateId ?? ""}
            hint="Served to clients whose SNI name no mapping covers (and to clients that send none), before the fallback."
            errors={errors.defaultCertificateId}
          />
        </>
      ) : (
        <>
          <SelectField name="httpAction" label="Plain HTTP requests" options={HTTP_ACTION_OPTIONS} defaultValue={httpAction} onChange={(e) => setHttpAction(e.target.value)} errors={errors.httpAction} />
          {httpAction === "redirect" ? (
            <TextField
              name="redirectPort"
              label="HTTPS port to redirect to"
              type="number"
              inputMode="numeric"
              min={1}
              max={65535}
              defaultValue={values.redirectPort || "443"}
              errors={errors.redirectPort}
            />
          ) : (
            <UpstreamFields values={values} errors={errors} hint="Where plain HTTP requests go: an http:// or https:// URL." />
          )}
        </>
      )}
      <div className="flex items-start gap-3">
        <input
          id="enabled"
          name="enabled"
          type="checkbox"
          defaultChecked={values.enabled === "on"}
          aria-describedby="enabled-hint enabled-error"
          className="mt-0.5 h-4 w-4 rounded border-slate-300 text-indigo-600 focus:ring-indigo-600"
        />
        <div className="text-sm">
          <label htmlFor="enabled" className="font-medium text-slate-800">
            Enabled
          </label>
          <p id="enabled-hint" className="text-xs text-slate-500">
            The edge opens the port within a second of saving; a disabled listener keeps its settings and mappings.
          </p>
          <div id="enabled-error" aria-live="polite">
            {errors.enabled?.map((e) => (
              <p key={e} className="text-red-600">
                {e}
              </p>
            ))}
          </div>
        </div>
      </div>
    </>
  );
}

/** The upstream's URL and whether its certificate is checked: HTTPS listeners, and HTTP ones that proxy. */
function UpstreamFields({ values, errors, hint }: { values: Values; errors: Record<string, string[] | undefined>; hint: string }) {
  return (
    <>
      <TextField name="upstreamUrl" label="Upstream URL" placeholder="http://127.0.0.1:3000" defaultValue={values.upstreamUrl} hint={hint} errors={errors.upstreamUrl} required />
      <SelectField
        name="upstreamTlsVerify"
        label="Upstream certificate (https:// upstreams)"
        options={UPSTREAM_VERIFY_OPTIONS}
        defaultValue={values.upstreamTlsVerify === "false" ? "false" : "true"}
        hint="Whether the upstream's certificate must be valid for its host name. Accepting any certificate still encrypts, but no longer proves who answers: keep it for upstreams on this machine or a network you trust."
        errors={errors.upstreamTlsVerify}
      />
    </>
  );
}
