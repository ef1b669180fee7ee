"use client";

import { useMemo } from "react";
import { useCertificateStatus } from "@/components/events/api";
import { StatusBadge } from "@/components/ui/badge";
import type { CertificateDetail } from "@/lib/certificates";
import type { EventPage } from "@/lib/events/query";
import { statusSteps } from "@/lib/events/status-steps";

/** The status badge of a certificate's page, kept current by the live stream; timeline: the page's events as rendered. */
export function LiveStatusBadge({ cert, renderedAfter, timeline }: { cert: CertificateDetail; renderedAfter: number; timeline: EventPage["items"] }) {
  const steps = useMemo(() => statusSteps(timeline), [timeline]);
  return <StatusBadge status={useCertificateStatus(cert.id, cert.status, renderedAfter, steps)} />;
}
