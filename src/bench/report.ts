/**
 * The results as rows (every issue-11 / QUALITY.md target with its figure, baseline, ratio, noise
 * and verdict) and as Markdown. Pure functions of the results: unit-tested.
 */
import type { ApparatusResult } from "./apparatus.js";
import { type BusResults, type Measured, rejectedPct } from "./bus.js";
import type { Machine } from "./machine.js";
import type { DecideResult, RssResult } from "./pipeline.js";
import type { RebuildReport } from "./rebuildphase.js";
import { type TargetSearch, spreadPct } from "./search.js";
import type { SeveralResults } from "./several.js";

/** What quotefold.js prints (the in-process quote folding measurement). */
export interface QuoteFold {
  quotes: number;
  seconds_simulated: number;
  cpu_ms: number;
  core_pct_at_2000_per_s: number;
  us_per_quote: number;
  /** Every run's µs/quote when the phase ran several (the figures above are the median run's). */
  runs_us_per_quote?: number[];
}

/** The soak's figures (soak.js). */
export interface SoakFigures {
  by: string;
  decisions?: number;
  first?: number;
  rss_first_mb?: number;
  rss_last_mb?: number;
  rss_bytes_per_decision?: number;
  bytes_per_decision?: number;
  [k: string]: unknown;
}

export interface Results {
  date: string;
  quick: boolean;
  seconds_total: number;
  machine: Machine;
  settings: Record<string, unknown>;
  apparatus?: ApparatusResult;
  bus?: BusResults;
  several?: SeveralResults;
  quotefold?: QuoteFold;
  pipeline?: DecideResult;
  scale?: { positions_10: DecideResult; positions_100k: DecideResult; cost_ratio: number; p50_ratio: number };
  rss?: RssResult[];
  soak?: SoakFigures;
  rebuild?: RebuildReport;
  /** Phases (and parts of the bus phase) that failed, with why. */
  errors: Record<string, string>;
  table?: Row[];
}

export interface Row {
  metric: string;
  engine: string;
  baseline: string;
  ratio: string;
  /** The spread between the two alternations (rounds) of the same target, or how exact a figure is. */
  noise: string;
  target: string;
  result: "pass" | "miss" | "info" | "failed";
}

export const fmt = (n: number): string => n.toLocaleString("en-US").replace(/,/g, " ");
const ms = (n: number): string => `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms`;
const x = (n: number): string => `${n.toFixed(2)}×`;
const verdict = (ok: boolean): Row["result"] => (ok ? "pass" : "miss");
const row = (r: Partial<Row> & Pick<Row, "metric" | "target" | "result">): Row => ({
  engine: "",
  baseline: "",
  ratio: "",
  noise: "",
  ...r,
});

function find(runs: Measured[], target: string, rate: number): Measured | undefined {
  return runs.find((r) => r.target === target && r.rate === rate);
}

/** CPU µs per request of the target's own process over a run (engine, or the baselines' process). */
export function cpuPerRequestUs(
  m: Measured,
  cpuMs = m.target === "engine" ? m.cpu_ms.engine : m.cpu_ms.baselines,
) {
  return cpuMs === undefined ? undefined : (cpuMs * 1000) / Math.max(1, m.sent);
}

/**
 * The noise of a ratio row: the ratio in each round (the targets' order alternating), and each
 * target's own spread between its rounds.
 */
export function noiseOf(e: number[] | undefined, j: number[] | undefined, unit = ""): string {
  if (!e || !j || e.length < 2 || j.length !== e.length) return "one round (--quick): not measured";
  const per = e.map((v, k) => x(v / Math.max(1e-9, j[k]!))).join(" / ");
  return `rounds ${per}; spread engine ${spreadPct(e)} %, journaled ${spreadPct(j)} %${unit}`;
}

