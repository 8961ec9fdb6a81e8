/**
 * Quick throughput probe (closed loop): checks per second through the bus against an engine in
 * its own process, and against a no-op responder on the same server for comparison.
 * `node dist/bench/throughput.js [seconds] [concurrency]`. The full benchmark is `npm run bench`.
 */
import { jetstream } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startNatsServer } from "../bus/nats-server.js";
import { Subjects } from "../contract/subjects.js";

const seconds = Number(process.argv[2] ?? 10);
const concurrency = Number(process.argv[3] ?? 64);

async function loop(nc: NatsConnection, subject: string, make: (i: number) => string) {
  let n = 0;
  let errors = 0;
  const end = performance.now() + seconds * 1000;
  const worker = async (w: number) => {
    for (let i = w; performance.now() < end; i += concurrency) {
      try {
        await nc.request(subject, make(i), { timeout: 5000 });
        n++;
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  return { per_s: Math.round(n / seconds), errors };
}

const server = await startNatsServer({ port: 0, storeDir: mkdtempSync(join(tmpdir(), "mts-tp-")) });
const nc = await connect({ servers: server.url, maxReconnectAttempts: -1 });
const order = (i: number) =>
  JSON.stringify({
    order_id: `o${i}`,
    idempotency_key: `k${i}`,
    fund_id: `f${i % 50}`,
    broker: "paper",
    symbol: `S${i % 1000}`,
    side: i % 2 ? "BUY" : "SELL",
    order_type: "LIMIT",
    quantity: "1",
    limit_price: "100",
  });

// baseline: a no-op responder
const fixed = JSON.stringify({
  order_id: "x",
  approved: true,
  rejecting_gate: "",
  rejection_code: "",
  reason: "",
  details: {},
  envelope_id: "",
  decided_at: "",
});
const sub = nc.subscribe("bench.noop", {
  callback: (_e, m) => {
    m.respond(fixed);
  },
});
const baseline = await loop(nc, "bench.noop", order);
sub.unsubscribe();

const child = spawn(
  process.execPath,
  [
    new URL("../../bin/mts-risk.js", import.meta.url).pathname,
    "serve",
    "--nats-url",
    server.url,
    "--state-dir",
    mkdtempSync(join(tmpdir(), "mts-tp-state-")),
  ],
  { stdio: "ignore" },
);
for (;;) {
  try {
    const s = (await nc.request(Subjects.status, '{"digest":false}', { timeout: 1000 })).json<{
      ready: boolean;
    }>();
    if (s.ready) break;
  } catch {
    /* not up yet */
  }
}
const js = jetstream(nc);
for (let f = 0; f < 50; f++) {
  await js.publish(
    Subjects.envelopeUpdated(`f${f}`),
    JSON.stringify({
      fund_id: `f${f}`,
      version: 1,
      capital: "100000000",
      allowed_brokers: ["paper"],
      allowed_order_types: ["LIMIT"],
      max_position_pct: "0.5",
      enable_shorting: true,
    }),
  );
}
while (
  (await nc.request(Subjects.envelopeGet, JSON.stringify({ fund_id: "f49" }))).json<{ error?: unknown }>()
    .error
) {
  /* wait until the engine has the envelopes */
}
const engine = await loop(nc, Subjects.check, order);
child.kill("SIGTERM");
await nc.close();
await server.stop();
console.log(
  JSON.stringify({
    seconds,
    concurrency,
    baseline,
    engine,
    ratio: +(engine.per_s / baseline.per_s).toFixed(2),
  }),
);
