/**
 * `npm run bench [-- --quick] [--only apparatus,bus,several,quotefold,pipeline,scale,rss,soak,rebuild]
 *   [--engine-profile] [--keep] [--new-checks] [--restart-after <decisions>] [--rebuild-fills <n>]`
 *
 * The check path against the physical limit, side by side in one run: the engine (its own
 * process) and two baselines (a no-op responder and a journaled one, in another process) under the
 * same open-loop load on the same nats-server; then the in-process gate pipeline, the per-decision
 * cost at 10 vs 100 000 positions in a fund, RSS at 10 k / 100 k / 1 M positions, the idempotency
 * soak, the rebuild rate against a bare read; one engine vs two (issue 10); what the apparatus
 * itself costs. Writes bench/results/<date>[-quick].{json,md,svg}. Progress goes to stderr; a
 * failing phase is reported (stderr, the table, the JSON's `errors`) and the others still run.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ApparatusOptions, ApparatusResult } from "./apparatus.js";
import { type BusSettings, runBusPhase } from "./bus.js";
import { machine } from "./machine.js";
import type { DecideResult, InProcessOptions, RssResult } from "./pipeline.js";
import { runJson, scriptPath } from "./proc.js";
import { runRebuildPhase } from "./rebuildphase.js";
import { svg } from "./plot.js";
import { markdown } from "./markdown.js";
import { type QuoteFold, type Results, buildTable } from "./report.js";
import { type SeveralSettings, runSeveralPhase } from "./several.js";
import type { SoakOptions, SoakResult } from "./soak.js";
import { describe, nowMs, progress } from "./util.js";

const PHASES = [
  "apparatus",
  "bus",
  "several",
  "quotefold",
  "pipeline",
  "scale",
  "rss",
  "soak",
  "rebuild",
] as const;
type Phase = (typeof PHASES)[number];

function flag(name: string): boolean {
  return process.argv.includes(name);
}
function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const quick = flag("--quick");
/** Issue 13's checks switched on in the in-process runs (see NEW_CHECKS in book.ts). */
const newChecks = flag("--new-checks");
const only = new Set((option("--only") ?? PHASES.join(",")).split(",").map((s) => s.trim()));
for (const p of only)
  if (!PHASES.includes(p as Phase)) throw new Error(`unknown phase ${p}; one of ${PHASES.join(", ")}`);
const resultsDir = option("--out") ?? fileURLToPath(new URL("../../bench/results/", import.meta.url));
const date = new Date().toISOString().slice(0, 10);
const name = `${date}${quick ? "-quick" : ""}`;
const workDir = mkdtempSync(join(tmpdir(), "mts-bench-"));
const profileDir = flag("--engine-profile") ? join(resultsDir, "profiles", name) : undefined;

const S = {
  quick,
  bus: {
    quick,
    workDir,
    positions: 10_000,
    quoteRate: 2000,
    rates: [1000, 5000],
    // Full: two rounds of 10 s per target and rate, merged: ≥ 20 s each (QUALITY.md).
    scenarioSeconds: quick ? 4 : 10,
    rounds: quick ? 1 : 2,
    stepSeconds: quick ? 2 : 4,
    stepFactor: quick ? 2 : 1.5,
    bisectSteps: quick ? 1 : 2,
    searchFrom: 500,
    timeoutMs: 2000,
    restartAfterDecisions: Number(option("--restart-after") ?? (quick ? 0 : 400_000)),
    cpuProfileDir: profileDir,
  } satisfies BusSettings,
  pipeline: { decisions: quick ? 40_000 : 200_000, positions: 10_000 },
  scale: { decisions: quick ? 10_000 : 100_000, positions: [10, 100_000] },
  // The pipeline child (10 k positions, 50 funds) and the scale child (100 k positions in one fund)
  // report theirs after building; a dedicated child holds 1 M (full run only).
  rss: quick ? [] : [1_000_000],
  quotefoldRuns: quick ? 1 : 5,
  // `--rebuild-fills N`: another size (while iterating); the figure is taken at 1 000 000
  rebuildFills: Number(option("--rebuild-fills") ?? (quick ? 50_000 : 1_000_000)),
  apparatus: { seconds: quick ? 2 : 5, quoteRate: 2000, rates: [1000, 5000] } satisfies ApparatusOptions,
  several: {
    workDir,
    positions: 10_000,
    quoteRate: 2000,
    rate: 1000,
    seconds: quick ? 4 : 10,
    again: !quick,
    timeoutMs: 2000,
  } satisfies SeveralSettings,
  soak: { decisions: quick ? 60_000 : 1_000_000, small: 10_000 } satisfies SoakOptions,
};

/**
 * In-process benchmarks run in a fresh child each. The decider is single-threaded (one core); the
 * child is not pinned, because on a shared machine pinning queues it behind whatever else runs on
 * that core while the other one may be idle.
 */
function inProcess<T>(o: InProcessOptions): Promise<T> {
  return runJson<T>(scriptPath("./pipeline.js"), ["--json", JSON.stringify(o)], {
    nodeArgs: ["--expose-gc", "--max-old-space-size=16384"],
  });
}

const t0 = nowMs();
const results: Results = {
  date,
  quick,
  seconds_total: 0,
  machine: machine(),
  settings: { ...S, bus: { ...S.bus, workDir: undefined }, several: { ...S.several, workDir: undefined } },
  errors: {},
};
progress(`benchmark ${quick ? "(quick) " : ""}starting`, { phases: [...only], machine: results.machine });
if (results.machine.load_average_at_start[0]! > results.machine.cores / 2) {
  progress("note: the machine is already busy; absolute figures will be noisy, ratios less so");
}