function busRows(bus: BusResults, quick: boolean): Row[] {
  const rows: Row[] = [];
  for (const rate of [...new Set(bus.scenarios.map((s) => s.rate))]) {
    const e = find(bus.scenarios, "engine", rate);
    const j = find(bus.scenarios, "journal", rate);
    const n = find(bus.scenarios, "noop", rate);
    if (!e || !j || !n) continue;
    for (const p of ["p50", "p99"] as const) {
      const ratio = e.latency_ms[p] / Math.max(1e-9, j.latency_ms[p]);
      const key = p === "p50" ? "round_p50_ms" : "round_p99_ms";
      rows.push(
        row({
          metric: `check ${p} @ ${fmt(rate)}/s, 2 000 quotes/s (${e.seconds} s)`,
          engine: ms(e.latency_ms[p]),
          baseline: `journaled ${ms(j.latency_ms[p])} · no-op ${ms(n.latency_ms[p])}`,
          ratio: `${x(ratio)} (${x(e.latency_ms[p] / Math.max(1e-9, n.latency_ms[p]))} no-op)`,
          noise: noiseOf(e[key], j[key]),
          target: "≤ 1.25× journaled",
          result: verdict(ratio <= 1.25),
        }),
      );
    }
    const ec = cpuPerRequestUs(e);
    const jc = cpuPerRequestUs(j);
    if (ec !== undefined && jc !== undefined) {
      const ratio = ec / Math.max(1e-9, jc);
      const perRound = (m: Measured) =>
        m.round_cpu_ms?.map((v, k) => v / Math.max(1, m.round_sent?.[k] ?? 1));
      rows.push(
        row({
          metric: `engine CPU per check @ ${fmt(rate)}/s, quotes on`,
          engine: `${ec.toFixed(0)} µs`,
          baseline: `journaled ${jc.toFixed(0)} µs · no-op ${(cpuPerRequestUs(n) ?? 0).toFixed(0)} µs`,
          ratio: x(ratio),
          noise: noiseOf(perRound(e), perRound(j)),
          target: rate === 1000 ? "≤ 1.3× journaled" : "reported",
          result: rate === 1000 ? verdict(ratio <= 1.3) : "info",
        }),
      );
    }
    const rej = rejectedPct(e);
    rows.push(
      row({
        metric: `floor @ ${fmt(rate)}/s: engine p99 ≤ 5 ms, failures ≤ 0.1 %, rejections as designed (10 %)`,
        engine: `${ms(e.latency_ms.p99)}, ${e.failures} failed (${e.timeouts} timeouts${e.unsent ? `, ${e.unsent} unsent: run cut short` : ""}), ${rej} % rejected`,
        baseline: `journaled ${j.failures} failed · no-op ${n.failures} failed`,
        target: "≤ 5 ms, ≤ 0.1 %, ≤ 15 %",
        result: verdict(e.latency_ms.p99 <= 5 && e.failure_pct <= 0.1 && rej <= 15),
      }),
    );
  }
  rows.push(...searchRows(bus.search));
  for (const c of bus.confirm.filter((m) => m.target === "engine")) {
    const j = find(bus.confirm, "journal", c.rate);
    rows.push(
      row({
        metric: `held at the journaled baseline's sustainable rate, ${fmt(c.rate)}/s for ${c.seconds} s`,
        engine: `p50 ${ms(c.latency_ms.p50)}, p99 ${ms(c.latency_ms.p99)}, ${c.failure_pct} % failed`,
        baseline: j ? `journaled p50 ${ms(j.latency_ms.p50)}, p99 ${ms(j.latency_ms.p99)}` : "",
        ratio: j ? `${x(c.latency_ms.p99 / Math.max(1e-9, j.latency_ms.p99))} p99` : "",
        target: "reported",
        result: "info",
      }),
    );
  }
  const lags = [...bus.scenarios, ...bus.confirm].filter((m) => m.target !== "engine");
  const worst = Math.max(0, ...lags.map((m) => m.schedule_lag_ms.p99));
  rows.push(
    row({
      metric: "generator kept its schedule (baseline runs, worst lag p99)",
      baseline: ms(worst),
      target: "≤ 1 ms",
      result: verdict(worst <= 1),
    }),
  );
  const gen = (rate: number) => {
    const runs = bus.scenarios.filter((m) => m.rate === rate && m.cpu_ms.generator !== undefined);
    const pct = runs.map((m) => (m.cpu_ms.generator! / (m.seconds * 1000)) * 100);
    return pct.length ? `${rate}/s: ${Math.min(...pct).toFixed(1)}–${Math.max(...pct).toFixed(1)} %` : "";
  };
  const idle = (bus.quotes.idle_cpu_pct ?? {}) as Record<string, number>;
  rows.push(
    row({
      metric: `apparatus in the bus runs: quote publisher (2 000 quotes/s, no checks) and load generator, % of a core${quick ? "" : ""}`,
      baseline: `quotes ${idle.quotes ?? "?"} % · generator ${bus.scenarios.length ? [...new Set(bus.scenarios.map((m) => m.rate))].map(gen).join(", ") : "?"}`,
      target: "small next to the targets",
      result: "info",
    }),
  );
  return rows;
}

