/**
 * The check path over the bus: one nats-server, the engine in its own process, the baselines in
 * another, a quote publisher in a third, and the open-loop generator here. Every scenario runs
 * against the no-op baseline, the journaled baseline and the engine, one after another, in this
 * run, on this server, with this generator.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startNatsServer } from "../bus/nats-server.js";
import { Subjects } from "../contract/subjects.js";
import { SYMBOLS, fundId, order } from "./book.js";
import { measureCpu } from "./cpu.js";
import { type EngineProcess, quiesce, spawnEngine, waitStatus } from "./engineproc.js";
import { LoadGenerator, type RawRun, type RunResult, mergeRuns } from "./loadgen.js";
import { type NodeChild, scriptPath, spawnReady } from "./proc.js";
import { type TargetSearch, searchRates } from "./search.js";
import { publishBook, restartToReady, topUp } from "./setup.js";
import { describe, progress, sleep } from "./util.js";

export interface BusSettings {
  quick: boolean;
  workDir: string;
  positions: number;
  quoteRate: number;
  rates: number[];
  scenarioSeconds: number;
  /** Each fixed-rate scenario is run this many times per target, the targets' order alternating. */
  rounds: number;
  stepSeconds: number;
  stepFactor: number;
  /** Bisection steps per target after the ramp of the sustainable-rate search. */
  bisectSteps: number;
  /** The restart-to-ready figure is taken after at least this many engine decisions (topped up). */
  restartAfterDecisions: number;
  /** The first rate of the sustainable-rate search. */
  searchFrom: number;
  timeoutMs: number;
  cpuProfileDir?: string | undefined;
}

export interface Target {
  name: "noop" | "journal" | "engine";
  subject: string;
}

export const TARGETS: Target[] = [
  { name: "noop", subject: "bench.v1.risk.check.noop" },
  { name: "journal", subject: "bench.v1.risk.check.journal" },
  { name: "engine", subject: Subjects.check },
];

export interface Measured extends RunResult {
  /** CPU ms used during the run by each process. */
  cpu_ms: Record<string, number>;
  /** p50 and p99 of each round, when the scenario ran in rounds (the noise of a ratio). */
  round_p50_ms?: number[];
  round_p99_ms?: number[];
  /** CPU ms of the target's own process in each round, and the requests sent in it. */
  round_cpu_ms?: number[];
  round_sent?: number[];
}

export interface BusResults {
  engine_paused_during_baseline_runs: true;
  book: Record<string, unknown>;
  quotes: Record<string, unknown>;
  scenarios: Measured[];
  search: TargetSearch[];
  confirm: Measured[];
  restart: Record<string, unknown>;
  /** Parts of the phase that failed (the others still ran): search, confirm, restart. */
  errors: Record<string, string>;
}

/** The search stops here: on 2 cores the generator itself cannot send much more. */
const MAX_RATE = 20_000;
/** The lowest rate a target failing the first step is measured at (the search steps down to it). */
const SEARCH_LOWEST = 50;
export const rejectedPct = (r: RunResult): number => +((r.rejected / Math.max(1, r.ok)) * 100).toFixed(1);

