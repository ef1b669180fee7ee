"use client";

import { useCertificate } from "@/components/events/api";
import { StatusBadge } from "@/components/ui/badge";
import type { CertificateDetail } from "@/lib/certificates";

/** The status badge of a certificate's page, kept current by the live stream. */
export function LiveStatusBadge({ cert }: { cert: CertificateDetail }) {
  const { data } = useCertificate(cert);
  return <StatusBadge status={data.status} />;
}
