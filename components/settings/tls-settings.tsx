"use client";

import Link from "next/link";
import { useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { useState } from "react";
import { useCertificateStatus } from "@/components/events/api";
import { sendJson } from "@/components/forms/api";
import { renameFields, useApiSubmit } from "@/components/forms/use-api-submit";
import { StatusBadge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { DetailRow } from "@/components/ui/detail-row";
import { FormMessage, SelectField, TextField } from "@/components/ui/field";
import type { CertificateDetail } from "@/lib/certificates";
import type { ConsoleTlsStatus } from "@/lib/console/tls-status";
import { formatDateTime, relativeTime } from "@/lib/format";
import { TlsUploadForm } from "./tls-upload-form";
import { tlsStatusKey, useConsoleTlsStatus } from "./tls-status-query";

type Mode = ConsoleTlsStatus["mode"];

export const MODE_LABELS: Record<Mode, string> = {
  auto: "auto — a local CA's certificate (plain HTTP on loopback)",
  acme: "acme — Let's Encrypt for the console's domain",
  provided: "provided — PEM files your own tooling renews",
  off: "off — plain HTTP",
  behind_proxy: "behind_proxy — plain HTTP behind a TLS-terminating proxy",
};

export const KIND_LABELS: Record<NonNullable<ConsoleTlsStatus["served"]>["kind"], string> = {
  local_ca: "Local CA",
  self_signed: "Self-signed",
  acme: "Let's Encrypt (ACME)",
  provided: "Provided",
};

const SOURCE_TEXT: Record<ConsoleTlsStatus["modeSource"], string> = {
  env: "set by the environment",
  settings: "chosen here in Settings",
  default: "the default (nothing set)",
};

/** PUT /api/v1/settings/tls; the answer is the new status. */
const putTls = (body: unknown) => sendJson<ConsoleTlsStatus>("PUT", "/api/v1/settings/tls", body);

/** `acme.domain` and `acme.email` in the API's answer are the inputs `acmeDomain` and `acmeEmail` here. */
function acmeField(key: string): string {
  const short = key.replace(/^acme\./, "");
  return short === "domain" ? "acmeDomain" : short === "email" ? "acmeEmail" : key;
}

const lockedHint = (variable: string | undefined) => (variable ? `set by ${variable}; change the environment variable and restart to change it` : undefined);

/**
 * Settings → TLS: the console's own HTTPS. What mode is in force and why, the certificate served
 * (and whether browsers trust it), the local CA to pin, Let's Encrypt for the console's domain with
 * its live status, PEMs uploaded for the console, and a fresh local-CA certificate on demand.
 * Whatever an environment variable sets is shown locked with the variable's name.
 */
export function TlsSettings({ initial, isAdmin, consoleUrl }: { initial: ConsoleTlsStatus; isAdmin: boolean; consoleUrl: string }) {
  const { data: status } = useConsoleTlsStatus(initial);
  return (
    <div className="space-y-6">
      <div>
        <h1 className="text-2xl font-bold">Console TLS</h1>
        <p className="mt-1 text-sm text-slate-600">
          How this console serves HTTPS to your browser. Listeners (the certificates your services use) are set up under{" "}
          <Link href="/listeners" className="underline">
            Listeners
          </Link>
          . Environment variables win over what is saved here; the guide is in <code className="font-mono text-xs">docs/tls-modes.md</code>.
        </p>
        {isAdmin ? null : <p className="mt-2 text-sm text-slate-600">You have read-only access (viewer): an admin can change these settings.</p>}
      </div>
      <ModeSection status={status} isAdmin={isAdmin} />
      <ServedSection status={status} />
      <LocalCaSection status={status} isAdmin={isAdmin} consoleUrl={consoleUrl} />
      <AcmeSection status={status} isAdmin={isAdmin} />
      <section aria-labelledby="provided-heading" className="rounded-lg bg-white ring-1 ring-slate-200">
        <h2 id="provided-heading" className="border-b border-slate-200 px-4 py-3 text-lg font-semibold">
          Your own certificate (provided)
        </h2>
        <div className="space-y-3 px-4 py-3 text-sm">
          {status.provided.source === "env" ? (
            <p data-testid="provided-files">
              Served from <code className="font-mono text-xs">{status.provided.certFile}</code> and <code className="font-mono text-xs">{status.provided.keyFile}</code> (PORTCULLIS_TLS_CERT /
              PORTCULLIS_TLS_KEY). The files are watched: replace them and the console serves the new certificate without a restart.
            </p>
          ) : status.provided.source === "upload" ? (
            <p data-testid="provided-files">
              {status.mode === "provided"
                ? "The certificate uploaded here is what the console serves."
                : `A certificate uploaded here is stored; it is served again when the mode is provided (now ${status.mode}).`}
            </p>
          ) : (
            <p className="text-slate-600">No certificate provided for the console. Upload one below to serve it instead of the local CA&apos;s.</p>
          )}
          {status.provided.lastError ? (
            <p className="rounded-md bg-red-50 p-3 text-red-900" data-testid="provided-error">
              The last reload failed, so the console keeps serving the previous certificate: {status.provided.lastError}
            </p>
          ) : null}
          {isAdmin ? <TlsUploadForm locked={status.locked.provided ?? (status.locked.mode && status.mode !== "provided" ? status.locked.mode : undefined)} switchesMode={status.mode !== "provided"} /> : null}
        </div>
      </section>
    </div>
  );
}

function ModeSection({ status, isAdmin }: { status: ConsoleTlsStatus; isAdmin: boolean }) {
  const queryClient = useQueryClient();
  const router = useRouter();
  const { pending, errors, message, setMessage, submit } = useApiSubmit();
  const lockedBy = status.locked.mode;

  function save(form: FormData) {
    return submit(
      () => putTls({ mode: form.get("mode") }),
      (saved) => {
        queryClient.setQueryData(tlsStatusKey, saved);
        setMessage({ text: saved.restartRequired ? `Saved. ${saved.restartRequired}` : "Saved.", tone: "success" });
        router.refresh();
      },
    );
  }

  return (
    <section aria-labelledby="mode-heading" className="rounded-lg bg-white ring-1 ring-slate-200">
      <h2 id="mode-heading" className="border-b border-slate-200 px-4 py-3 text-lg font-semibold">
        Mode
      </h2>
      <dl className="divide-y divide-slate-100 text-sm">
        <DetailRow label="In force">
          <span className="font-mono text-xs" data-testid="tls-mode">
            {status.mode}
          </span>{" "}
          <span className="text-slate-600" data-testid="tls-mode-source">
            ({status.modeSource === "env" && lockedBy ? `set by ${lockedBy}` : SOURCE_TEXT[status.modeSource]})
          </span>
        </DetailRow>
        <DetailRow label="Browser connection">{status.https ? "HTTPS" : "plain HTTP"}</DetailRow>
      </dl>
      {status.restartRequired ? (
        <p className="mx-4 mb-3 rounded-md bg-amber-50 p-3 text-sm text-amber-900" role="status" data-testid="tls-restart-required">
          Restart required: {status.restartRequired}
        </p>
      ) : null}
      {isAdmin ? (
        <form
          key={status.mode}
          className="flex flex-wrap items-end gap-3 border-t border-slate-200 px-4 py-3"
          noValidate
          onSubmit={(e) => {
            e.preventDefault();
            void save(new FormData(e.currentTarget));
          }}
        >
          <div className="min-w-72 flex-1">
            <SelectField
              name="mode"
              label="Choose a mode"
              defaultValue={status.mode}
              disabled={Boolean(lockedBy)}
              hint={lockedHint(lockedBy) ?? "A change between two HTTPS modes applies at once; between HTTP and HTTPS it applies at the next restart. Certificates and settings are kept."}
              errors={errors.mode}
              options={(Object.keys(MODE_LABELS) as Mode[]).map((m) => ({ value: m, label: MODE_LABELS[m] }))}
            />
          </div>
          <Button type="submit" disabled={pending || Boolean(lockedBy)}>
            {pending ? "Saving…" : "Save mode"}
          </Button>
          <div className="w-full">
            <FormMessage message={message?.text} tone={message?.tone} />
          </div>
        </form>
      ) : null}
    </section>
  );
}

/** A provided certificate that signed itself is self-signed whatever the mode calls it: browsers do not trust it. */
function effectiveServed(served: ConsoleTlsStatus["served"]) {
  if (served && served.kind === "provided" && (!served.trusted || served.subject === served.issuer)) return { ...served, trusted: false, selfSignedProvided: true };
  return served ? { ...served, selfSignedProvided: false } : null;
}

function ServedSection({ status }: { status: ConsoleTlsStatus }) {
  const served = effectiveServed(status.served);
  return (
    <section aria-labelledby="served-heading" className="rounded-lg bg-white ring-1 ring-slate-200" data-testid="served-certificate">
      <h2 id="served-heading" className="border-b border-slate-200 px-4 py-3 text-lg font-semibold">
        Certificate served
      </h2>
      {served ? (
        <dl className="divide-y divide-slate-100 text-sm">
          <DetailRow label="Kind">
            <span data-testid="served-kind">{served.selfSignedProvided ? "Self-signed (provided files)" : (KIND_LABELS[served.kind] ?? served.kind)}</span>{" "}
            {served.trusted ? (
              <span className="ml-1 rounded-md bg-emerald-50 px-2 py-0.5 text-xs font-medium text-emerald-700 ring-1 ring-inset ring-emerald-600/20" data-testid="served-trusted">
                Trusted by browsers
              </span>
            ) : (
              <span className="ml-1 rounded-md bg-amber-50 px-2 py-0.5 text-xs font-medium text-amber-800 ring-1 ring-inset ring-amber-600/20" data-testid="served-trusted">
                Not trusted by browsers
              </span>
            )}
          </DetailRow>
          <DetailRow label="Subject">{served.subject}</DetailRow>
          <DetailRow label="Issuer">{served.issuer}</DetailRow>
          <DetailRow label="Names">
            <span className="break-all font-mono text-xs" data-testid="served-names">
              {served.names.join(", ") || "—"}
            </span>
          </DetailRow>
          <DetailRow label="Valid">
            {formatDateTime(served.notBefore)} – {formatDateTime(served.notAfter)} <span className="text-slate-600">(expires {relativeTime(served.notAfter)})</span>
          </DetailRow>
          <DetailRow label="SHA-256 fingerprint">
            <code className="break-all font-mono text-xs" data-testid="served-fingerprint">
              {served.fingerprintSha256}
            </code>
          </DetailRow>
        </dl>
      ) : (
        <p className="px-4 py-3 text-sm text-slate-600" data-testid="served-none">
          {status.mode === "behind_proxy"
            ? "None: your proxy terminates TLS and presents its own certificate; the console speaks plain HTTP to it."
            : "None: the console speaks plain HTTP."}
        </p>
      )}
      {served && !served.trusted ? (
        <p className="mx-4 mb-3 rounded-md bg-amber-50 p-3 text-sm text-amber-900">
          Browsers warn about this certificate until its issuer is trusted on each device (pin the local CA below), or until the console serves a certificate from a public CA: enable Let&apos;s
          Encrypt or upload your own.
        </p>
      ) : null}
    </section>
  );
}

function LocalCaSection({ status, isAdmin, consoleUrl }: { status: ConsoleTlsStatus; isAdmin: boolean; consoleUrl: string }) {
  const queryClient = useQueryClient();
  const router = useRouter();
  const [confirming, setConfirming] = useState(false);
  const { pending, message, setMessage, submit } = useApiSubmit();
  const ca = status.localCa;
  if (!ca && status.mode !== "auto") return null;

  function regenerate() {
    return submit(
      () => sendJson<ConsoleTlsStatus | null>("POST", "/api/v1/settings/tls/regenerate"),
      (regenerated) => {
        if (regenerated && "mode" in regenerated) queryClient.setQueryData(tlsStatusKey, regenerated);
        setConfirming(false);
        const servedNow = regenerated?.served?.kind === "local_ca";
        setMessage({
          text: servedNow
            ? "A new certificate from the local CA is being served. Browsers that trust the CA keep trusting it."
            : `A new server certificate was issued from the local CA; the console serves it in the auto mode (now ${regenerated?.mode ?? status.mode}).`,
          tone: "success",
        });
        router.refresh();
      },
    );
  }

  const host = consoleUrl.replace(/\/$/, "");
  return (
    <section aria-labelledby="ca-heading" className="rounded-lg bg-white ring-1 ring-slate-200">
      <h2 id="ca-heading" className="border-b border-slate-200 px-4 py-3 text-lg font-semibold">
        Local CA
      </h2>
      {ca ? (
        <>
          <dl className="divide-y divide-slate-100 text-sm">
            <DetailRow label="Subject">{ca.subject}</DetailRow>
            <DetailRow label="SHA-256 fingerprint">
              <code className="break-all font-mono text-xs" data-testid="ca-fingerprint">
                {ca.fingerprintSha256}
              </code>
            </DetailRow>
            <DetailRow label="Valid until">{formatDateTime(ca.notAfter)}</DetailRow>
          </dl>
          <div className="space-y-2 border-t border-slate-200 px-4 py-3 text-sm">
            <p>
              <a href="/api/v1/ca?format=pem" download="portcullis-local-ca.pem" className="font-medium text-indigo-700 underline" data-testid="ca-download">
                Download the CA certificate (PEM)
              </a>{" "}
              and trust it on the machines that use the console, after checking that its fingerprint matches the one above.
            </p>
            <p className="text-slate-600">Scripts can pin it:</p>
            <pre className="overflow-x-auto rounded-md bg-slate-50 p-2 font-mono text-xs ring-1 ring-slate-200" data-testid="ca-curl-hint">
              curl --cacert portcullis-local-ca.pem {host}/api/v1/health
            </pre>
          </div>
        </>
      ) : (
        <p className="px-4 py-3 text-sm text-slate-600">Not created yet: the console creates its local CA the first time it serves HTTPS in auto mode.</p>
      )}
      {isAdmin && ca ? (
        <div className="space-y-2 border-t border-slate-200 px-4 py-3">
          {confirming ? (
            <div role="alertdialog" aria-labelledby="regenerate-question" className="space-y-3 rounded-lg bg-amber-50 p-4 ring-1 ring-amber-200">
              <p id="regenerate-question" className="text-sm text-amber-900">
                Issue a new server certificate from the local CA and serve it now? Open pages keep working; clients that pinned the old server certificate (rather than the CA) must pin the
                new one.
              </p>
              <div className="flex gap-2">
                <Button type="button" onClick={() => void regenerate()} disabled={pending}>
                  {pending ? "Regenerating…" : "Yes, regenerate"}
                </Button>
                <Button type="button" variant="secondary" onClick={() => setConfirming(false)}>
                  Cancel
                </Button>
              </div>
            </div>
          ) : (
            <Button type="button" variant="secondary" onClick={() => setConfirming(true)}>
              Regenerate local-CA certificate
            </Button>
          )}
          <FormMessage message={message?.text} tone={message?.tone} />
        </div>
      ) : null}
    </section>
  );
}

const ACME_STATUS_TEXT: Record<string, string> = {
  pending: "Queued: the worker picks the order up within a second.",
  requesting: "Requesting: the CA is validating the domain.",
  renewing: "Renewing: the current certificate keeps serving meanwhile.",
  active: "Active: the console serves this certificate.",
  failed: "Failed: the console keeps serving its current certificate.",
  expired: "Expired.",
};

function AcmeSection({ status, isAdmin }: { status: ConsoleTlsStatus; isAdmin: boolean }) {
  const queryClient = useQueryClient();
  const router = useRouter();
  const { pending, errors, message, setMessage, submit } = useApiSubmit();
  const [enabled, setEnabled] = useState(status.acme.enabled);
  const acme = status.acme;
  const domainLock = status.locked.acmeDomain;
  const emailLock = status.locked.acmeEmail;
  const readOnly = !isAdmin;

  function save(form: FormData) {
    const body = {
      acme: {
        enabled: form.get("acmeEnabled") === "on",
        ...(domainLock ? {} : { domain: String(form.get("acmeDomain") ?? "").trim() || undefined }),
        ...(emailLock ? {} : { email: String(form.get("acmeEmail") ?? "").trim() || undefined }),
      },
    };
    return submit(
      () => putTls(body),
      (saved) => {
        queryClient.setQueryData(tlsStatusKey, saved);
        setMessage({
          text: saved.acme.enabled
            ? `Saved. ${saved.restartRequired ?? "The worker orders the certificate now; this page shows its progress."}`
            : `Saved: Let's Encrypt is off for the console. ${saved.restartRequired ?? ""}`.trim(),
          tone: "success",
        });
        router.refresh();
      },
      { showFailure: renameFields(acmeField) },
    );
  }

  return (
    <section aria-labelledby="acme-heading" className="rounded-lg bg-white ring-1 ring-slate-200">
      <h2 id="acme-heading" className="border-b border-slate-200 px-4 py-3 text-lg font-semibold">
        Let&apos;s Encrypt for the console
      </h2>
      <form
        className="space-y-4 px-4 py-3"
        noValidate
        onSubmit={(e) => {
          e.preventDefault();
          void save(new FormData(e.currentTarget));
        }}
      >
        <p className="text-sm text-slate-600">
          The console&apos;s domain must resolve to this machine (an A or AAAA record), and the CA must reach it: on port 443, answered by the console itself when it listens
          there (TLS-ALPN-01), otherwise on port 80 through an HTTP listener (HTTP-01; add one under Listeners). Until the first certificate arrives the console serves a
          self-signed one for the domain; the issued one is swapped in without a restart.
        </p>
        <label className="flex items-center gap-2 text-sm font-medium text-slate-800">
          <input type="checkbox" name="acmeEnabled" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} disabled={readOnly} />
          Enable Let&apos;s Encrypt
        </label>
        <TextField
          name="acmeDomain"
          label="Console domain"
          placeholder="portcullis.example.com"
          defaultValue={acme.domain ?? ""}
          disabled={readOnly || Boolean(domainLock)}
          hint={lockedHint(domainLock)}
          errors={errors.acmeDomain}
          autoComplete="off"
          spellCheck={false}
        />
        <TextField
          name="acmeEmail"
          label="Contact email"
          type="email"
          placeholder="you@example.com"
          defaultValue={acme.email ?? ""}
          disabled={readOnly || Boolean(emailLock)}
          hint={lockedHint(emailLock) ?? "Let's Encrypt writes here before a certificate expires and about problems with the account."}
          errors={errors.acmeEmail}
          autoComplete="off"
        />
        <FormMessage message={message?.text} tone={message?.tone} />
        {isAdmin ? (
          <Button type="submit" disabled={pending}>
            {pending ? "Saving…" : "Save"}
          </Button>
        ) : null}
      </form>
      {acme.certificateId ? <ConsoleAcmeStatus key={acme.certificateId} certificateId={acme.certificateId} acme={acme} /> : null}
    </section>
  );
}

/**
 * The console certificate's status under the ACME form, stepped like a certificate page's badge: the
 * status read with the settings (as of statusAsOf), then each change after it, from the stream or from the
 * changes read with a later render of the settings (statusSteps), each on screen for a moment
 * (Pending → Requesting → Active, even with a quick CA). Keyed by the certificate id, so a new order starts
 * from its own status.
 */
function ConsoleAcmeStatus({ certificateId, acme }: { certificateId: string; acme: ConsoleTlsStatus["acme"] }) {
  const stepped = useCertificateStatus(certificateId, (acme.status ?? "pending") as CertificateDetail["status"], acme.statusAsOf, acme.statusSteps);
  // No status when the certificate row is gone (deleted under Certificates): no badge then, rather than a made-up one.
  const status = acme.status ? stepped : null;
  return (
    <div className="space-y-2 border-t border-slate-200 px-4 py-3 text-sm" data-testid="console-acme-status">
      <p className="flex flex-wrap items-center gap-2">
        <span className="font-medium">Console certificate:</span>
        {status ? <StatusBadge status={status} /> : null}
        <span className="text-slate-600">{ACME_STATUS_TEXT[status ?? ""] ?? ""}</span>
        <Link href={`/certificates/${certificateId}`} className="font-medium text-indigo-700 underline">
          Open the certificate
        </Link>
      </p>
      {acme.lastError ? (
        <p className="rounded-md bg-red-50 p-3 text-red-900" data-testid="console-acme-error">
          {acme.lastError}
        </p>
      ) : null}
    </div>
  );
}
