import { describe, expect, it } from "vitest";
import { takeSteps, type StepQueue } from "@/lib/events/status-steps";

// The steps a certificate's status badge shows (Pending → Requesting → Active), from the page's server
// render, its timeline and the live stream, which reach the page in no fixed order.

const mountedAt = (status: string, renderedAfter: number): StepQueue => ({ shown: status, queue: [], seen: renderedAfter + 0.5 });
const step = (eventId: number, status: string) => ({ eventId, status });

describe("takeSteps", () => {
  it("a render ahead of the stream: Requesting, which only its timeline holds yet, is shown before Active", () => {
    const badge = mountedAt("pending", 5); // rendered as of event 5 (the order's "pending")
    // A later render as of event 9 says Active; its timeline holds the changes up to 9; the stream has sent nothing yet.
    takeSteps(badge, [step(5, "pending"), step(6, "requesting"), step(9, "active")], [], [step(9.5, "active")]);
    expect(badge.queue).toEqual(["requesting", "active"]);
    expect(badge.seen).toBe(9.5);
    // Then the stream delivers the same changes: nothing is shown twice.
    takeSteps(badge, [], [step(6, "requesting"), step(9, "active")], [step(9.5, "active")]);
    expect(badge.queue).toEqual(["requesting", "active"]);
  });

  it("without the timeline the render's Active is taken first, and the stream's Requesting, older, comes too late", () => {
    // What Settings → TLS did before its status came with its changes (statusSteps): the step is lost.
    const badge = mountedAt("pending", 5);
    takeSteps(badge, [], [], [step(9.5, "active")]);
    takeSteps(badge, [], [step(6, "requesting"), step(9, "active")], [step(9.5, "active")]);
    expect(badge.queue).toEqual(["active"]);
  });

  it("steps from the stream in event order, one per change, none already shown", () => {
    const badge = mountedAt("active", 20);
    takeSteps(badge, [step(18, "renewing")], [step(21, "active"), step(23, "failed"), step(22, "renewing")], [step(20.5, "active")]);
    expect(badge.queue).toEqual(["renewing", "failed"]);
    expect(badge.seen).toBe(23);
  });
});