export function searchRows(search: TargetSearch[]): Row[] {
  const s = (t: string) => search.find((v) => v.target === t);
  const e = s("engine");
  const j = s("journal");
  const n = s("noop");
  if (!e || !j || !n) return [];
  // the lowest rate measured (the search steps down below its first step when that one fails)
  const lowest = (t: TargetSearch) =>
    Math.min(...t.steps.filter((x) => x.phase !== "reference").map((x) => x.rate), t.steps[0]?.rate ?? 0);
  const first = lowest(e);
  const rate = (v: number, t?: TargetSearch) => (v > 0 ? `${fmt(v)}/s` : `< ${fmt(t ? lowest(t) : first)}/s`);
  const bracket = (t: TargetSearch) =>
    `${t.target} ${fmt(t.sustainable_rate)}–${t.first_failing_rate !== undefined ? fmt(t.first_failing_rate) : "cap"}`;
  const ratio = e.sustainable_rate / Math.max(1, j.sustainable_rate);
  const floorRatio = e.floor_rate / Math.max(1, j.floor_rate);
  return [
    row({
      metric:
        "sustainable rate: failures ≤ 0.1 %, rejections ≤ 15 %, p99 ≤ max(5 ms, 1.25× journaled p99 at that rate) and ≤ 100 ms; bisection",
      engine: rate(e.sustainable_rate),
      baseline: `journaled ${rate(j.sustainable_rate, j)} · no-op ${rate(n.sustainable_rate, n)}`,
      ratio:
        j.sustainable_rate > 0
          ? `${x(ratio)} (${x(e.sustainable_rate / Math.max(1, n.sustainable_rate))} no-op)`
          : "n/a: the baseline failed the first step",
      noise: `last pass – first fail: ${[e, j, n].map(bracket).join(", ")}`,
      target: "≥ 0.70× journaled",
      result: j.sustainable_rate > 0 ? verdict(ratio >= 0.7) : "miss",
    }),
    row({
      metric: "sustainable rate at the absolute floor (p99 ≤ 5 ms, same steps)",
      engine: rate(e.floor_rate),
      baseline: `journaled ${rate(j.floor_rate, j)} · no-op ${rate(n.floor_rate, n)}`,
      ratio: j.floor_rate > 0 ? x(floorRatio) : "",
      target: "reported beside it",
      result: "info",
    }),
  ];
}

function severalRows(s: SeveralResults): Row[] {
  const ones = s.runs.filter((r) => r.engines === 1);
  const two = s.runs.find((r) => r.engines === 2);
  const one = ones[0];
  if (!one || !two) return [];
  const spread = (f: (r: (typeof ones)[number]) => number) =>
    ones.length > 1
      ? `one engine measured twice: spread ${spreadPct(ones.map(f))} %`
      : "one run each (--quick)";
  const rows: Row[] = [];
  for (const p of ["p50", "p99"] as const) {
    rows.push(
      row({
        metric: `issue 10: two engines vs one, check ${p} @ ${fmt(s.rate)}/s, 2 000 quotes/s`,
        engine: `two ${ms(two.latency_ms[p])}`,
        baseline: `one ${ones.map((o) => ms(o.latency_ms[p])).join(" / ")}`,
        ratio: x(two.latency_ms[p] / Math.max(1e-9, one.latency_ms[p])),
        noise: spread((r) => r.latency_ms[p]),
        target: "costs little (2 cores: not ×2)",
        result: "info",
      }),
    );
  }
  rows.push(
    row({
      metric: `issue 10: engines' CPU per check @ ${fmt(s.rate)}/s (all engines' CPU ÷ checks)`,
      engine: `two ${two.cpu_per_check_us} µs`,
      baseline: `one ${ones.map((o) => `${o.cpu_per_check_us} µs`).join(" / ")}`,
      ratio: x(two.cpu_per_check_us / Math.max(1, one.cpu_per_check_us)),
      noise: spread((r) => r.cpu_per_check_us),
      target: "reported",
      result: "info",
    }),
    row({
      metric: "issue 10: failures and rejections with two engines (forwarding, ownership)",
      engine: `${two.failures} failed of ${fmt(two.sent)}, ${rejectedPct(two)} % rejected (${JSON.stringify(two.rejection_codes)})`,
      baseline: `one: ${one.failures} failed, ${rejectedPct(one)} % rejected`,
      noise: s.ownership_moved
        ? `ownership CHANGED during the run (a takeover: ${JSON.stringify(s.owned)} → ${JSON.stringify(s.owned_after)}): not two engines sharing the load`
        : `partitions ${JSON.stringify(s.owned)} before and after`,
      target: "≤ 0.1 % failed, rejections as designed (≤ 15 %)",
      result: verdict(two.failure_pct <= 0.1 && rejectedPct(two) <= 15),
    }),
    row({
      metric: "issue 10: two engines approve exactly N against headroom N",
      engine: "proven by the suite",
      baseline: s.exactly_n,
      target: "exactly N",
      result: "info",
    }),
  );
  return rows;
}

