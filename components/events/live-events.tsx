"use client";

import { useQueryClient } from "@tanstack/react-query";
import { useRouter } from "next/navigation";
import { createContext, useContext, useEffect, useRef, useState, useSyncExternalStore } from "react";
import { statusSteps, type StatusStep } from "@/lib/events/status-steps";

// The console's one connection to GET /api/v1/events/stream. Each event invalidates the queries it
// touches and re-renders the server components of the page (status badges, lists), debounced.
// While the stream is down, queries poll and the page refreshes every few seconds instead.

const STREAM_URL = "/api/v1/events/stream";
const DEBOUNCE_MS = 100;
const FALLBACK_POLL_MS = 5_000;
const REOPEN_MIN_MS = 2_000;
const REOPEN_MAX_MS = 30_000;

type LiveState = "connecting" | "live" | "paused";

const LiveContext = createContext<LiveState>("connecting");

/** For useQuery's refetchInterval: no polling while the stream is live, polling while it is down. */
export function useLiveRefetchInterval(): number | false {
  return useContext(LiveContext) === "paused" ? FALLBACK_POLL_MS : false;
}

type StreamedEvent = { id: number; certificateId: string | null; listenerId: string | null; detail?: { status?: unknown } | null };

/**
 * The status changes the page has learnt of for each certificate, in event order: from the stream, and
 * from the certificate's timeline (which a server render or a refetch may bring before the stream does).
 * Its badge steps through them, so a change that was quick, or that came while the page was on its
 * way, is still shown.
 */
const statusHistory = new Map<string, StatusStep[]>();
const historyListeners = new Set<() => void>();
const STATUS_STEPS_KEPT = 16;

/** Adds the events that carry a status (detail.status) to the certificate's history; ignores those known. */
export function rememberStatuses(certificateId: string, events: Iterable<{ id: number; detail?: unknown }>) {
  const known = statusHistory.get(certificateId) ?? [];
  const added: StatusStep[] = [];
  for (const step of statusSteps(events)) {
    if (!known.some((k) => k.eventId === step.eventId) && !added.some((k) => k.eventId === step.eventId)) added.push(step);
  }
  if (!added.length) return;
  // A new array each time: it is what useStatusHistory compares.
  statusHistory.set(certificateId, [...known, ...added].sort((a, b) => a.eventId - b.eventId).slice(-STATUS_STEPS_KEPT));
  for (const listener of historyListeners) listener();
}

const requestedHere = new Set<string>();

/**
 * This tab has just asked for the certificate (the ACME form does, before it opens the certificate's
 * page): that page's badge then shows every status change of it from Pending on, those that happened
 * while the page loaded included, rather than starting from the status the page was read with.
 */
export function markRequested(certificateId: string) {
  requestedHere.add(certificateId);
}

/** Whether markRequested was called for the certificate and its page has not shown the steps yet. */
export const wasRequestedHere = (certificateId: string) => requestedHere.has(certificateId);

/** The page has shown them: a later visit starts from the status it is read with. */
export function forgetRequested(certificateId: string) {
  requestedHere.delete(certificateId);
}

const subscribeHistory = (listener: () => void) => {
  historyListeners.add(listener);
  return () => historyListeners.delete(listener);
};
const NO_STEPS: StatusStep[] = [];

/** The certificate's status history, oldest first; a new array whenever it grows. */
export function useStatusHistory(certificateId: string): StatusStep[] {
  return useSyncExternalStore(
    subscribeHistory,
    () => statusHistory.get(certificateId) ?? NO_STEPS,
    () => NO_STEPS,
  );
}

