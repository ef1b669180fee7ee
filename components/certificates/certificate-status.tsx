"use client";

import { useCertificateStatus } from "@/components/events/api";
import { StatusBadge } from "@/components/ui/badge";
import type { CertificateDetail } from "@/lib/certificates";
import type { EventPage } from "@/lib/events/query";

/** The status badge of a certificate's page, kept current by the live stream; timeline: the page's events as rendered. */
export function LiveStatusBadge({ cert, renderedAfter, timeline }: { cert: CertificateDetail; renderedAfter: number; timeline: EventPage["items"] }) {
  return <StatusBadge status={useCertificateStatus(cert.id, cert.status, renderedAfter, timeline)} />;
}
