/**
 * Issue 10 in the benchmark: one engine against two on the same bus, under the same load (open-loop
 * checks at `rate` with quotes streaming). The engines are started as operators run them
 * (`mts-risk serve`, each with its own --state-dir and a free HTTP port); with two, each owns about
 * half of the partitions and forwards checks for the other's funds. Reported: p50/p99 and the
 * engines' CPU per check, one vs two (on 2 cores the point is that the second costs little, not
 * that it doubles anything). Full run: one, two, then one again after the second's SIGTERM (a
 * planned handover), so the one-engine figure has its noise. That two engines together approve
 * exactly N against headroom N is proven by the suite (test/faults/several.test.ts), not here.
 */
import { connect } from "@nats-io/transport-node";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startNatsServer } from "../bus/nats-server.js";
import { statusAll } from "../cli/commands/status.js";
import { DEFAULTS } from "../config/schema.js";
import { Subjects } from "../contract/subjects.js";
import { SYMBOLS } from "./book.js";
import { measureCpu } from "./cpu.js";
import { type EngineProcess, quiesce, spawnEngine, waitStatus } from "./engineproc.js";
import { LoadGenerator, type RunResult } from "./loadgen.js";
import { type NodeChild, scriptPath, spawnReady } from "./proc.js";
import { publishBook } from "./setup.js";
import { progress, sleep } from "./util.js";

export interface SeveralSettings {
  workDir: string;
  positions: number;
  quoteRate: number;
  rate: number;
  seconds: number;
  /** Full run: one engine measured again after the second leaves (the noise of the one-engine figure). */
  again: boolean;
  timeoutMs: number;
}

export interface SeveralRun extends RunResult {
  engines: number;
  /** Engine CPU (all engines) per check, µs. */
  cpu_per_check_us: number;
  cpu_ms: Record<string, number>;
}

export interface SeveralResults {
  rate: number;
  runs: SeveralRun[];
  /** Partitions owned by each engine while two ran. */
  owned: Record<string, number>;
  /** The same after the two-engine run; moved: it changed (a takeover during the run). */
  owned_after: Record<string, number>;
  ownership_moved: boolean;
  exactly_n: string;
}

export const EXACTLY_N_PROOF =
  'test/faults/several.test.ts: "2 engines, then a third joining mid-race: 1 000 racing orders over both subjects approve exactly N" (and the kill -9 / SIGSTOP cases)';

/** Messages an engine may still have to apply (≈ half a second of the quote stream). */
const MAX_LAG = 1000;

/** Until `n` engines answer status, all ready and caught up, every partition owned by one of them. */
async function waitOwners(
  nc: Parameters<typeof statusAll>[0],
  n: number,
  timeoutMs = 90_000,
): Promise<Record<string, number>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const all = await statusAll(nc, 700);
    const owned = Object.fromEntries(all.map((e) => [String(e.instance), Number(e.owned ?? 0)]));
    const total = Object.values(owned).reduce((a, v) => a + v, 0);
    const settled =
      all.length === n &&
      all.every((e) => e.ready === true && Number(e.owned ?? 0) > 0 && Number(e.lag ?? 0) <= MAX_LAG) &&
      total === DEFAULTS.ownership.partitions;
    if (settled) return owned;
    if (Date.now() > deadline)
      throw new Error(`${n} engines did not settle ownership: ${JSON.stringify(owned)}`);
    await sleep(500);
  }
}

