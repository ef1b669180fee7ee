import Link from "next/link";
import { DetailRow } from "@/components/ui/detail-row";
import { EventTimeline } from "@/components/events/event-timeline";
import type { CertificateDetail } from "@/lib/certificates";
import type { EventPage } from "@/lib/events/query";
import { formatDateTime, relativeTime, SOURCE_LABELS } from "@/lib/format";
import type { CertificatePlacement, ListenerChoice } from "@/components/listeners/data";
import { LiveStatusBadge } from "./certificate-status";
import { AcmeRenewal } from "./acme-renewal";
import { DeleteCertificate } from "./delete-certificate";
import { PrivateKeyDownload } from "./private-key-download";
import { ServeOnListener } from "./serve-on-listener";

const KEY_LABELS: Record<string, string> = {
  "ecdsa-p256": "ECDSA P-256",
  "ecdsa-p384": "ECDSA P-384",
  "rsa-2048": "RSA 2048",
  "rsa-4096": "RSA 4096",
};

export function CertificateDetailView({
  cert,
  events,
  isAdmin,
  listeners,
  placements,
  renderedAfter,
}: {
  cert: CertificateDetail;
  events: EventPage;
  isAdmin: boolean;
  listeners: ListenerChoice[];
  placements: CertificatePlacement[];
  /** The newest event id when the page was read: statuses streamed after it are newer. */
  renderedAfter: number;
}) {
  return (
    <div className="space-y-6">
      <div className="flex flex-wrap items-start justify-between gap-3">
        <div>
          <Link href="/certificates" className="text-sm text-indigo-700 hover:underline">
            ← Certificates
          </Link>
          <h1 className="mt-1 break-all text-2xl font-bold" data-testid="certificate-name">
            {cert.name}
          </h1>
          <p className="mt-1 flex items-center gap-2 text-sm text-slate-600">
            <LiveStatusBadge cert={cert} renderedAfter={renderedAfter} timeline={events.items} /> {SOURCE_LABELS[cert.source] ?? cert.source}
          </p>
        </div>
        <div className="flex flex-wrap gap-2">
          {cert.chainPem ? (
            <a href={`/api/v1/certificates/${cert.id}/pem`} download className="inline-flex items-center rounded-md bg-indigo-600 px-3 py-2 text-sm font-semibold text-white hover:bg-indigo-500" data-testid="download-pem">
              Download PEM chain
            </a>
          ) : null}
          {isAdmin && cert.source === "upload" ? (
            <Link href={`/certificates/${cert.id}/upload`} className="inline-flex items-center rounded-md bg-white px-3 py-2 text-sm font-semibold text-slate-900 ring-1 ring-inset ring-slate-300 hover:bg-slate-50">
              Upload new version
            </Link>
          ) : null}
          {isAdmin ? <DeleteCertificate id={cert.id} name={cert.name} /> : null}
        </div>
      </div>

      {cert.selfSigned ? (
        <p className="rounded-md bg-amber-50 px-3 py-2 text-sm text-amber-900">
          Self-signed: browsers and clients will not trust this certificate unless it is added to their trust store.
        </p>
      ) : null}

      <section aria-labelledby="details-heading" className="rounded-lg bg-white ring-1 ring-slate-200">
        <h2 id="details-heading" className="border-b border-slate-200 px-4 py-3 text-lg font-semibold">
          Details
        </h2>
        <dl className="divide-y divide-slate-100 text-sm">
          <DetailRow label="Names (SANs)">
            <ul className="space-y-0.5 font-mono text-xs" data-testid="sans">
              {cert.domains.map((d) => (
                <li key={d}>{d}</li>
              ))}
            </ul>
          </DetailRow>
          <DetailRow label="Subject">{cert.subject ?? "—"}</DetailRow>
          <DetailRow label="Issuer">{cert.issuer ?? "—"}</DetailRow>
          <DetailRow label="Serial number">
            <span className="break-all font-mono text-xs">{cert.serial ?? "—"}</span>
          </DetailRow>
          <DetailRow label="SHA-256 fingerprint">
            <span className="break-all font-mono text-xs" data-testid="fingerprint">
              {cert.fingerprintSha256 ?? "—"}
            </span>
          </DetailRow>
          <DetailRow label="Valid from">{formatDateTime(cert.notBefore)}</DetailRow>
          <DetailRow label="Valid until">
            {formatDateTime(cert.notAfter)} <span className="text-slate-500">({relativeTime(cert.notAfter)})</span>
          </DetailRow>
          <DetailRow label="Key type">{KEY_LABELS[cert.keyType] ?? cert.keyType}</DetailRow>
          {cert.acme ? null : <DetailRow label="Renewal">{cert.renewAt ? `${formatDateTime(cert.renewAt)} — ${cert.renewReason ?? ""}` : (cert.renewReason ?? "—")}</DetailRow>}
          <DetailRow label="Private key">
            {cert.hasPrivateKey ? (
              isAdmin ? (
                <PrivateKeyDownload id={cert.id} />
              ) : (
                "Stored sealed. Only admins can download it."
              )
            ) : (
              "none stored"
            )}
          </DetailRow>
        </dl>
      </section>

      <AcmeRenewal cert={cert} isAdmin={isAdmin} />

      <ServeOnListener certificateId={cert.id} listeners={listeners} placements={placements} canServe={isAdmin && Boolean(cert.chainPem)} />

      <section aria-labelledby="versions-heading" className="rounded-lg bg-white ring-1 ring-slate-200">
        <h2 id="versions-heading" className="border-b border-slate-200 px-4 py-3 text-lg font-semibold">
          Versions
        </h2>
        <ul className="divide-y divide-slate-100 text-sm">
          {cert.versions.map((v) => (
            <li key={v.version} className="px-4 py-2">
              <span className="font-medium">v{v.version}</span> · {v.reason} · {formatDateTime(v.createdAt)} ·{" "}
              <span className="font-mono text-xs">{v.fingerprintSha256.slice(0, 23)}…</span>
            </li>
          ))}
        </ul>
      </section>

      <EventTimeline certificateId={cert.id} initial={events} />
    </div>
  );
}
