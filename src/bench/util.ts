/** Small helpers shared by the benchmark processes: a monotonic clock, progress lines, histograms. */
import { build, type Histogram } from "hdr-histogram-js";

/**
 * Milliseconds on the process-wide monotonic clock (CLOCK_MONOTONIC): the same in every thread of
 * the process, so a worker's send time and the main thread's receive time compare directly.
 */
export function nowMs(): number {
  const [s, ns] = process.hrtime();
  return s * 1e3 + ns / 1e6;
}

const started = nowMs();

/** One progress line on stderr: `[bench 12.3s] message {"k":v}`. */
export function progress(message: string, fields?: Record<string, unknown>): void {
  const t = ((nowMs() - started) / 1000).toFixed(1);
  process.stderr.write(`[bench ${t}s] ${message}${fields ? ` ${JSON.stringify(fields)}` : ""}\n`);
}

export const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/** An HDR histogram of integer values (µs or ns), 3 significant digits, resizing as needed. */
export function histogram(): Histogram {
  return build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
  });
}

export interface Summary {
  count: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** Percentiles of a histogram, divided by `unit` (1000: µs recorded, ms reported). */
export function summarize(h: Histogram, unit = 1000): Summary {
  const v = (x: number) => +(x / unit).toFixed(3);
  return {
    count: h.totalCount,
    mean: v(h.totalCount ? h.mean : 0),
    p50: v(h.getValueAtPercentile(50)),
    p90: v(h.getValueAtPercentile(90)),
    p99: v(h.getValueAtPercentile(99)),
    p999: v(h.getValueAtPercentile(99.9)),
    max: v(h.maxValue),
  };
}

/** Percentiles the latency plot draws. */
export const CURVE_PERCENTILES = [0, 10, 25, 50, 75, 90, 95, 98, 99, 99.5, 99.9, 99.95, 99.99, 100];

/** [percentile, value / unit] pairs for the plot. */
export function curve(h: Histogram, unit = 1000): [number, number][] {
  return CURVE_PERCENTILES.map((p) => [p, +(h.getValueAtPercentile(p) / unit).toFixed(3)]);
}

/** The one JSON result line a child process prints on stdout. */
export function emit(result: unknown): void {
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

/** An error as one line, with its cause: what a failed phase or step reports. */
export function describe(err: unknown): string {
  const c = err instanceof Error ? err.cause : undefined;
  const cause = c === undefined ? "" : ` (${c instanceof Error ? c.message : JSON.stringify(c)})`;
  return `${err instanceof Error ? err.message : String(err)}${cause}`;
}
