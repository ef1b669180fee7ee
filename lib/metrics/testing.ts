import parsePrometheusTextFormat from "parse-prometheus-text-format";

// For tests: a scrape parsed with a Prometheus text-format parser, and one sample read out of it.

export type MetricFamily = { name: string; help: string; type: string; metrics: { value?: string; labels?: Record<string, string> }[] };

export function parseScrape(text: string): Map<string, MetricFamily> {
  const families = parsePrometheusTextFormat(text) as MetricFamily[];
  return new Map(families.map((f) => [f.name, f]));
}

/** The value of the one sample of `name` whose labels include `labels`; undefined when there is none. */
export function sampleOf(families: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}): number | undefined {
  const family = families.get(name);
  const matching = (family?.metrics ?? []).filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  if (matching.length > 1) throw new Error(`${matching.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return matching[0] ? Number(matching[0].value) : undefined;
}
