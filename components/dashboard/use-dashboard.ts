"use client";

import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect } from "react";
import { getJson } from "@/components/events/api";
import { useLiveRefetchInterval } from "@/components/events/live-events";
import type { DashboardOverview } from "@/lib/dashboard";

// The live stream invalidates ["dashboard"] on every event (tls.issued, tls.renewal_failed, …), so the
// timeline and the attention list follow without a reload; while the stream is down, this polls.
export const DASHBOARD_QUERY_KEY = ["dashboard"] as const;

/** The server's render is the first value; a later server render (router.refresh, a revisit) replaces an older cache. */
export function useDashboard(initial: DashboardOverview) {
  const client = useQueryClient();
  useEffect(() => {
    const cached = client.getQueryData<DashboardOverview>(DASHBOARD_QUERY_KEY);
    if (!cached || cached.generatedAt < initial.generatedAt) client.setQueryData(DASHBOARD_QUERY_KEY, initial);
  }, [client, initial]);
  return useQuery({
    queryKey: DASHBOARD_QUERY_KEY,
    queryFn: ({ signal }) => getJson<DashboardOverview>("/api/v1/dashboard", signal),
    initialData: initial,
    refetchInterval: useLiveRefetchInterval(),
  });
}