/** ", median of N runs" when the figure is one of several runs'. */
const medianOf = (q: QuoteFold): string =>
  q.runs_us_per_quote && q.runs_us_per_quote.length > 1
    ? `, median of ${q.runs_us_per_quote.length} runs`
    : "";

export function buildTable(r: Results): Row[] {
  const rows: Row[] = [];
  if (r.bus) rows.push(...busRows(r.bus, r.quick));
  const idleEngine = (r.bus?.quotes.idle_cpu_pct as Record<string, number> | undefined)?.engine;
  if (r.quotefold || idleEngine !== undefined) {
    const pct = r.quotefold?.core_pct_at_2000_per_s ?? idleEngine!;
    rows.push(
      row({
        metric: "quote folding, 2 000 quotes/s over 1 000 symbols and 10 000 positions, % of a core",
        engine: r.quotefold
          ? `${pct} % in process (${r.quotefold.us_per_quote} µs/quote${medianOf(r.quotefold)})`
          : `${pct} % (engine process, quotes only)`,
        baseline:
          r.quotefold && idleEngine !== undefined
            ? `engine process over the bus, quotes only: ${idleEngine} %`
            : "",
        noise:
          r.quotefold?.runs_us_per_quote && r.quotefold.runs_us_per_quote.length > 1
            ? `runs ${r.quotefold.runs_us_per_quote.join(" / ")} µs/quote`
            : "",
        target: "≤ 5 %",
        result: verdict(pct <= 5),
      }),
    );
  }
  if (r.apparatus) {
    const a = r.apparatus;
    rows.push(
      row({
        metric: `apparatus alone (${a.seconds} s each): quote publisher at ${fmt(a.quotes.rate)}/s; generator vs the no-op responder`,
        baseline: `quotes ${a.quotes.cpu_pct} % · ${a.generator.map((g) => `generator ${fmt(g.rate)}/s ${g.cpu_pct} % (lag p99 ${g.lag_p99_ms} ms)`).join(" · ")}`,
        target: "small next to the targets",
        result: "info",
      }),
    );
  }
  if (r.several) rows.push(...severalRows(r.several));
  if (r.pipeline) {
    const p = r.pipeline;
    rows.push(
      row({
        metric: "gate pipeline in process, one core: decisions/s",
        engine: `${fmt(p.per_s)}/s`,
        noise: `fifths ${Math.min(...p.round_means_us)}–${Math.max(...p.round_means_us)} µs mean`,
        target: "≥ 200 000/s",
        result: verdict(p.per_s >= 200_000),
      }),
      row({
        metric: "gate pipeline in process, one core: p99",
        engine: `${p.latency_us.p99} µs (p50 ${p.latency_us.p50} µs)`,
        target: "≤ 20 µs",
        result: verdict(p.latency_us.p99 <= 20),
      }),
    );
  }
  if (r.scale) {
    const a = r.scale.positions_10;
    const b = r.scale.positions_100k;
    rows.push(
      row({
        metric: "per-decision cost, 100 000 vs 10 open positions in one fund",
        engine: `${b.median_round_mean_us} µs vs ${a.median_round_mean_us} µs (p50 ${b.latency_us.p50} vs ${a.latency_us.p50} µs)`,
        ratio: `${x(r.scale.cost_ratio)} (p50 ${x(r.scale.p50_ratio)})`,
        target: "≤ 1.2×",
        result: verdict(r.scale.cost_ratio <= 1.2),
      }),
    );
  }
  if (r.rebuild) {
    const b = r.rebuild.bare_read;
    rows.push(
      row({
        metric: `rebuild from JetStream, ${fmt(r.rebuild.fills)} fills, vs a bare read + JSON.parse of the same streams`,
        engine: `${fmt(r.rebuild.events_per_s)} events/s (${r.rebuild.seconds} s)`,
        baseline: b ? `bare read ${fmt(b.per_s)} events/s (${b.by})` : "",
        ratio: b ? x(r.rebuild.ratio_to_bare_read) : "",
        noise: b ? `bare read before / after: ${b.runs_per_s.map(fmt).join(" / ")} /s` : "",
        target: "≥ 0.6× the bare read",
        result: b ? verdict(r.rebuild.ratio_to_bare_read >= 0.6) : "info",
      }),
    );
  }
  const restart = r.bus?.restart;
  if (restart && typeof restart.ready_ms === "number") {
    const tail = Number(restart.tail_events);
    const tailMs = r.rebuild ? Math.round((tail / Math.max(1, r.rebuild.events_per_s)) * 1000) : 0;
    const decisions = Number(restart.decisions_before ?? 0);
    const enough = decisions >= 400_000;
    rows.push(
      row({
        metric: `restart to ready with a snapshot (${Number(restart.snapshot_mb)} MB) after ${fmt(decisions)} decisions, tail of ${fmt(tail)} fills`,
        engine: ms(restart.ready_ms),
        target: `≤ 2 000 ms + tail (${tailMs} ms), after ≥ 400 000 decisions`,
        result: enough ? verdict(restart.ready_ms <= 2000 + tailMs) : "info",
      }),
    );
  }
  if (r.rss?.length) {
    // the 1 M figure as the engine holds it: its snapshot attached and flushed as the state grows
    const million = r.rss.find((m) => m.positions === 1_000_000 && m.snapshot !== false);
    // judged settled (5 s later, after another full GC: V8 has returned the pages the build freed)
    const rssOf = (m: RssResult) => m.rss_settled_mb ?? m.rss_mb;
    const both = (m: RssResult) =>
      m.rss_settled_mb === undefined
        ? `${fmt(m.rss_mb)} MB`
        : `${fmt(m.rss_settled_mb)} MB settled (${fmt(m.rss_mb)} MB right after building)`;
    const label = (m: RssResult) =>
      m.snapshot === true
        ? `${fmt(m.positions)} with its snapshot: ${both(m)} (heap ${fmt(m.heap_used_mb)} MB, ${fmt(m.hot_orders ?? 0)} order records in memory)`
        : `${fmt(m.positions)}${m.snapshot === false ? " alone, never flushed" : ""}: ${both(m)} (heap ${fmt(m.heap_used_mb)} MB)`;
    rows.push(
      row({
        metric: "RSS holding N open positions",
        engine: r.rss.map(label).join(" · "),
        target: "≤ 600 MB at 1 000 000",
        result: million ? verdict(rssOf(million) <= 600) : "info",
      }),
    );
  }
  if (r.soak) {
    const per = r.soak.rss_bytes_per_decision ?? r.soak.bytes_per_decision;
    rows.push(
      row({
        metric: `RSS per decision retained in the idempotency window (${r.soak.by})`,
        engine: per !== undefined ? `${fmt(per)} bytes` : JSON.stringify(r.soak),
        baseline:
          r.soak.rss_first_mb !== undefined
            ? `RSS ${r.soak.rss_first_mb} MB after ${fmt(r.soak.first ?? 0)} → ${r.soak.rss_last_mb} MB after ${fmt(r.soak.decisions ?? 0)} decisions`
            : "",
        target: "≤ 100 bytes (1 000 000 vs 10 000 decisions)",
        result:
          per === undefined ? "info" : (r.soak.decisions ?? 0) >= 1_000_000 ? verdict(per <= 100) : "info",
      }),
    );
  }
  for (const [phase, why] of Object.entries(r.errors)) {
    rows.push(row({ metric: `phase ${phase} FAILED`, engine: why, target: "runs", result: "failed" }));
  }
  return rows;
}
