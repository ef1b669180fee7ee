"use client";

import { useCertificate } from "@/components/events/api";
import { StatusBadge } from "@/components/ui/badge";
import type { CertificateDetail } from "@/lib/certificates";

/** The status badge of a certificate's page, kept current by the live stream. */
export function LiveStatusBadge({ cert, renderedAfter }: { cert: CertificateDetail; renderedAfter: number }) {
  const { data } = useCertificate(cert, renderedAfter);
  return <StatusBadge status={data.status} />;
}
