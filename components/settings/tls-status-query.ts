"use client";

import { useQuery } from "@tanstack/react-query";
import { getJson, queryKeys, useServerValue } from "@/components/events/api";
import { useLiveRefetchInterval } from "@/components/events/live-events";
import type { ConsoleTlsStatus } from "@/lib/console/tls-status";

// Settings → TLS reads GET /api/v1/settings/tls through react-query. The live stream re-renders the
// page (router.refresh) on every event, "console.tls_changed" included; the fresh server value lands
// in the cache here, and the query polls only while the stream is down.

export const tlsStatusKey = ["console-tls"] as const;

export function useConsoleTlsStatus(initial: ConsoleTlsStatus) {
  useServerValue(tlsStatusKey, initial);
  return useQuery({
    queryKey: tlsStatusKey,
    queryFn: ({ signal }) => getJson<ConsoleTlsStatus>("/api/v1/settings/tls", signal),
    initialData: initial,
    refetchInterval: useLiveRefetchInterval(),
  });
}

/**
 * The console certificate's ACME status as the stream reports it: the stream writes each status
 * change of ["certificate", id] into the cache the moment it arrives (Pending → Requesting → Active).
 */
export function useConsoleCertificateStatus(certificateId: string | null, fallback: string | null): string | null {
  const query = useQuery({
    queryKey: queryKeys.certificate(certificateId ?? "none"),
    queryFn: ({ signal }) => getJson<{ status: string }>(`/api/v1/certificates/${encodeURIComponent(certificateId ?? "")}`, signal),
    enabled: Boolean(certificateId),
    refetchInterval: useLiveRefetchInterval(),
  });
  return certificateId ? (query.data?.status ?? fallback) : fallback;
}
