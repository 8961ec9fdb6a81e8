import { describe, expect, it } from "vitest";
import type { BusResults, Measured } from "../../src/bench/bus.js";
import { markdown } from "../../src/bench/markdown.js";
import { type Results, buildTable, noiseOf } from "../../src/bench/report.js";
import { judge } from "../../src/bench/search.js";
import type { SeveralResults, SeveralRun } from "../../src/bench/several.js";

const summary = (p50: number, p99: number) => ({
  count: 1000,
  mean: p50,
  p50,
  p90: p99,
  p99,
  p999: p99,
  max: p99,
});

function run(
  target: string,
  rate: number,
  p50: number,
  p99: number,
  cpuMs: number,
  rounds: [number, number][],
): Measured {
  const sent = rate * 10;
  return {
    target,
    rate,
    seconds: 10,
    sent,
    ok: sent,
    approved: target === "engine" ? sent * 0.9 : sent,
    rejected: target === "engine" ? sent * 0.1 : 0,
    errors: 0,
    timeouts: 0,
    unsent: 0,
    late_replies: 0,
    failures: 0,
    failure_pct: 0,
    send_rate: rate,
    latency_ms: summary(p50, p99),
    curve_ms: [],
    schedule_lag_ms: summary(0.1, 0.5),
    rejection_codes: {},
    error_codes: {},
    cpu_ms: {
      [target === "engine" ? "engine" : "baselines"]: cpuMs,
      generator: 1000,
      quotes: 200,
      nats_server: 2500,
    },
    round_p50_ms: rounds.map((r) => r[0]),
    round_p99_ms: rounds.map((r) => r[1]),
    round_cpu_ms: [cpuMs / 2, cpuMs / 2],
    round_sent: [sent / 2, sent / 2],
  };
}

const machine = {
  cpu_model: "test",
  cores: 2,
  memory_gb: 1,
  os: "linux",
  node: "v20",
  nats_server: "v2.9",
  commit: "abc",
  load_average_at_start: [0, 0, 0],
};

function results(): Results {
  const steps = (rates: [number, number, boolean][]) =>
    rates.map(([rate, p99]) =>
      judge({ rate, p50_ms: 0.3, p99_ms: p99, failure_pct: 0, rejected_pct: 0, lag_p99_ms: 0.2 }, 2, "ramp"),
    );
  const bus: BusResults = {
    engine_paused_during_baseline_runs: true,
    book: {},
    quotes: { idle_cpu_pct: { engine: 4, quotes: 2 } },
    scenarios: [
      run("noop", 1000, 0.2, 1, 1000, [
        [0.2, 1],
        [0.2, 1],
      ]),
      run("journal", 1000, 0.4, 2, 2800, [
        [0.4, 2],
        [0.4, 2.2],
      ]),
      run("engine", 1000, 0.5, 2.4, 3000, [
        [0.5, 2.2],
        [0.5, 2.6],
      ]),
    ],
    search: [
      {
        target: "noop",
        sustainable_rate: 8000,
        floor_rate: 8000,
        stopped_by: "x",
        steps: steps([[500, 1, true]]),
      },
      {
        target: "journal",
        sustainable_rate: 6000,
        first_failing_rate: 6700,
        floor_rate: 4000,
        stopped_by: "x",
        steps: steps([[500, 1, true]]),
      },
      {
        target: "engine",
        sustainable_rate: 4500,
        first_failing_rate: 5000,
        floor_rate: 4000,
        stopped_by: "x",
        steps: steps([[500, 1, true]]),
      },
    ],
    confirm: [],
    restart: { ready_ms: 1500, tail_events: 1000, snapshot_mb: 20, decisions_before: 410_000 },
    errors: {},
  };
  const sev = (engines: number, p99: number, cpu: number): SeveralRun => ({
    ...run("engine", 1000, 0.5, p99, 0, [
      [0.5, p99],
      [0.5, p99],
    ]),
    engines,
    cpu_per_check_us: cpu,
  });
  const several: SeveralResults = {
    rate: 1000,
    runs: [sev(1, 2, 300), sev(2, 3, 420)],
    owned: { a: 32, b: 32 },
    owned_after: { a: 0, b: 64 },
    ownership_moved: true,
    exactly_n: "test/faults/several.test.ts",
  };
  return {
    date: "2026-11-30",
    quick: false,
    seconds_total: 1,
    machine,
    settings: {},
    bus,
    several,
    errors: { rebuild: "boom" },
  };
}

