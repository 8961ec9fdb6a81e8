/**
 * What the metrics cost on the check path: the per-check hook the engine runs after each reply
 * (two performance.now() reads, the latency histogram and the one-minute window, the decisions
 * counter, and for a rejection the fund's recent-rejections list), measured alone, against the
 * in-process decider's mean time per decision on the benchmark book.
 *
 *   node dist/bench/metrics-overhead.js [hook calls] [decisions]
 */
import { fileURLToPath } from "node:url";
import { createActivity } from "../obs/activity.js";
import { createMetrics } from "../obs/metrics.js";
import { runInProcess } from "./pipeline.js";

const GATE_CODES: [string, string][] = [
  ["", ""],
  ["", ""],
  ["", ""],
  ["position", "MAX_POSITION_EXCEEDED"],
  ["static", "MAX_ORDER_NOTIONAL_EXCEEDED"],
  ["velocity", "VELOCITY_EXCEEDED"],
];

export function hookCostNs(calls: number): number {
  const metrics = createMetrics();
  const activity = createActivity();
  const run = (n: number): number => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) {
      const started = performance.now();
      const [gate, code] = GATE_CODES[i % GATE_CODES.length]!;
      const seconds = (performance.now() - started) / 1000 + 0.0002;
      metrics.check(gate === "" ? "approved" : "rejected", seconds, gate, code);
      if (gate !== "")
        activity.rejected(`f${i % 50}`, { at_ms: i, order_id: `o${i}`, gate, code, reason: "r" });
    }
    return Number(process.hrtime.bigint() - t0) / n;
  };
  run(Math.min(100_000, calls)); // warm-up
  return run(calls);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const calls = Number(process.argv[2] ?? 1_000_000);
  const decisions = Number(process.argv[3] ?? 100_000);
  const hook = hookCostNs(calls);
  const r = await runInProcess({ mode: "pipeline", decisions, positions: 10_000 });
  const decideUs = "mean_us" in r ? r.mean_us : NaN;
  process.stdout.write(
    `${JSON.stringify({
      hook_ns_per_check: +hook.toFixed(1),
      decide_mean_us: decideUs,
      hook_share_of_decide_pct: +((hook / 1000 / decideUs) * 100).toFixed(2),
    })}\n`,
  );
}
