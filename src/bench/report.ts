/** The results as a Markdown table (every QUALITY.md ratio, with its target) and an SVG plot. */
import { type BusResults, type Measured, rejectedPct } from "./bus.js";
import type { Machine } from "./machine.js";
import type { DecideResult, RssResult } from "./pipeline.js";
import type { RebuildReport } from "./rebuildphase.js";

export interface Results {
  date: string;
  quick: boolean;
  seconds_total: number;
  machine: Machine;
  settings: Record<string, unknown>;
  bus?: BusResults;
  pipeline?: DecideResult;
  scale?: { positions_10: DecideResult; positions_100k: DecideResult; cost_ratio: number; p50_ratio: number };
  rss?: RssResult[];
  rebuild?: RebuildReport;
  table?: Row[];
}

export interface Row {
  metric: string;
  engine: string;
  baseline: string;
  ratio: string;
  target: string;
  result: "pass" | "miss" | "info";
}

const fmt = (n: number): string => n.toLocaleString("en-US").replace(/,/g, " ");
const ms = (n: number): string => `${n < 10 ? n.toFixed(2) : n.toFixed(1)} ms`;
const x = (n: number): string => `${n.toFixed(2)}×`;
const verdict = (ok: boolean): Row["result"] => (ok ? "pass" : "miss");

function find(runs: Measured[], target: string, rate: number): Measured | undefined {
  return runs.find((r) => r.target === target && r.rate === rate);
}