async function phase(p: Phase, fn: () => Promise<void>): Promise<void> {
  if (!only.has(p)) return;
  const start = nowMs();
  progress(`phase ${p}`);
  try {
    await fn();
  } catch (err) {
    results.errors[p] = describe(err);
    progress(`phase ${p} FAILED: ${results.errors[p]}`);
  }
  progress(`phase ${p} done in ${((nowMs() - start) / 1000).toFixed(1)} s`);
}

let interrupted = false;
process.once("SIGINT", () => {
  interrupted = true;
  progress(`interrupted; work dir ${workDir}`);
  process.exit(130);
});

await phase("apparatus", async () => {
  results.apparatus = await runJson<ApparatusResult>(scriptPath("./apparatus.js"), [
    JSON.stringify(S.apparatus),
  ]);
  progress("apparatus (CPU % of one core)", {
    quotes: results.apparatus.quotes.cpu_pct,
    generator: results.apparatus.generator.map((g) => `${g.rate}/s: ${g.cpu_pct}`),
  });
});
await phase("bus", async () => {
  results.bus = await runBusPhase(S.bus);
  for (const [k, v] of Object.entries(results.bus.errors)) results.errors[`bus.${k}`] = v;
});
await phase("several", async () => {
  results.several = await runSeveralPhase(S.several);
});
await phase("quotefold", async () => {
  // The in-process measurement when this build has it (quotefold.ts); the bus phase's figure (the
  // engine's CPU with only quotes flowing) is reported beside it either way.
  if (!existsSync(scriptPath("./quotefold.js"))) {
    progress("quotefold: no dist/bench/quotefold.js in this build; the bus phase's figure stands alone");
    return;
  }
  // One short run is at the mercy of the machine's other work (a run after the bus phases has read
  // 25-33 µs/quote where the runs around it read 17-23): the median of several, each printed.
  const runs: QuoteFold[] = [];
  for (let i = 0; i < S.quotefoldRuns; i++) {
    runs.push(
      await runJson<QuoteFold>(scriptPath("./quotefold.js"), ["--json", "--seconds", quick ? "10" : "20"]),
    );
    progress("quotefold run", { ...runs[runs.length - 1] });
  }
  const sorted = [...runs].sort((a, b) => a.us_per_quote - b.us_per_quote);
  results.quotefold = {
    ...sorted[Math.floor((sorted.length - 1) / 2)]!,
    runs_us_per_quote: runs.map((q) => q.us_per_quote),
  };
  progress("quotefold", { ...results.quotefold });
});
await phase("pipeline", async () => {
  results.pipeline = await inProcess<DecideResult>({ mode: "pipeline", ...S.pipeline, newChecks });
  progress("pipeline", { per_s: results.pipeline.per_s, latency_us: results.pipeline.latency_us });
});
await phase("scale", async () => {
  const [few, many] = S.scale.positions;
  const scale = { mode: "fund" as const, decisions: S.scale.decisions, newChecks };
  const a = await inProcess<DecideResult>({ ...scale, positions: few! });
  const b = await inProcess<DecideResult>({ ...scale, positions: many! });
  results.scale = {
    positions_10: a,
    positions_100k: b,
    cost_ratio: +(b.median_round_mean_us / a.median_round_mean_us).toFixed(2),
    p50_ratio: +(b.latency_us.p50 / a.latency_us.p50).toFixed(2),
  };
  progress("scale", {
    us_10: a.median_round_mean_us,
    us_100k: b.median_round_mean_us,
    ratio: results.scale.cost_ratio,
  });
});
await phase("rss", async () => {
  results.rss = [];
  {
    for (const r of [results.pipeline, results.scale?.positions_100k]) {
      if (r)
        results.rss.push({
          mode: "rss",
          positions: r.positions,
          funds: r.funds,
          symbols: r.symbols,
          build_s: r.build_s,
          fills_per_s: 0,
          rss_mb: r.rss_after_build_mb,
          heap_used_mb: r.heap_after_build_mb,
        });
    }
  }
  for (const positions of S.rss) {
    // as the engine holds it (its snapshot attached and flushed as the state grows), and alone
    for (const snapshot of [true, false]) {
      const r = await inProcess<RssResult>({ mode: "rss", positions, snapshot });
      results.rss.push(r);
      progress("rss", { ...r });
    }
  }
});
await phase("soak", async () => {
  const r = await runJson<SoakResult>(scriptPath("./soak.js"), ["--json", JSON.stringify(S.soak)], {
    nodeArgs: ["--expose-gc", "--max-old-space-size=16384"],
  });
  results.soak = { ...r, by: "soak.js" };
  progress("soak", results.soak);
});
await phase("rebuild", async () => {
  results.rebuild = await runRebuildPhase(workDir, S.rebuildFills, profileDir);
  progress("rebuild", { ...results.rebuild });
});

results.seconds_total = +((nowMs() - t0) / 1000).toFixed(1);
results.table = buildTable(results);
mkdirSync(resultsDir, { recursive: true });
const base = join(resultsDir, name);
writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(`${base}.md`, markdown(results));
if (results.bus) writeFileSync(`${base}.svg`, svg(results));
process.stdout.write(markdown(results));
progress(`wrote ${base}.json, .md${results.bus ? ", .svg" : ""} in ${results.seconds_total} s`);
if (flag("--keep") || Object.keys(results.errors).length > 0) progress(`work dir kept: ${workDir}`);
else if (!interrupted) rmSync(workDir, { recursive: true, force: true });
process.exit(Object.keys(results.errors).length > 0 ? 1 : 0);
