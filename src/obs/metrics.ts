/**
 * The engine's Prometheus metrics (CONTRACT.md "Operations"), one registry per engine (several
 * engines in one process never share series). The check path only increments pre-bound children
 * (a Map lookup per gate/code pair, no label hashing); everything derived from the state (usage,
 * halts, stops, lag, owned funds) is computed when /metrics is scraped.
 *
 * Labels are bounded: outcome, gate, code, stream, kind, severity, fund_id, measure. Never an
 * order id or a symbol.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import { type FastCounterChild, fastCounter, fastHistogram } from "./fast-metrics.js";
import type { Activity } from "./activity.js";
import { type RollingLatency, createRollingLatency } from "./rolling.js";
import { usageOf } from "./usage.js";
import { type FundReport, fundReports } from "../service/fund-report.js";
import { CONSUMED_STREAMS } from "../contract/subjects.js";
import type { EngineState } from "../state/model.js";

export const METRIC_PREFIX = "riskengine_";

/** Check latency buckets (seconds): a sub-millisecond in-memory path, a journal ack in ~1 ms. */
export const CHECK_BUCKETS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
];
export const JOURNAL_BUCKETS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1, 2,
];

export type CheckOutcome = "approved" | "rejected" | "replayed" | "unavailable";

/** What the scrape-time gauges read from a running engine. */
export interface MetricsSource {
  state: EngineState;
  now(): number;
  ready(): boolean;
  connected(): boolean;
  /** Messages each followed stream is behind its last sequence (latest sample). */
  lag(): Map<string, number>;
  /** Funds this engine decides (single engine: every fund with an envelope). */
  owned(): number;
  activity: Activity;
}

export interface EngineMetrics {
  readonly registry: Registry;
  /** Check latency quantiles (seconds) over the last minute, with the count of checks. */
  latency(qs: readonly number[]): { count: number; values: (number | null)[] };
  /** One answered check: its latency, and (unless replayed) the decision's gate and code. */
  check(outcome: CheckOutcome, seconds: number, gate: string, code: string): void;
  journal(seconds: number): void;
  alert(kind: string): void;
  /** Bind the scrape-time gauges to an engine. */
  bind(source: MetricsSource): void;
  /** The default process metrics (process_*, nodejs_*), once per registry. */
  processMetrics(): void;
  /** Every fund's report, now. */
  reports(): FundReport[];
  /** Stream lag as the gauge reports it (empty until bound). */
  lag(): Map<string, number>;
}

const APPROVED_GATE = "none";
const APPROVED_CODE = "APPROVED";

