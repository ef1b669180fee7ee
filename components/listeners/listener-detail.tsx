import Link from "next/link";
import { DetailRow } from "@/components/ui/detail-row";
import type { ListenerView, MappingView } from "@/lib/listeners";
import { formatDateTime } from "@/lib/format";
import { AddMappingForm } from "./add-mapping-form";
import { formatAddress, type CertificateOption, type UnmappedName } from "./data";
import { EnabledBadge, FALLBACK_LABELS, KIND_LABELS } from "./labels";
import { ListenerControls } from "./listener-controls";
import { upstreamOrAction } from "./listener-list";
import { MappingsTable } from "./mappings-table";
import { RefreshWhileChecking } from "./refresh-while-checking";
import { currentCheck, type ServedCheckView } from "./served-check";
import { UnmappedNames } from "./unmapped-names";

export function ListenerDetailView({
  listener,
  mappings,
  checks,
  certificates,
  unmapped,
  isAdmin,
  bindProblem,
}: {
  bindProblem: { at: string; message: string } | null;
  listener: ListenerView;
  mappings: MappingView[];
  checks: ServedCheckView[];
  certificates: CertificateOption[];
  unmapped: UnmappedName[];
  isAdmin: boolean;
}) {
  const defaultCertificate = listener.defaultCertificateId ? certificates.find((c) => c.id === listener.defaultCertificateId) : undefined;
  const checkByHost = new Map(checks.map((c) => [c.hostname, c]));
  const fingerprintById = new Map(certificates.map((c) => [c.id, c.fingerprint]));
  const awaitingChecks = listener.enabled && mappings.some((m) => !currentCheck(checkByHost.get(m.hostname), fingerprintById.get(m.certificateId)));
  return (
    <div className="space-y-6">
      <RefreshWhileChecking pending={awaitingChecks} />
      <div className="flex flex-wrap items-start justify-between gap-3">
        <div>
          <Link href="/listeners" className="text-sm text-indigo-700 hover:underline">
            ← Listeners
          </Link>
          <h1 className="mt-1 break-all text-2xl font-bold" data-testid="listener-name">
            {listener.name}
          </h1>
          <p className="mt-1 flex items-center gap-2 text-sm text-slate-600">
            <EnabledBadge enabled={listener.enabled} /> {KIND_LABELS[listener.kind]} on{" "}
            <span className="font-mono text-xs" data-testid="listener-address">
              {formatAddress(listener.bindAddress, listener.port)}
            </span>
          </p>
        </div>
        {isAdmin ? <ListenerControls id={listener.id} name={listener.name} enabled={listener.enabled} /> : null}
      </div>

      {bindProblem ? (
        <p role="status" data-testid="bind-problem" className="rounded-md bg-red-50 px-3 py-2 text-sm text-red-800">
          Not serving: {bindProblem.message} (since {formatDateTime(bindProblem.at)}). The worker tries again every few seconds.
        </p>
      ) : null}

      <section aria-labelledby="settings-heading" className="rounded-lg bg-white ring-1 ring-slate-200">
        <h2 id="settings-heading" className="border-b border-slate-200 px-4 py-3 text-lg font-semibold">
          Settings
        </h2>
        <dl className="divide-y divide-slate-100 text-sm" data-testid="listener-settings">
          <DetailRow label="Address">
            <span className="font-mono text-xs">{formatAddress(listener.bindAddress, listener.port)}</span>
          </DetailRow>
          <DetailRow label={listener.kind === "https" ? "Upstream" : "Plain HTTP requests"}>{upstreamOrAction(listener)}</DetailRow>
          {listener.kind === "https" ? (
            <>
              <DetailRow label="Minimum TLS version">{listener.minTlsVersion === "TLSv1.3" ? "TLS 1.3" : "TLS 1.2"}</DetailRow>
              <DetailRow label="Default certificate">
                {listener.defaultCertificateId ? (
                  <Link href={`/certificates/${listener.defaultCertificateId}`} className="text-indigo-700 hover:underline">
                    {defaultCertificate?.name ?? listener.defaultCertificateId}
                  </Link>
                ) : (
                  "none"
                )}
              </DetailRow>
              <DetailRow label="When no certificate matches">{FALLBACK_LABELS[listener.fallbackPolicy] ?? listener.fallbackPolicy}</DetailRow>
            </>
          ) : (
            <DetailRow label="ACME HTTP-01">answered on /.well-known/acme-challenge/ whatever the action</DetailRow>
          )}
          <DetailRow label="Changed">{formatDateTime(listener.updatedAt)}</DetailRow>
        </dl>
      </section>

      {listener.kind === "https" ? (
        <>
          <section aria-labelledby="mappings-heading" className="rounded-lg bg-white ring-1 ring-slate-200">
            <div className="border-b border-slate-200 px-4 py-3">
              <h2 id="mappings-heading" className="text-lg font-semibold">
                Mappings
              </h2>
              <p className="text-sm text-slate-600">
                Which certificate each SNI name gets. &ldquo;Served now&rdquo; is the edge&apos;s own handshake to that name, a moment after each change and
                every minute.
              </p>
            </div>
            <MappingsTable listenerId={listener.id} listenerEnabled={listener.enabled} mappings={mappings} checks={checks} certificates={certificates} isAdmin={isAdmin} />
          </section>

          {isAdmin ? (
            <section aria-labelledby="add-mapping-heading" className="rounded-lg bg-white p-4 ring-1 ring-slate-200">
              <h2 id="add-mapping-heading" className="mb-3 text-lg font-semibold">
                Add a mapping
              </h2>
              <AddMappingForm listenerId={listener.id} certificates={certificates} />
            </section>
          ) : null}

          <section aria-labelledby="unmapped-heading" className="rounded-lg bg-white ring-1 ring-slate-200">
            <div className="border-b border-slate-200 px-4 py-3">
              <h2 id="unmapped-heading" className="text-lg font-semibold">
                Unmapped names
              </h2>
              <p className="text-sm text-slate-600">Names clients asked for in the last 7 days that got the fallback certificate.</p>
            </div>
            <UnmappedNames listenerId={listener.id} names={unmapped} isAdmin={isAdmin} />
          </section>
        </>
      ) : null}
    </div>
  );
}