describe("bench report rows", () => {
  const table = buildTable(results());
  const by = (prefix: string) => table.find((r) => r.metric.startsWith(prefix));

  it("each latency ratio row has the ratio against the journaled baseline and its noise from the two rounds", () => {
    const p99 = by("check p99 @ 1 000/s")!;
    expect(p99.ratio).toBe("1.20× (2.40× no-op)");
    expect(p99.result).toBe("pass");
    expect(p99.noise).toBe("rounds 1.10× / 1.18×; spread engine 16.7 %, journaled 9.5 %");
  });

  it("CPU per check at 1 000/s against the journaled baseline's, ≤ 1.3×", () => {
    const cpu = by("engine CPU per check @ 1 000/s")!;
    expect(cpu.engine).toBe("300 µs");
    expect(cpu.baseline).toContain("journaled 280 µs");
    expect(cpu.ratio).toBe("1.07×");
    expect(cpu.result).toBe("pass");
  });

  it("sustainable rate against both baselines, and the 5 ms floor beside it", () => {
    const s = by("sustainable rate: ")!;
    expect(s.engine).toBe("4 500/s");
    expect(s.ratio).toBe("0.75× (0.56× no-op)");
    expect(s.result).toBe("pass");
    expect(s.noise).toContain("engine 4 500–5 000");
    expect(by("sustainable rate at the absolute floor")!.ratio).toBe("1.00×");
  });

  it("quote folding from the bus phase when no in-process measurement ran; restart judged after ≥ 400 k decisions", () => {
    expect(by("quote folding")!.engine).toBe("4 % (engine process, quotes only)");
    expect(by("quote folding")!.result).toBe("pass");
    expect(by("restart to ready")!.result).toBe("pass");
  });

  it("quote folding in process: the median run's figure, every run's beside it, judged on the median", () => {
    const fold = (us: number) => ({
      quotes: 40_000,
      seconds_simulated: 20,
      cpu_ms: (us * 40_000) / 1000,
      core_pct_at_2000_per_s: +((us * 2000) / 1e4).toFixed(2),
      us_per_quote: us,
    });
    const row = buildTable({
      ...results(),
      quotefold: { ...fold(24), runs_us_per_quote: [31, 22, 24, 26, 20] },
    }).find((r) => r.metric.startsWith("quote folding"))!;
    expect(row.engine).toBe("4.8 % in process (24 µs/quote, median of 5 runs)");
    expect(row.noise).toBe("runs 31 / 22 / 24 / 26 / 20 µs/quote");
    expect(row.baseline).toBe("engine process over the bus, quotes only: 4 %");
    expect(row.result).toBe("pass");
    const single = buildTable({ ...results(), quotefold: fold(26) }).find((r) =>
      r.metric.startsWith("quote folding"),
    )!;
    expect(single.engine).toBe("5.2 % in process (26 µs/quote)");
    expect(single.noise).toBe("");
    expect(single.result).toBe("miss");
  });

  it("one vs two engines, and a failed phase reported as a row and a section", () => {
    expect(by("issue 10: two engines vs one, check p99")!.ratio).toBe("1.50×");
    expect(by("issue 10: engines' CPU per check")!.ratio).toBe("1.40×");
    expect(by("issue 10: failures and rejections with two engines")!.noise).toContain("ownership CHANGED");
    expect(by("phase rebuild FAILED")!.engine).toBe("boom");
    const md = markdown({ ...results(), table });
    expect(md).toContain("| metric | engine | baseline | ratio | noise | target | result |");
    expect(md).toContain("- rebuild: boom");
  });

  it("every bus run's row gives the generator's, the quote publisher's and nats-server's share of a core", () => {
    const md = markdown({ ...results(), table });
    expect(md).toContain("| generator % | quotes % | nats-server % |");
    // 10 s runs: 1 000, 200 and 2 500 ms of CPU
    expect(md).toMatch(/\| engine \| 1 000 \|.*\| 10\.0 \| 2\.0 \| 25\.0 \|/);
  });

  it("noise with one round says so", () => {
    expect(noiseOf([1], [1])).toBe("one round (--quick): not measured");
  });
});
