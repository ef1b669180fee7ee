import { describe, expect, it } from "vitest";
import { relativeTime } from "./format";

describe("relativeTime", () => {
  const now = new Date("2026-01-01T00:00:00Z");
  it("says how many whole days are left", () => {
    expect(relativeTime("2027-01-01T00:00:00Z", now)).toBe("in 365 days");
    expect(relativeTime("2026-12-31T23:00:00Z", now)).toBe("in 364 days");
    expect(relativeTime("2026-01-02T00:00:00Z", now)).toBe("in 1 day");
  });
  it("speaks of the past", () => {
    expect(relativeTime("2025-12-29T00:00:00Z", now)).toBe("3 days ago");
    expect(relativeTime("2025-12-31T22:00:00Z", now)).toBe("2 hours ago");
    expect(relativeTime(null, now)).toBe("—");
  });
});