export function buildTable(r: Results): Row[] {
  const rows: Row[] = [];
  const bus = r.bus;
  if (bus) {
    const rates = [...new Set(bus.scenarios.map((s) => s.rate))];
    for (const rate of rates) {
      const e = find(bus.scenarios, "engine", rate);
      const j = find(bus.scenarios, "journal", rate);
      const n = find(bus.scenarios, "noop", rate);
      if (!e || !j || !n) continue;
      for (const p of ["p50", "p99"] as const) {
        const ratio = e.latency_ms[p] / Math.max(1e-9, j.latency_ms[p]);
        rows.push({
          metric: `check ${p} @ ${fmt(rate)}/s (${e.seconds} s)`,
          engine: ms(e.latency_ms[p]),
          baseline: `journaled ${ms(j.latency_ms[p])} · no-op ${ms(n.latency_ms[p])}`,
          ratio: `${x(ratio)} (${x(e.latency_ms[p] / Math.max(1e-9, n.latency_ms[p]))} no-op)`,
          target: "≤ 1.25× journaled",
          result: verdict(ratio <= 1.25),
        });
      }
      const rej = rejectedPct(e);
      rows.push({
        metric: `floor @ ${fmt(rate)}/s: engine p99 ≤ 5 ms, failures ≤ 0.1 %, rejections as designed (10 %)`,
        engine: `${ms(e.latency_ms.p99)}, ${e.failures} failed (${e.timeouts} timeouts${e.unsent ? `, ${e.unsent} unsent: run cut short` : ""}), ${rej} % rejected`,
        baseline: `journaled ${j.failures} failed · no-op ${n.failures} failed`,
        ratio: "",
        target: "≤ 5 ms, ≤ 0.1 %, ≤ 15 %",
        result: verdict(e.latency_ms.p99 <= 5 && e.failure_pct <= 0.1 && rej <= 15),
      });
    }
    for (const c of bus.confirm.filter((m) => m.target === "engine")) {
      const j = find(bus.confirm, "journal", c.rate);
      rows.push({
        metric: `engine held at ${fmt(c.rate)}/s for ${c.seconds} s`,
        engine: `p50 ${ms(c.latency_ms.p50)}, p99 ${ms(c.latency_ms.p99)}, ${c.failure_pct} % failed`,
        baseline: j ? `journaled p50 ${ms(j.latency_ms.p50)}, p99 ${ms(j.latency_ms.p99)}` : "",
        ratio: j ? x(c.latency_ms.p99 / Math.max(1e-9, j.latency_ms.p99)) + " p99" : "",
        target: "info",
        result: "info",
      });
    }
    const s = (t: string) => bus.search.find((v) => v.target === t);
    const e = s("engine");
    const j = s("journal");
    const n = s("noop");
    if (e && j && n) {
      const first = e.steps[0]?.rate ?? 0;
      const rate = (v: number) => (v > 0 ? `${fmt(v)}/s` : `< ${fmt(first)}/s`);
      const ratio = e.sustainable_rate / Math.max(1, j.sustainable_rate);
      rows.push({
        metric: "sustainable rate (p99 ≤ 5 ms, failures ≤ 0.1 %, rejections ≤ 15 %)",
        engine: rate(e.sustainable_rate),
        baseline: `journaled ${rate(j.sustainable_rate)} · no-op ${rate(n.sustainable_rate)}`,
        ratio:
          j.sustainable_rate > 0
            ? `${x(ratio)} (${x(e.sustainable_rate / Math.max(1, n.sustainable_rate))} no-op)`
            : "n/a: the baseline failed the first step",
        target: "≥ 0.70× journaled",
        result: j.sustainable_rate > 0 ? verdict(ratio >= 0.7) : "miss",
      });
    }
    const lags = [...bus.scenarios, ...bus.confirm].filter((m) => m.target !== "engine");
    const worst = Math.max(0, ...lags.map((m) => m.schedule_lag_ms.p99));
    rows.push({
      metric: "generator kept its schedule (baseline runs, worst lag p99)",
      engine: "",
      baseline: ms(worst),
      ratio: "",
      target: "≤ 1 ms",
      result: verdict(worst <= 1),
    });
  }
  if (r.pipeline) {
    const p = r.pipeline;
    rows.push({
      metric: "gate pipeline in process, one core: decisions/s",
      engine: `${fmt(p.per_s)}/s`,
      baseline: "",
      ratio: "",
      target: "≥ 200 000/s",
      result: verdict(p.per_s >= 200_000),
    });
    rows.push({
      metric: "gate pipeline in process, one core: p99",
      engine: `${p.latency_us.p99} µs (p50 ${p.latency_us.p50} µs)`,
      baseline: "",
      ratio: "",
      target: "≤ 20 µs",
      result: verdict(p.latency_us.p99 <= 20),
    });
  }
  if (r.scale) {
    const a = r.scale.positions_10;
    const b = r.scale.positions_100k;
    rows.push({
      metric: "per-decision cost, 100 000 vs 10 open positions in one fund",
      engine: `${b.median_round_mean_us} µs vs ${a.median_round_mean_us} µs (p50 ${b.latency_us.p50} vs ${a.latency_us.p50} µs)`,
      baseline: "",
      ratio: `${x(r.scale.cost_ratio)} (p50 ${x(r.scale.p50_ratio)})`,
      target: "≤ 1.2×",
      result: verdict(r.scale.cost_ratio <= 1.2),
    });
  }
  if (r.rebuild) {
    rows.push({
      metric: `rebuild from JetStream, ${fmt(r.rebuild.fills)} fills`,
      engine: `${fmt(r.rebuild.events_per_s)} events/s (${r.rebuild.seconds} s)`,
      baseline: "",
      ratio: "",
      target: "≥ 100 000/s",
      result: verdict(r.rebuild.events_per_s >= 100_000),
    });
  }
  const restart = r.bus?.restart;
  if (restart && typeof restart.ready_ms === "number") {
    const tail = Number(restart.tail_events);
    const tailMs = r.rebuild ? Math.round((tail / Math.max(1, r.rebuild.events_per_s)) * 1000) : 0;
    rows.push({
      metric: `restart to ready with a snapshot (${Number(restart.snapshot_mb)} MB), tail of ${fmt(tail)} fills`,
      engine: ms(restart.ready_ms),
      baseline: "",
      ratio: "",
      target: `≤ 2 000 ms + tail (${tailMs} ms)`,
      result: verdict(restart.ready_ms <= 2000 + tailMs),
    });
  }
  if (r.rss?.length) {
    rows.push({
      metric: "RSS holding N open positions",
      engine: r.rss.map((m) => `${fmt(m.positions)}: ${fmt(m.rss_mb)} MB`).join(" · "),
      baseline: "",
      ratio: "",
      target: "reported",
      result: "info",
    });
  }
  return rows;
}

