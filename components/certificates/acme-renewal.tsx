"use client";

import { useRouter } from "next/navigation";
import { sendJson } from "@/components/forms/api";
import { useApiSubmit } from "@/components/forms/use-api-submit";
import { Button } from "@/components/ui/button";
import { FormMessage } from "@/components/ui/field";
import type { CertificateDetail } from "@/lib/certificates";
import { formatDateTime, relativeTime } from "@/lib/format";

const STEPS: Record<string, string> = {
  ordering: "creating the order",
  authorizing: "order created; fetching the authorizations",
  validating: "the CA is checking the challenge answers",
  propagating: "waiting until the DNS name servers answer the TXT records",
  finalizing: "sending the certificate signing request",
  downloading: "downloading the issued certificate",
};

const CHALLENGES: Record<string, string> = { "http-01": "HTTP-01", "tls-alpn-01": "TLS-ALPN-01", "dns-01": "DNS-01" };

/** How and when an ACME certificate renews, why the last attempt failed, and the buttons that skip the wait. */
export function AcmeRenewal({ cert, isAdmin }: { cert: CertificateDetail; isAdmin: boolean }) {
  const router = useRouter();
  const { pending, message, submit } = useApiSubmit();
  const acme = cert.acme;
  if (!acme) return null;
  const failed = cert.status === "failed" || (cert.status === "expired" && cert.lastError);
  const working = cert.status === "requesting" || cert.status === "renewing";
  const label = failed || !cert.chainPem ? "Retry now" : "Renew now";

  function renew() {
    return submit(() => sendJson<unknown>("POST", `/api/v1/certificates/${cert.id}/renew`), () => router.refresh());
  }

  return (
    <section aria-labelledby="renewal-heading" className="rounded-lg bg-white ring-1 ring-slate-200">
      <div className="flex flex-wrap items-center justify-between gap-2 border-b border-slate-200 px-4 py-3">
        <h2 id="renewal-heading" className="text-lg font-semibold">
          {acme.caName ?? "ACME"} · {CHALLENGES[acme.challenge ?? ""] ?? acme.challenge}
          {acme.dnsCredential ? <span className="font-normal text-slate-600"> via {acme.dnsCredential.name}</span> : null}
        </h2>
        {isAdmin ? (
          <Button variant="secondary" onClick={() => void renew()} disabled={pending || working} data-testid="renew-now">
            {pending ? "Asking the worker…" : label}
          </Button>
        ) : null}
      </div>
      <div className="space-y-3 px-4 py-3 text-sm">
        {working ? (
          <p data-testid="acme-step">
            In progress: {STEPS[acme.step ?? ""] ?? "waiting for the worker"}
            {acme.attempts ? ` (attempt ${acme.attempts + 1})` : ""}.
          </p>
        ) : null}
        {cert.status === "pending" ? (
          <p data-testid="acme-step">Queued: the worker picks it up within a second{cert.nextAttemptAt ? ` (due ${formatDateTime(cert.nextAttemptAt)})` : ""}.</p>
        ) : null}
        {failed ? (
          <div className="space-y-1 rounded-md bg-red-50 p-3 text-red-900" data-testid="renewal-failure">
            <p className="font-medium">{cert.lastError}</p>
            <p>
              {cert.nextAttemptAt
                ? `Next automatic try ${formatDateTime(cert.nextAttemptAt)} (${relativeTime(cert.nextAttemptAt)}), after ${acme.attempts} failed attempt${acme.attempts === 1 ? "" : "s"}; waits double from 1 hour up to 24 hours.`
                : "Not retried automatically: the certificate has expired. Press Retry now once the cause is fixed."}
              {cert.chainPem && cert.status !== "expired" ? ` The current certificate keeps serving until ${formatDateTime(cert.notAfter)}.` : ""}
            </p>
            {acme.lastErrorDetail ? (
              <details>
                <summary className="cursor-pointer text-xs">What the CA said</summary>
                <pre className="mt-1 whitespace-pre-wrap break-all font-mono text-xs">{acme.lastErrorDetail}</pre>
              </details>
            ) : null}
          </div>
        ) : null}
        {cert.status === "active" && cert.renewAt ? (
          <p data-testid="renewal-plan">
            Renews {formatDateTime(cert.renewAt)} ({relativeTime(cert.renewAt)}): {cert.renewReason}
          </p>
        ) : null}
        {acme.renewalWindow ? (
          <p className="text-slate-600">
            The CA&apos;s suggested renewal window: {formatDateTime(acme.renewalWindow.start)} – {formatDateTime(acme.renewalWindow.end)}
            {acme.renewalInfoCheckedAt ? `, checked ${relativeTime(acme.renewalInfoCheckedAt)}` : ""}.
          </p>
        ) : null}
        <FormMessage message={message?.text} tone={message?.tone} />
      </div>
    </section>
  );
}
