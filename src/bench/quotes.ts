/**
 * Quote publisher for the bus scenarios, in its own process: `rate` quotes per second to QUOTES
 * (JetStream, acknowledged), cycling over the symbols, stamped with the current time so the
 * engine's marks stay fresh. `node dist/bench/quotes.js <url> <rate> <symbols>`; prints `ready`,
 * and its counts on stderr when stopped.
 */
import { jetstream } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Subjects } from "../contract/subjects.js";
import { quote, symbolId } from "./book.js";

const url = process.argv[2] ?? "nats://127.0.0.1:4222";
const rate = Number(process.argv[3] ?? 2000);
const symbols = Number(process.argv[4] ?? 1000);
const MAX_IN_FLIGHT = 4000;
const TICK_MS = 10;

const nc = await connect({ servers: url, name: "bench:quotes", maxReconnectAttempts: -1 });
const js = jetstream(nc);
let published = 0;
let acked = 0;
let failed = 0;
let skipped = 0;
let inFlight = 0;
const t0 = performance.now();

const timer = setInterval(() => {
  const due = Math.floor(((performance.now() - t0) / 1000) * rate);
  const ts = new Date().toISOString();
  while (published + skipped < due) {
    const k = published + skipped;
    if (inFlight >= MAX_IN_FLIGHT) {
      skipped++;
      continue;
    }
    const s = k % symbols;
    inFlight++;
    published++;
    js.publish(Subjects.quote(symbolId(s)), JSON.stringify(quote(s, ts, Math.floor(k / symbols)))).then(
      () => {
        inFlight--;
        acked++;
      },
      () => {
        inFlight--;
        failed++;
      },
    );
  }
}, TICK_MS);
process.stdout.write("ready\n");

const stop = (): void => {
  clearInterval(timer);
  const s = (performance.now() - t0) / 1000;
  process.stderr.write(
    `[quotes] ${JSON.stringify({ published, acked, failed, skipped, seconds: +s.toFixed(1), per_s: Math.round(acked / s) })}\n`,
  );
  nc.drain().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