/** startAfter: the newest event id when the server rendered the page; the stream begins after it. */
export function LiveEvents({ startAfter, children }: { startAfter: number; children: React.ReactNode }) {
  const queryClient = useQueryClient();
  const router = useRouter();
  const routerRef = useRef(router);
  const [state, setState] = useState<LiveState>("connecting");
  const lastEventId = useRef(String(startAfter));

  useEffect(() => {
    routerRef.current = router;
  }, [router]);

  useEffect(() => {
    let source: EventSource | undefined;
    let reopenTimer: ReturnType<typeof setTimeout> | undefined;
    let flushTimer: ReturnType<typeof setTimeout> | undefined;
    let reopenDelay = REOPEN_MIN_MS;
    let wasDown = false;
    let pending: { all: boolean; certificates: Set<string>; listeners: Set<string> } = { all: false, certificates: new Set(), listeners: new Set() };

    const flush = () => {
      flushTimer = undefined;
      const { all, certificates, listeners } = pending;
      pending = { all: false, certificates: new Set(), listeners: new Set() };
      if (all) {
        void queryClient.invalidateQueries();
      } else {
        void queryClient.invalidateQueries({ queryKey: ["events"] });
        void queryClient.invalidateQueries({ queryKey: ["certificates"] });
        void queryClient.invalidateQueries({ queryKey: ["dashboard"] });
        for (const id of certificates) void queryClient.invalidateQueries({ queryKey: ["certificate", id] });
        for (const id of listeners) void queryClient.invalidateQueries({ queryKey: ["listener", id] });
      }
      routerRef.current.refresh();
    };
    const schedule = () => {
      flushTimer ??= setTimeout(flush, DEBOUNCE_MS);
    };

    const open = () => {
      // A stream opened by us (not the browser's own reconnect) resumes after the last event seen.
      const es = new EventSource(`${STREAM_URL}?after=${encodeURIComponent(lastEventId.current)}`);
      source = es;
      es.addEventListener("open", () => {
        reopenDelay = REOPEN_MIN_MS;
        setState("live");
        if (wasDown) {
          // Missed events are replayed from the cursor; this also catches whatever polling did not.
          wasDown = false;
          pending.all = true;
          schedule();
        }
      });
      // The highest id seen: an event that committed late may arrive after a newer one.
      const seen = (id: string) => {
        if (/^\d+$/.test(id) && Number(id) > Number(lastEventId.current)) lastEventId.current = id;
      };
      es.addEventListener("ready", (message) => seen(message.lastEventId));
      es.addEventListener("event", (message) => {
        seen(message.lastEventId);
        try {
          const event = JSON.parse(message.data) as StreamedEvent;
          if (event.certificateId) pending.certificates.add(event.certificateId);
          if (event.listenerId) pending.listeners.add(event.listenerId);
          // A status change shows at once: in the certificate page's badge, which steps through the history,
          // and in queries of the certificate (Settings → TLS); the refetch below brings the rest.
          const status = event.detail?.status;
          if (event.certificateId && typeof status === "string") {
            rememberStatuses(event.certificateId, [event]);
            queryClient.setQueryData<{ status: string }>(["certificate", event.certificateId], (old) => (old && old.status !== status ? { ...old, status } : old));
          }
        } catch {
          pending.all = true;
        }
        schedule();
      });
      es.addEventListener("error", () => {
        wasDown = true;
        setState("paused");
        // CONNECTING: the browser retries by itself. CLOSED (an HTTP error, say): we do, with backoff.
        if (es.readyState === EventSource.CLOSED) {
          es.close();
          clearTimeout(reopenTimer);
          reopenTimer = setTimeout(open, reopenDelay);
          reopenDelay = Math.min(reopenDelay * 2, REOPEN_MAX_MS);
        }
      });
    };
    open();
    return () => {
      source?.close();
      clearTimeout(reopenTimer);
      clearTimeout(flushTimer);
    };
  }, [queryClient]);

  useEffect(() => {
    if (state !== "paused") return;
    const timer = setInterval(() => routerRef.current.refresh(), FALLBACK_POLL_MS);
    return () => clearInterval(timer);
  }, [state]);

  return (
    <LiveContext.Provider value={state}>
      {children}
      <div data-testid="live-status" data-state={state} aria-live="polite" className="pointer-events-none fixed bottom-3 right-3 z-20">
        {state === "paused" ? (
          <p role="status" className="rounded-full bg-amber-50 px-3 py-1 text-xs text-amber-900 shadow-sm ring-1 ring-amber-300">
            Live updates paused — retrying
          </p>
        ) : null}
      </div>
    </LiveContext.Provider>
  );
}