export function markdown(r: Results): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(`# Benchmark ${r.date}${r.quick ? " (--quick)" : ""}`, "");
  out.push(
    `Machine: ${m.cpu_model}, ${m.cores} cores, ${m.memory_gb} GB, ${m.os}; Node ${m.node}; nats-server ${m.nats_server}; ` +
      `commit ${m.commit}; load average at start ${m.load_average_at_start.join(" / ")}. Total ${Math.round(r.seconds_total)} s.`,
    "",
  );
  out.push("| metric | engine | baseline | ratio | target | result |", "|---|---|---|---|---|---|");
  for (const row of r.table ?? []) {
    out.push(
      `| ${row.metric} | ${row.engine} | ${row.baseline} | ${row.ratio} | ${row.target} | ${row.result} |`,
    );
  }
  if (r.bus) {
    const idle = (r.bus.quotes.idle_cpu_pct ?? {}) as Record<string, number>;
    out.push(
      "",
      `Book: ${JSON.stringify(r.bus.book)}. Quotes streamed during the bus scenarios: ` +
        `${JSON.stringify({ ...r.bus.quotes, idle_cpu_pct: undefined })}. With quotes streaming and no checks, ` +
        `CPU in % of one core: engine ${idle.engine ?? "?"}, quote publisher ${idle.quotes ?? "?"}, ` +
        `nats-server ${idle.nats_server ?? "?"}.`,
    );
    out.push(
      "",
      "Every bus run (latency from the intended send time; failures = timeouts + error replies):",
      "",
    );
    out.push(
      "| target | rate/s | s | sent | p50 | p90 | p99 | p99.9 | max | failed | rejected | lag p99 | target CPU/req |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    );
    for (const s of [...r.bus.scenarios, ...r.bus.confirm]) {
      const cpu = s.target === "engine" ? s.cpu_ms.engine : s.cpu_ms.baselines;
      const l = s.latency_ms;
      out.push(
        `| ${s.target} | ${fmt(s.rate)} | ${s.seconds}${s.aborted_at_s !== undefined ? " (cut short)" : ""} | ${fmt(s.sent)} | ${l.p50} | ${l.p90} | ${l.p99} | ${l.p999} | ${l.max} | ` +
          `${s.failures} | ${rejectedPct(s)} % | ${s.schedule_lag_ms.p99} | ` +
          `${cpu !== undefined ? `${((cpu * 1000) / Math.max(1, s.sent)).toFixed(0)} µs` : "?"} |`,
      );
    }
    out.push("", "Sustainable-rate search (steps):", "");
    for (const s of r.bus.search) {
      const steps = s.steps.map((t) => `${fmt(t.rate)}: p99 ${t.p99_ms} ms${t.pass ? "" : " ✗"}`).join(", ");
      const found =
        s.sustainable_rate > 0 ? `${fmt(s.sustainable_rate)}/s` : `< ${fmt(s.steps[0]?.rate ?? 0)}/s`;
      out.push(`- ${s.target}: **${found}** (stopped by ${s.stopped_by}); ${steps}`);
    }
  }
  return `${out.join("\n")}\n`;
}

const COLORS: Record<string, string> = { engine: "#d62728", journal: "#ff7f0e", noop: "#1f77b4" };
const LABELS: Record<string, string> = {
  engine: "engine",
  journal: "journaled baseline",
  noop: "no-op baseline",
};

