/**
 * What the benchmark's own apparatus costs (issue 11: "the quote feed and the load generator must
 * cost little"): on a fresh nats-server, the quote publisher alone at `quoteRate` quotes/s, then
 * the load generator alone at each rate against the no-op responder; the CPU share (% of one core)
 * of each process over the window, from /proc.
 *
 * `node dist/bench/apparatus.js '{"seconds":5,"quoteRate":2000,"rates":[1000,5000]}' [--from DIR]`
 * prints one JSON line. `--from` takes the quote publisher and the generator from another build's
 * dist/bench directory (e.g. the main branch's), for a before/after comparison in the same minutes.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { startNatsServer } from "../bus/nats-server.js";
import { ensureStreams } from "../bus/streams.js";
import { streamCatalog } from "../contract/subjects.js";
import { silentLogger } from "../obs/log.js";
import { SYMBOLS } from "./book.js";
import { measureCpu } from "./cpu.js";
import type { LoadGenerator } from "./loadgen.js";
import { type NodeChild, scriptPath, spawnReady } from "./proc.js";
import { emit, sleep } from "./util.js";

export interface ApparatusOptions {
  seconds: number;
  quoteRate: number;
  rates: number[];
}

export interface ApparatusResult {
  from: string;
  seconds: number;
  quotes: { rate: number; cpu_pct: number; nats_server_cpu_pct: number };
  generator: { rate: number; cpu_pct: number; lag_p99_ms: number; p99_ms: number; failures: number }[];
}

const pct = (ms: number | undefined, s: number): number => +(((ms ?? 0) / (s * 1000)) * 100).toFixed(1);

/** A fixed approval, the size of the engine's. */
const DECISION = JSON.stringify({
  order_id: "sample-1",
  approved: true,
  rejecting_gate: null,
  rejection_code: null,
  reason: null,
  decision_id: "bench-apparatus-0000000000000",
  decided_at: "2026-11-30T00:00:00.000Z",
});

export async function measureApparatus(o: ApparatusOptions, from?: string): Promise<ApparatusResult> {
  const dir = resolve(from ?? scriptPath("."));
  const workDir = mkdtempSync(join(tmpdir(), "mts-bench-apparatus-"));
  const server = await startNatsServer({ storeDir: join(workDir, "nats") });
  const nc = await connect({ servers: server.url, name: "bench:apparatus", maxReconnectAttempts: -1 });
  let quotes: NodeChild | undefined;
  let responder: NodeChild | undefined;
  let gen: LoadGenerator | undefined;
  try {
    await ensureStreams(await jetstreamManager(nc), streamCatalog(), 1, silentLogger);
    quotes = await spawnReady(
      join(dir, "quotes.js"),
      [server.url, String(o.quoteRate), String(SYMBOLS)],
      /^ready$/,
      { onStderr: () => undefined },
    );
    await sleep(500);
    const q = await measureCpu({ quotes: quotes.proc.pid, nats: server.pid }, () => sleep(o.seconds * 1000));
    await quotes.stop();
    quotes = undefined;

    responder = await spawnReady(
      scriptPath("./responders.js"),
      [
        JSON.stringify({
          url: server.url,
          decision: DECISION,
          record: DECISION,
          noopSubject: "bench.v1.apparatus.noop",
          journalSubject: "bench.v1.apparatus.journal",
        }),
      ],
      /^ready$/,
      { onStderr: () => undefined },
    );
    const { LoadGenerator: Gen } = (await import(pathToFileURL(join(dir, "loadgen.js")).href)) as {
      LoadGenerator: typeof LoadGenerator;
    };
    const rx = await connect({ servers: server.url, name: "bench:receiver", maxReconnectAttempts: -1 });
    gen = new Gen(rx, server.url);
    const run = (rate: number, seconds: number) =>
      gen!.run({ target: "noop", subject: "bench.v1.apparatus.noop", rate, seconds, timeoutMs: 2000 });
    await run(1000, 1); // warm-up
    const generator: ApparatusResult["generator"] = [];
    for (const rate of o.rates) {
      const m = await measureCpu({ generator: process.pid }, () => run(rate, o.seconds));
      const r = m.result.result;
      generator.push({
        rate,
        cpu_pct: pct(m.cpu_ms.generator, o.seconds),
        lag_p99_ms: r.schedule_lag_ms.p99,
        p99_ms: r.latency_ms.p99,
        failures: r.failures,
      });
    }
    await gen.close();
    gen = undefined;
    await rx.close();
    return {
      from: dir,
      seconds: o.seconds,
      quotes: {
        rate: o.quoteRate,
        cpu_pct: pct(q.cpu_ms.quotes, o.seconds),
        nats_server_cpu_pct: pct(q.cpu_ms.nats, o.seconds),
      },
      generator,
    };
  } finally {
    await gen?.close().catch(() => undefined);
    await quotes?.stop();
    await responder?.stop();
    await nc.close().catch(() => undefined);
    await server.stop();
    rmSync(workDir, { recursive: true, force: true });
  }
}

if (process.argv[1] && resolve(process.argv[1]) === scriptPath("./apparatus.js")) {
  const o = JSON.parse(process.argv[2] ?? "{}") as Partial<ApparatusOptions>;
  const i = process.argv.indexOf("--from");
  const r = await measureApparatus(
    { seconds: o.seconds ?? 5, quoteRate: o.quoteRate ?? 2000, rates: o.rates ?? [1000, 5000] },
    i >= 0 ? process.argv[i + 1] : undefined,
  );
  emit(r);
  process.exit(0);
}
