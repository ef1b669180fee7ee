"use client";

import { useQuery } from "@tanstack/react-query";
import { getJson, useServerValue } from "@/components/events/api";
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