/** Latency by percentile (HDR style: x = −log10(1 − p)), log latency, one panel per rate. */
export function svg(r: Results): string {
  const runs = [...(r.bus?.scenarios ?? []), ...(r.bus?.confirm ?? [])];
  const rates = [...new Set(runs.map((s) => s.rate))];
  const W = 380;
  const H = 280;
  const pad = { l: 66, r: 14, t: 30, b: 40 };
  const width = Math.max(2, rates.length) * W;
  const height = H + 56;
  const px = (p: number) => Math.min(4.3, -Math.log10(Math.max(1e-9, 1 - p / 100)));
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  rates.forEach((rate, k) => {
    const ox = k * W;
    const series = runs.filter((s) => s.rate === rate);
    const values = series.flatMap((s) => s.curve_ms.map(([, v]) => Math.max(0.01, v)));
    const lo = Math.floor(Math.log10(Math.min(...values)));
    const hi = Math.ceil(Math.log10(Math.max(...values)));
    const span = Math.max(1, hi - lo);
    const X = (p: number) => ox + pad.l + (px(p) / 4.3) * (W - pad.l - pad.r);
    const Y = (v: number) => pad.t + (1 - (Math.log10(Math.max(0.01, v)) - lo) / span) * (H - pad.t - pad.b);
    parts.push(
      `<text x="${ox + W / 2}" y="18" text-anchor="middle" font-size="13">${rate.toLocaleString("en-US")} requests/s</text>`,
    );
    for (let e = lo; e <= hi; e++) {
      const y = Y(10 ** e);
      parts.push(`<line x1="${ox + pad.l}" x2="${ox + W - pad.r}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
      parts.push(
        `<text x="${ox + pad.l - 4}" y="${y + 4}" text-anchor="end">${10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(-e)} ms</text>`,
      );
    }
    for (const [p, label] of [
      [0, "0"],
      [90, "90"],
      [99, "99"],
      [99.9, "99.9"],
      [99.99, "99.99"],
    ] as const) {
      const xx = X(p);
      parts.push(`<line x1="${xx}" x2="${xx}" y1="${pad.t}" y2="${H - pad.b}" stroke="#eee"/>`);
      parts.push(`<text x="${xx}" y="${H - pad.b + 14}" text-anchor="middle">${label}</text>`);
    }
    parts.push(`<text x="${ox + W / 2}" y="${H - 8}" text-anchor="middle">percentile</text>`);
    if (lo <= Math.log10(5) && Math.log10(5) <= hi) {
      const y5 = Y(5);
      parts.push(
        `<line x1="${ox + pad.l}" x2="${ox + W - pad.r}" y1="${y5}" y2="${y5}" stroke="#888" stroke-dasharray="4 3"/>`,
        `<text x="${ox + pad.l + 4}" y="${y5 - 3}" fill="#666">5 ms (p99 floor)</text>`,
      );
    }
    for (const s of series) {
      const pts = s.curve_ms.map(([p, v]) => `${X(p).toFixed(1)},${Y(v).toFixed(1)}`).join(" ");
      parts.push(
        `<polyline fill="none" stroke-width="2" stroke="${COLORS[s.target] ?? "#000"}" points="${pts}"/>`,
      );
    }
  });
  Object.entries(LABELS).forEach(([k, label], i) => {
    const lx = 70 + i * 170;
    parts.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${H + 20}" y2="${H + 20}" stroke="${COLORS[k]}" stroke-width="3"/>`,
    );
    parts.push(`<text x="${lx + 30}" y="${H + 24}">${label}</text>`);
  });
  parts.push(
    `<text x="70" y="${H + 46}" fill="#555">client-side latency from the intended send time (open loop, HDR histograms), ${r.date}${r.quick ? " --quick" : ""}</text>`,
    "</svg>",
  );
  return `${parts.join("\n")}\n`;
}