export async function runSeveralPhase(cfg: SeveralSettings): Promise<SeveralResults> {
  const server = await startNatsServer({ storeDir: join(cfg.workDir, "nats-several") });
  const nc = await connect({ servers: server.url, name: "bench:several", maxReconnectAttempts: -1 });
  const rx = await connect({ servers: server.url, name: "bench:receiver", maxReconnectAttempts: -1 });
  const engines: EngineProcess[] = [];
  let quotes: NodeChild | undefined;
  const gen = new LoadGenerator(rx, server.url);
  const start = (k: number): EngineProcess => {
    const stateDir = join(cfg.workDir, `several-${k}`);
    mkdirSync(stateDir, { recursive: true });
    const e = spawnEngine({ url: server.url, stateDir, logFile: join(cfg.workDir, `several-${k}.log`) });
    engines.push(e);
    return e;
  };
  try {
    const a = start(0);
    await waitStatus(nc, a);
    const book = await publishBook(nc, cfg.positions);
    await waitStatus(nc, a, { cursors: book.cursors });
    quotes = await spawnReady(
      scriptPath("./quotes.js"),
      [server.url, String(cfg.quoteRate), String(SYMBOLS)],
      /^ready$/,
      { onStderr: () => undefined },
    );
    progress("several: one engine up, book and quotes flowing", book.counts);
    const runs: SeveralRun[] = [];
    let k = 0;
    const measure = async (label: string): Promise<void> => {
      const live = engines.filter((e) => e.child.proc.exitCode === null && e.child.proc.signalCode === null);
      await quiesce(nc, Subjects.check);
      await gen.run({
        target: label,
        subject: Subjects.check,
        rate: cfg.rate,
        seconds: 2,
        timeoutMs: cfg.timeoutMs,
      });
      await quiesce(nc, Subjects.check);
      const pids = Object.fromEntries(live.map((e, i) => [`engine${i}`, e.child.proc.pid]));
      const m = await measureCpu({ ...pids, quotes: quotes?.proc.pid, generator: process.pid }, () =>
        gen.run({
          target: label,
          subject: Subjects.check,
          rate: cfg.rate,
          seconds: cfg.seconds,
          timeoutMs: cfg.timeoutMs,
          abortAfterS: 5,
          abortTimeoutPct: 5,
        }),
      );
      const r = m.result.result;
      const engineMs = Object.entries(m.cpu_ms)
        .filter(([name]) => name.startsWith("engine"))
        .reduce((s, [, v]) => s + v, 0);
      const run: SeveralRun = {
        ...r,
        engines: live.length,
        cpu_per_check_us: Math.round((engineMs * 1000) / Math.max(1, r.sent)),
        cpu_ms: m.cpu_ms,
      };
      runs.push(run);
      progress(`several: ${label} @ ${cfg.rate}/s (${++k})`, {
        p50_ms: r.latency_ms.p50,
        p99_ms: r.latency_ms.p99,
        failures: r.failures,
        cpu_per_check_us: run.cpu_per_check_us,
        rejection_codes: r.rejection_codes,
        error_codes: r.error_codes,
      });
    };

    await measure("one engine");
    const b = start(1);
    const owned = await waitOwners(nc, 2);
    progress("several: two engines own the partitions", owned);
    await measure("two engines");
    // On a loaded machine a heartbeat may stall past 0.6 T and the other engine take over: then the
    // "two engines" figure was one engine and a forwarder. Said, not hidden.
    const status = await statusAll(nc, 700);
    const after = Object.fromEntries(status.map((e) => [String(e.instance), Number(e.owned ?? 0)]));
    const lagAfter = Object.fromEntries(status.map((e) => [String(e.instance), e.lag]));
    progress("several: after the two-engine run", { owned: after, lag: lagAfter });
    const moved = JSON.stringify(after) !== JSON.stringify(owned);
    if (moved) progress("several: ownership CHANGED during the two-engine run", { before: owned, after });
    if (cfg.again) {
      await b.child.stop(); // SIGTERM: a planned handover back to the first
      await waitOwners(nc, 1);
      await measure("one engine");
    }
    return {
      rate: cfg.rate,
      runs,
      owned,
      owned_after: after,
      ownership_moved: moved,
      exactly_n: EXACTLY_N_PROOF,
    };
  } finally {
    await gen.close().catch(() => undefined);
    await quotes?.stop();
    for (const e of engines.reverse()) await e.child.stop();
    await rx.close().catch(() => undefined);
    await nc.close().catch(() => undefined);
    await server.stop();
  }
}