export async function runBusPhase(cfg: BusSettings): Promise<BusResults> {
  const natsLog = join(cfg.workDir, "nats-server.log");
  const server = await startNatsServer({ storeDir: join(cfg.workDir, "nats"), logFile: natsLog });
  progress("nats-server up", { url: server.url, log: natsLog });
  const nc = await connect({ servers: server.url, name: "bench:setup", maxReconnectAttempts: -1 });
  const rx = await connect({ servers: server.url, name: "bench:receiver", maxReconnectAttempts: -1 });
  const stateDir = join(cfg.workDir, "engine-state");
  mkdirSync(stateDir, { recursive: true });
  let engine: EngineProcess | undefined;
  let baselines: NodeChild | undefined;
  let quotes: NodeChild | undefined;
  const gen = new LoadGenerator(rx, server.url);
  let pauseEngine: () => void = () => undefined;
  let resumeEngine: () => Promise<void> = () => Promise.resolve();
  try {
    engine = spawnEngine({
      url: server.url,
      stateDir,
      logFile: join(cfg.workDir, "engine.log"),
      cpuProfileDir: cfg.cpuProfileDir,
    });
    await waitStatus(nc, engine);
    progress("engine up (empty state)", { log: engine.logFile });

    const book = await publishBook(nc, cfg.positions);
    await waitStatus(nc, engine, { cursors: book.cursors });
    progress("engine caught up with the book", book.counts);

    let quoteStats: Record<string, unknown> = {};
    quotes = await spawnReady(
      scriptPath("./quotes.js"),
      [server.url, String(cfg.quoteRate), String(SYMBOLS)],
      /^ready$/,
      {
        onStderr: (l) => {
          if (l.startsWith("[quotes] ")) quoteStats = JSON.parse(l.slice(9)) as Record<string, unknown>;
          else process.stderr.write(`${l}\n`);
        },
      },
    );
    // A real decision and a real journal record, for the baselines to send back and to write.
    // The quote stream runs first: on a busy machine the book's own quotes may be stale by now.
    let decision = "";
    for (let k = 1; ; k++) {
      const sample = await nc.request(Subjects.check, JSON.stringify(order(`sample${k}`, 1)), {
        timeout: 5000,
      });
      decision = sample.string();
      if (sample.json<{ approved: boolean }>().approved) break;
      if (k >= 10) throw new Error(`the sample order was rejected: ${decision}`);
      await sleep(1000);
    }
    const jsm = await jetstreamManager(nc);
    const rec = await jsm.streams.getMessage("RISK_DECISIONS", {
      last_by_subj: Subjects.decision(fundId(1)),
    });
    if (!rec) throw new Error("no decision record on RISK_DECISIONS");
    baselines = await spawnReady(
      scriptPath("./responders.js"),
      [
        JSON.stringify({
          url: server.url,
          decision,
          record: rec.string(),
          noopSubject: TARGETS[0]!.subject,
          journalSubject: TARGETS[1]!.subject,
        }),
      ],
      /^ready$/,
    );
    progress("baselines and quote publisher up", {
      decision_bytes: decision.length,
      record_bytes: rec.data.length,
      quotes_per_s: cfg.quoteRate,
    });

    const pids = {
      engine: engine.child.proc.pid,
      baselines: baselines.proc.pid,
      quotes: quotes.proc.pid,
      nats_server: server.pid,
      generator: process.pid,
    };
    // The engine is paused (SIGSTOP) while a baseline is measured: the baselines show what this
    // machine does without the engine's background work (it folds every quote); the quote stream
    // keeps flowing through nats-server for every target. Resumed, it catches up before its runs.
    let paused = false;
    const engineProc = engine;
    pauseEngine = () => {
      if (!paused) engineProc.child.proc.kill("SIGSTOP");
      paused = true;
    };
    resumeEngine = async () => {
      if (!paused) return;
      engineProc.child.proc.kill("SIGCONT");
      paused = false;
      const quotesInfo = await jsm.streams.info("QUOTES");
      await waitStatus(nc, engineProc, { cursors: { QUOTES: quotesInfo.state.last_seq } });
      await quiesce(nc, Subjects.check);
    };
    let engineChecks = 1;
    const errors: Record<string, string> = {};
    const runOnce = async (t: Target, rate: number, seconds: number) => {
      if (t.name === "engine") await resumeEngine();
      else pauseEngine();
      const m = await measureCpu(pids, () =>
        gen.run({
          target: t.name,
          subject: t.subject,
          rate,
          seconds,
          timeoutMs: cfg.timeoutMs,
          abortAfterS: 5,
          abortTimeoutPct: 5,
        }),
      );
      if (t.name === "engine") engineChecks += m.result.result.sent;
      await quiesce(nc, t.subject);
      await sleep(300);
      return m;
    };
    const measure = async (t: Target, rate: number, seconds: number): Promise<Measured> => {
      const { result, cpu_ms } = await runOnce(t, rate, seconds);
      return { ...result.result, cpu_ms };
    };
    const say = (r: RunResult) =>
      progress(`${r.target} @ ${r.rate}/s`, {
        p50_ms: r.latency_ms.p50,
        p99_ms: r.latency_ms.p99,
        max_ms: r.latency_ms.max,
        failures: r.failures,
        rejected_pct: rejectedPct(r),
        lag_p99_ms: r.schedule_lag_ms.p99,
      });

    // What streaming quotes alone cost each process (no checks), over a few seconds.
    const idle = await measureCpu(pids, () => sleep(cfg.quick ? 2000 : 5000));
    const idleS = cfg.quick ? 2 : 5;
    const idleCpuPct = Object.fromEntries(
      Object.entries(idle.cpu_ms).map(([k, v]) => [k, +((v / (idleS * 1000)) * 100).toFixed(1)]),
    );
    progress("CPU with quotes streaming and no checks (% of one core)", idleCpuPct);

    progress("warm-up");
    for (const t of TARGETS) await measure(t, 1000, cfg.quick ? 1 : 3);

    // Rounds with the order of the targets alternating, so that a noisy neighbour on this shared
    // machine is spread over all targets rather than landing on one.
    const scenarios: Measured[] = [];
    for (const rate of cfg.rates) {
      const parts = new Map<string, { raws: RawRun[]; cpu: Record<string, number>; cpuRounds: number[] }>();
      for (let k = 0; k < cfg.rounds; k++) {
        for (const t of k % 2 === 0 ? TARGETS : [...TARGETS].reverse()) {
          const { result, cpu_ms } = await runOnce(t, rate, cfg.scenarioSeconds);
          say(result.result);
          const p = parts.get(t.name) ?? { raws: [], cpu: {}, cpuRounds: [] };
          p.raws.push(result);
          p.cpuRounds.push(cpu_ms[t.name === "engine" ? "engine" : "baselines"] ?? 0);
          for (const [name, v] of Object.entries(cpu_ms)) p.cpu[name] = (p.cpu[name] ?? 0) + v;
          parts.set(t.name, p);
        }
      }
      for (const t of TARGETS) {
        const p = parts.get(t.name)!;
        scenarios.push({
          ...mergeRuns(p.raws),
          cpu_ms: p.cpu,
          round_p50_ms: p.raws.map((r) => r.result.latency_ms.p50),
          round_cpu_ms: p.cpuRounds,
          round_sent: p.raws.map((r) => r.result.sent),
          round_p99_ms: p.raws.map((r) => r.result.latency_ms.p99),
        });
      }
    }

    // The sustainable rate of each target (search.ts): ramp, then bisection, every step judged
    // against the journaled baseline measured at the same rate.
    let search: TargetSearch[] = [];
    try {
      search = await searchRates(
        TARGETS.map((t) => t.name),
        async (name, rate) => {
          const r = await measure(
            TARGETS.find((t) => t.name === name)!,
            rate,
            cfg.stepSeconds,
          );
          return {
            rate,
            p50_ms: r.latency_ms.p50,
            p99_ms: r.latency_ms.p99,
            failure_pct: r.failure_pct,
            rejected_pct: rejectedPct(r),
            lag_p99_ms: r.schedule_lag_ms.p99,
          };
        },
        {
          from: cfg.searchFrom,
          factor: cfg.stepFactor,
          cap: MAX_RATE,
          bisect: cfg.bisectSteps,
          lowest: SEARCH_LOWEST,
        },
        (t, j) =>
          progress(`search ${t} @ ${j.rate}/s (${j.phase}): ${j.pass ? "pass" : `FAIL (${j.why})`}`, {
            p50_ms: j.p50_ms,
            p99_ms: j.p99_ms,
            limit_ms: j.limit_ms,
            failure_pct: j.failure_pct,
            lag_p99_ms: j.lag_p99_ms,
          }),
      );
    } catch (err) {
      errors.search = describe(err);
      progress(`sustainable-rate search FAILED: ${errors.search}`);
    }

    // Full run: every target held at the journaled baseline's sustainable rate, for the scenario
    // length (QUALITY.md: "the highest rate the baseline sustains, for ≥ 20 s each").
    const confirm: Measured[] = [];
    try {
      const baseRate = search.find((s) => s.target === "journal")?.sustainable_rate ?? 0;
      if (!cfg.quick && baseRate > 0 && !cfg.rates.includes(baseRate)) {
        for (const t of TARGETS) {
          const r = await measure(t, baseRate, cfg.scenarioSeconds * cfg.rounds);
          say(r);
          confirm.push(r);
        }
      }
    } catch (err) {
      errors.confirm = describe(err);
      progress(`runs at the baseline's sustainable rate FAILED: ${errors.confirm}`);
    }

    await resumeEngine();
    await quotes.stop();
    quotes = undefined;
    let restartReport: Record<string, unknown> = {};
    try {
      // Restart with a snapshot after ≥ restartAfterDecisions decisions (issue 11): top up first.
      const more = cfg.restartAfterDecisions - engineChecks;
      if (more > 0) {
        progress(`topping up the engine's decisions: ${more} more checks before the restart`);
        const t = await topUp(nc, Subjects.check, more);
        engineChecks += t.answered;
        progress("topped up", t);
      }
      const restart = await restartToReady(cfg, nc, engine, server.url, stateDir);
      engine = restart.engine;
      restartReport = { ...restart.report, decisions_before: engineChecks };
      progress("restart to ready", restartReport);
    } catch (err) {
      errors.restart = describe(err);
      progress(`restart to ready FAILED: ${errors.restart}`);
    }
    return {
      engine_paused_during_baseline_runs: true,
      book: book.counts,
      quotes: { ...quoteStats, idle_cpu_pct: idleCpuPct },
      scenarios,
      search,
      confirm,
      restart: restartReport,
      errors,
    };
  } finally {
    engine?.child.proc.kill("SIGCONT"); // a stopped process would sit on the SIGTERM
    await gen.close().catch(() => undefined);
    await quotes?.stop();
    await baselines?.stop();
    await engine?.child.stop();
    await rx.close().catch(() => undefined);
    await nc.close().catch(() => undefined);
    await server.stop();
  }
}
