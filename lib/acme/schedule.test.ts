import { describe, expect, it } from "vitest";
import { ariCertId, ariRenewal, backoffDelayMs, lifetimeRenewal, nextAttemptAfterFailure } from "./schedule";

const DAY = 86_400_000;
const HOUR = 3_600_000;

describe("renewal time", () => {
  it("renews a 90-day certificate with 30 days left", () => {
    const nb = new Date("2026-01-01T00:00:00Z");
    const na = new Date(nb.getTime() + 90 * DAY);
    const plan = lifetimeRenewal(nb, na);
    expect(plan.renewAt.toISOString()).toBe(new Date(na.getTime() - 30 * DAY).toISOString());
    expect(plan.reason).toMatch(/one third of its 90-day lifetime/);
  });

  it("renews a 6-day certificate with half of it left", () => {
    const nb = new Date("2026-01-01T00:00:00Z");
    const plan = lifetimeRenewal(nb, new Date(nb.getTime() + 6 * DAY));
    expect(plan.renewAt.toISOString()).toBe(new Date(nb.getTime() + 3 * DAY).toISOString());
    expect(plan.reason).toMatch(/half/);
  });

  it("picks a time inside the CA's window, never before now", () => {
    const now = new Date("2026-03-01T00:00:00Z");
    const window = { start: new Date("2026-02-20T00:00:00Z"), end: new Date("2026-03-03T00:00:00Z") };
    for (const r of [0, 0.5, 0.999]) {
      const { renewAt } = ariRenewal(window, now, () => r);
      expect(renewAt.getTime()).toBeGreaterThanOrEqual(now.getTime());
      expect(renewAt.getTime()).toBeLessThan(window.end.getTime());
    }
    expect(ariRenewal(window, now, () => 0.5).renewAt.toISOString()).toBe("2026-03-02T00:00:00.000Z");
  });

  it("renews at once when the window has passed", () => {
    const now = new Date("2026-03-10T00:00:00Z");
    const plan = ariRenewal({ start: new Date("2026-03-01T00:00:00Z"), end: new Date("2026-03-02T00:00:00Z") }, now);
    expect(plan.renewAt).toEqual(now);
    expect(plan.reason).toMatch(/renewing now/);
  });
});

describe("backoff", () => {
  it("doubles from 1 h to a 24 h cap", () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map((n) => backoffDelayMs(n) / HOUR)).toEqual([1, 2, 4, 8, 16, 24, 24, 24]);
  });

  it("waits for the CA's retry-after when that is later", () => {
    const now = new Date("2026-01-01T00:00:00Z");
    expect(nextAttemptAfterFailure(1, now).toISOString()).toBe("2026-01-01T01:00:00.000Z");
    const later = new Date("2026-01-02T00:00:00Z");
    expect(nextAttemptAfterFailure(1, now, later)).toEqual(later);
  });
});

describe("ARI certificate id", () => {
  it("matches RFC 9773's example", () => {
    // RFC 9773 §4.1: AKI 69:88:5B:6B:87:46:40:41:E1:B3:7B:84:7B:A0:AE:2C:DE:01:C8:D4, serial 00:87:65:43:21
    expect(ariCertId("69885B6B87464041E1B37B847BA0AE2CDE01C8D4", "0087654321")).toBe("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
    expect(ariCertId("69885B6B87464041E1B37B847BA0AE2CDE01C8D4", "87654321")).toBe("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE");
  });
});
