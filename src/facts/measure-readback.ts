/**
 * Measures the engine's CPU per decision with and without the live read-back of its own journaled
 * decisions (facts/decisions.ts `readBack`: "apply" folds them again from memory, "skip" only
 * advances the cursor for a sequence the journal acknowledged).
 *
 * Method: one real nats-server; the engine in this process; the load generator in a child process
 * (so `process.cpuUsage()` here is the engine's own, user + system, all threads). Blocks of
 * `--block` checks (`--inflight` outstanding requests) alternate A/B/B/A…, each block ending once
 * every answer arrived and the follower has applied the journal's last message; the CPU of a block
 * divided by its decisions is one sample. Reports the median per mode and the ratio.
 *
 *   node dist/facts/measure-readback.js [--rounds 10] [--block 4000] [--inflight 64]
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { loadConfig } from "../config/index.js";
import { Subjects } from "../contract/subjects.js";
import { startNatsServer } from "../bus/nats-server.js";
import { startEngine } from "../engine/index.js";
import type { ReadBack } from "./decisions.js";

const { values } = parseArgs({
  options: {
    rounds: { type: "string", default: "10" },
    block: { type: "string", default: "4000" },
    inflight: { type: "string", default: "64" },
  },
});
const ROUNDS = Number(values.rounds);
const BLOCK = Number(values.block);
const INFLIGHT = Number(values.inflight);

/** The load generator (child process): on each `go` request, sends n checks and answers when all are answered. */
const GENERATOR = `
import { connect } from "@nats-io/transport-node";
const nc = await connect({ servers: process.argv[1] });
let next = 0;
const sub = nc.subscribe("measure.go");
await nc.flush();
process.stdout.write("ready\\n");
for await (const m of sub) {
  const { n, inflight } = JSON.parse(new TextDecoder().decode(m.data));
  let sent = 0, done = 0;
  await new Promise((resolve) => {
    const one = () => {
      if (sent >= n) return;
      const i = ++next; sent++;
      const order = { order_id: "o-" + i, idempotency_key: "k-" + i, fund_id: "alpha", broker: "paper",
        symbol: "AAPL", side: i % 2 ? "BUY" : "SELL", order_type: "LIMIT", quantity: "1", limit_price: "100" };
      nc.request("mts.v1.risk.check", JSON.stringify(order), { timeout: 30000 }).then(
        () => { if (++done === n) resolve(); else one(); },
        () => { if (++done === n) resolve(); else one(); });
    };
    for (let k = 0; k < Math.min(inflight, n); k++) one();
  });
  m.respond("done");
}
`;

async function main(): Promise<void> {
  const cleanup: (() => unknown)[] = [];
  process.once("exit", () => cleanup.forEach((f) => f()));
  const storeDir = mkdtempSync(join(tmpdir(), "mts-measure-nats-"));
  const stateDir = mkdtempSync(join(tmpdir(), "mts-measure-state-"));
  const server = await startNatsServer({ port: 0, storeDir });
  let mode: ReadBack = "skip";
  const { config } = loadConfig({
    env: {},
    flags: { "nats.url": server.url, "state.dir": stateDir, "log.level": "error" },
  });
  const engine = await startEngine({ config, readBack: () => mode });
  const nc = await connect({ servers: server.url });
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  await js.publish(
    Subjects.envelopeUpdated("alpha"),
    JSON.stringify({
      fund_id: "alpha",
      version: 1,
      capital: "1000000000",
      allowed_brokers: ["paper"],
      allowed_order_types: ["LIMIT"],
    }),
  );
  const now = new Date().toISOString();
  await js.publish(
    Subjects.quote("AAPL"),
    JSON.stringify({ symbol: "AAPL", bid: "99.99", ask: "100.01", timestamp: now }),
  );
  const child = spawn(process.execPath, ["--input-type=module", "-e", GENERATOR, server.url], {
    cwd: process.cwd(),
    stdio: ["ignore", "pipe", "inherit"],
  });
  cleanup.push(
    () => child.kill(),
    () => server.kill(),
  );
  await new Promise<void>((r) => child.stdout.once("data", () => r()));

  async function block(n: number): Promise<{ cpuUs: number; decisions: number; wallMs: number }> {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await nc.request("measure.go", JSON.stringify({ n, inflight: INFLIGHT }), { timeout: 600_000 });
    // until the follower has applied everything the journal holds
    const last = (await jsm.streams.info("RISK_DECISIONS")).state.last_seq;
    while (engine.observe.cursor("RISK_DECISIONS") < last) await new Promise((r) => setTimeout(r, 2));
    const c = process.cpuUsage(c0);
    return {
      cpuUs: c.user + c.system,
      decisions: n, // every check is answered with a decision (and journaled)
      wallMs: performance.now() - t0,
    };
  }

  await block(Math.min(BLOCK, 2000)); // warm-up (JIT, consumer, lanes)
  const samples: Record<ReadBack, number[]> = { skip: [], apply: [] };
  for (let r = 0; r < ROUNDS; r++) {
    const order: ReadBack[] = r % 2 === 0 ? ["apply", "skip"] : ["skip", "apply"];
    for (const m of order) {
      mode = m;
      const b = await block(BLOCK);
      samples[m].push(b.cpuUs / Math.max(1, b.decisions));
      process.stderr.write(
        `round ${r} ${m}: ${b.decisions} decisions, ${(b.cpuUs / 1000).toFixed(0)} ms CPU, ` +
          `${(b.cpuUs / Math.max(1, b.decisions)).toFixed(1)} µs/decision, wall ${b.wallMs.toFixed(0)} ms\n`,
      );
    }
  }
  const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const pairRatios = samples.skip.map((s, i) => s / samples.apply[i]!);
  const out = {
    method:
      "engine in-process CPU (process.cpuUsage user+system) per decision; generator in a child process; A/B alternated",
    rounds: ROUNDS,
    block: BLOCK,
    inflight: INFLIGHT,
    us_per_decision_median: { apply: med(samples.apply), skip: med(samples.skip) },
    ratio_skip_over_apply_median: med(pairRatios),
    ratio_min_max: [Math.min(...pairRatios), Math.max(...pairRatios)],
    samples,
  };
  process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
  child.kill();
  await nc.close();
  await engine.close();
  await server.stop();
  rmSync(storeDir, { recursive: true, force: true });
  rmSync(stateDir, { recursive: true, force: true });
}

await main();
