"use client";

import { useCertificateStatus } from "@/components/events/api";
import { StatusBadge } from "@/components/ui/badge";
import type { CertificateDetail } from "@/lib/certificates";

/** The status badge of a certificate's page, kept current by the live stream. */
export function LiveStatusBadge({ cert, renderedAfter }: { cert: CertificateDetail; renderedAfter: number }) {
  return <StatusBadge status={useCertificateStatus(cert.id, cert.status, renderedAfter)} />;
}
