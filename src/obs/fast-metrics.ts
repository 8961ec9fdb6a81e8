/**
 * Check-path metrics without prom-client's per-observation label hashing (measured at ~6× the
 * cost of these, see the README): a histogram child is a Float64Array of per-bucket counts plus
 * sum and count, a counter child a number in a Map entry resolved once per label set. They
 * register with a prom-client Registry as ordinary metrics (`get()` in prom-client's shape), so
 * /metrics prints them in the standard text format with cumulative `le` buckets.
 */
import type { Registry } from "prom-client";

type LabelValues = Record<string, string>;
interface Value {
  labels: LabelValues;
  value: number;
  metricName?: string;
}
interface Got {
  name: string;
  help: string;
  type: "histogram" | "counter";
  aggregator: "sum";
  values: Value[];
}

export interface FastHistogramChild {
  observe(v: number): void;
}

export interface FastHistogram {
  child(labels: LabelValues): FastHistogramChild;
}

export interface FastCounterChild {
  inc(): void;
}

export interface FastCounter {
  child(labels: LabelValues): FastCounterChild;
}

function register(registry: Registry, name: string, help: string, type: Got["type"], values: () => Value[]) {
  const metric = {
    name,
    help,
    type,
    aggregator: "sum" as const,
    get: (): Promise<Got> => Promise.resolve({ name, help, type, aggregator: "sum", values: values() }),
    reset: () => undefined,
  };
  registry.registerMetric(metric as unknown as Parameters<Registry["registerMetric"]>[0]);
}

export function fastHistogram(
  registry: Registry,
  o: { name: string; help: string; buckets: readonly number[] },
): FastHistogram {
  const buckets = [...o.buckets].sort((a, b) => a - b);
  const children: { labels: LabelValues; counts: Float64Array; sum: number; count: number }[] = [];
  register(registry, o.name, o.help, "histogram", () => {
    const out: Value[] = [];
    for (const c of children) {
      let acc = 0;
      buckets.forEach((le, i) => {
        acc += c.counts[i]!;
        out.push({ labels: { ...c.labels, le: String(le) }, value: acc, metricName: `${o.name}_bucket` });
      });
      out.push({ labels: { ...c.labels, le: "+Inf" }, value: c.count, metricName: `${o.name}_bucket` });
      out.push({ labels: c.labels, value: c.sum, metricName: `${o.name}_sum` });
      out.push({ labels: c.labels, value: c.count, metricName: `${o.name}_count` });
    }
    return out;
  });
  return {
    child(labels) {
      const c = { labels, counts: new Float64Array(buckets.length), sum: 0, count: 0 };
      children.push(c);
      const n = buckets.length;
      return {
        observe(v) {
          let i = 0;
          while (i < n && v > buckets[i]!) i++;
          if (i < n) c.counts[i]!++;
          c.sum += v;
          c.count++;
        },
      };
    },
  };
}

export function fastCounter(registry: Registry, o: { name: string; help: string }): FastCounter {
  const children: { labels: LabelValues; n: number }[] = [];
  register(registry, o.name, o.help, "counter", () =>
    children.map((c) => ({ labels: c.labels, value: c.n })),
  );
  return {
    child(labels) {
      const c = { labels, n: 0 };
      children.push(c);
      return {
        inc() {
          c.n++;
        },
      };
    },
  };
}
