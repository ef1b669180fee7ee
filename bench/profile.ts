import fs from "node:fs";

/** Self time per function (µs) from a V8 CPU profile, busiest first, and the total busy time. */
export function profileSelfTimes(file: string, root: string): { totalUs: number; functions: [string, number][] } {
  type Node = { id: number; callFrame: { functionName: string; url: string; lineNumber: number } };
  const profile = JSON.parse(fs.readFileSync(file, "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let totalUs = 0;
  profile.samples.forEach((id, i) => {
    const n = byId.get(id)!;
    const dt = profile.timeDeltas[i] ?? 0;
    if (n.callFrame.functionName === "(idle)") return;
    totalUs += dt;
    const url = n.callFrame.url.replace(`file://${root}/`, "").replace(/^.*node_modules\//, "");
    const key = `${n.callFrame.functionName || "(anonymous)"}  ${url ? `${url}:${n.callFrame.lineNumber + 1}` : ""}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  });
  return { totalUs, functions: [...self].sort((a, b) => b[1] - a[1]) };
}