/** `monotonic`: milliseconds of a monotonic clock (the latency window is real time, not business time). */
export function createMetrics(o: { monotonic?: () => number } = {}): EngineMetrics {
  const registry = new Registry();
  const monotonic = o.monotonic ?? (() => performance.now());
  const window: RollingLatency = createRollingLatency();
  let source: MetricsSource | undefined;
  let processOn = false;
  const registers = [registry];
  const p = METRIC_PREFIX;

  // the check path's metrics: plain arrays and numbers (src/obs/fast-metrics.ts)
  const checkLatency = fastHistogram(registry, {
    name: `${p}check_latency_seconds`,
    help: "Time from receiving a check request to sending its reply, by outcome",
    buckets: CHECK_BUCKETS,
  });
  const outcomes = {
    approved: checkLatency.child({ outcome: "approved" }),
    rejected: checkLatency.child({ outcome: "rejected" }),
    replayed: checkLatency.child({ outcome: "replayed" }),
    unavailable: checkLatency.child({ outcome: "unavailable" }),
  };
  const decisions = fastCounter(registry, {
    name: `${p}decisions_total`,
    help: 'Decisions made (replays excluded), by rejecting gate and code; approvals are gate="none", code="APPROVED"',
  });
  const decisionChildren = new Map<string, FastCounterChild>();
  const journalLatency = fastHistogram(registry, {
    name: `${p}journal_write_seconds`,
    help: "Time for RISK_DECISIONS to acknowledge a decision record",
    buckets: JOURNAL_BUCKETS,
  }).child({});
  const alerts = new Counter({
    name: `${p}alerts_total`,
    help: "Alerts published, by kind",
    labelNames: ["kind"] as const,
    registers,
  });

  const reports = (): FundReport[] => (source ? fundReports(source.state, source.now()) : []);

  const gauge = (
    name: string,
    help: string,
    labelNames: readonly string[],
    collect: (g: Gauge<string>) => void,
  ): void => {
    new Gauge({
      name: `${p}${name}`,
      help,
      labelNames: labelNames,
      registers,
      collect() {
        this.reset();
        if (source) collect(this);
      },
    });
  };
  gauge("ready", "1 when the engine answers checks (caught up, connected, not stale)", [], (g) =>
    g.set(source!.ready() ? 1 : 0),
  );
  gauge("nats_connected", "1 while connected to NATS", [], (g) => g.set(source!.connected() ? 1 : 0));
  gauge(
    "stream_lag_messages",
    "Messages a followed stream holds beyond the engine's cursor",
    ["stream"],
    (g) => {
      for (const [stream, n] of source!.lag()) g.set({ stream }, n);
    },
  );
  gauge("stream_cursor", "Last applied sequence of each followed stream", ["stream"], (g) => {
    for (const s of CONSUMED_STREAMS) g.set({ stream: s }, source!.state.cursors.get(s) ?? 0);
    for (const [stream, seq] of source!.state.cursors) g.set({ stream }, seq);
  });
  gauge("funds_owned", "Funds this engine decides", [], (g) => g.set(source!.owned()));
  gauge("funds_known", "Funds with an envelope in the streams (every engine knows all of them)", [], (g) => {
    let n = 0;
    for (const f of source!.state.funds.values()) if (f.envelope) n++;
    g.set(n);
  });
  gauge("funds_halted", "Funds with at least one active halt", [], (g) => {
    let n = 0;
    for (const f of source!.state.funds.values()) if (f.halts.size > 0) n++;
    g.set(n);
  });
  gauge("fund_halted", "1 for each active halt of a fund, by severity", ["fund_id", "severity"], (g) => {
    for (const f of source!.state.funds.values())
      for (const severity of f.halts.keys()) g.set({ fund_id: f.id, severity }, 1);
  });
  gauge("funds_locked", "Funds under a reconciliation lock", [], (g) => {
    let n = 0;
    for (const f of source!.state.funds.values()) if (f.lock) n++;
    g.set(n);
  });
  const stopCount = (state: "armed" | "triggered") => (g: Gauge<string>) => {
    let n = 0;
    for (const s of source!.state.stops.values()) if (s.state === state) n++;
    g.set(n);
  };
  gauge("stops_armed", "Synthetic stops armed", [], stopCount("armed"));
  gauge(
    "stops_triggered",
    "Synthetic stops triggered whose closing order has not closed the position yet",
    [],
    stopCount("triggered"),
  );
  gauge(
    "reconciler_drift_symbols",
    "Symbols whose broker position differed from the engine's at the fund's last reconciliation pass",
    ["fund_id"],
    (g) => {
      for (const id of source!.state.funds.keys()) {
        const d = source!.activity.lastDrift(id);
        if (d) g.set({ fund_id: id }, d.symbols.length);
      }
    },
  );
  gauge(
    "limit_usage_ratio",
    "Share used of each limit of a fund (1 = at the limit); loss measures are the period's loss against its halt threshold",
    ["fund_id", "measure"],
    (g) => {
      for (const r of reports())
        for (const u of usageOf(r)) g.set({ fund_id: r.fund_id, measure: u.measure }, u.ratio);
    },
  );
  gauge("fund_nav", "Net asset value of a fund in its base currency (display only)", ["fund_id"], (g) => {
    for (const r of reports()) g.set({ fund_id: r.fund_id }, Number(r.nav));
  });

  return {
    registry,
    latency: (qs) => window.quantiles(qs, monotonic()),
    check(outcome, seconds, gate, code) {
      outcomes[outcome].observe(seconds);
      window.record(seconds, monotonic());
      if (outcome === "replayed") return;
      const k = gate === "" ? "" : `${gate}\u0001${code}`;
      let c = decisionChildren.get(k);
      if (!c) {
        c = decisions.child(gate === "" ? { gate: APPROVED_GATE, code: APPROVED_CODE } : { gate, code });
        decisionChildren.set(k, c);
      }
      c.inc();
    },
    journal(seconds) {
      journalLatency.observe(seconds);
    },
    alert(kind) {
      alerts.labels(kind).inc();
    },
    bind(s) {
      source = s;
    },
    processMetrics() {
      if (processOn) return;
      processOn = true;
      collectDefaultMetrics({ register: registry });
    },
    reports,
    lag: () => source?.lag() ?? new Map<string, number>(),
  };
}
