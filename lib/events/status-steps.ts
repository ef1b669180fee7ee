// A certificate's status changes as steps of its badge (Pending → Requesting → Active), shared by the
// server (which reads them with a status) and the browser (which steps through them). No imports: the
// browser bundles this file.

export type StatusStep = { eventId: number; status: string };

/** The events that carry a status (detail.status), as steps of a badge, in the order given. */
export function statusSteps(events: Iterable<{ id: number; detail?: unknown }>): StatusStep[] {
  const steps: StatusStep[] = [];
  for (const e of events) {
    const status = (e.detail as { status?: unknown } | null | undefined)?.status;
    if (typeof status === "string") steps.push({ eventId: e.id, status });
  }
  return steps;
}

/** What a status badge has shown and has yet to show: `seen` is the event id of the last step taken. */
export type StepQueue = { shown: string; queue: string[]; seen: number };

/**
 * Takes the status changes newer than the last one taken, from every source at once and in event order:
 * the steps read with the page's latest server render, the stream's history, and the server render's own
 * status (a step just after its renderedAfter). Taken one source at a time, a step that reached one source
 * late (the stream's Requesting, after a render that already said Active) would be older than one already
 * taken, and lost. A step that repeats the status before it is not queued.
 */
export function takeSteps(state: StepQueue, ...sources: StatusStep[][]): void {
  const steps = sources.flat().sort((a, b) => a.eventId - b.eventId);
  for (const step of steps) {
    if (step.eventId <= state.seen) continue; // shown already, or the same event from two sources
    if (step.status !== (state.queue.at(-1) ?? state.shown)) state.queue.push(step.status);
    state.seen = step.eventId;
  }
}
