/**
 * Quote publisher for the bus scenarios, in its own process: `rate` quotes per second to QUOTES,
 * cycling over the symbols, stamped with the current time so the engine's marks stay fresh.
 * `node dist/bench/quotes.js <url> <rate> <symbols>`; prints `ready`, and its counts on stderr when
 * stopped.
 *
 * The apparatus must cost little next to what it measures (issue 11): the quotes are published as
 * core NATS messages on subjects QUOTES captures (the stream stores them; no acknowledgement is
 * awaited per quote), a tick's quotes in one batch (nats.js writes a batch to the socket in one
 * write), bodies built from per-symbol templates rather than JSON.stringify. What the stream
 * stored is checked from its last sequence before and after, so a lost quote is still seen.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { Subjects } from "../contract/subjects.js";
import { quote, symbolId } from "./book.js";

const url = process.argv[2] ?? "nats://127.0.0.1:4222";
const rate = Number(process.argv[3] ?? 2000);
const symbols = Number(process.argv[4] ?? 1000);
const TICK_MS = 20;

const nc = await connect({ servers: url, name: "bench:quotes", maxReconnectAttempts: -1 });
const jsm = await jetstreamManager(nc);
const lastSeq = async (): Promise<number> => (await jsm.streams.info("QUOTES")).state.last_seq;
const seq0 = await lastSeq();

const subjects = Array.from({ length: symbols }, (_, s) => Subjects.quote(symbolId(s)));
/** Body of symbol s at tick variant v (0..2), split around the timestamp. */
const MARK = "@TS@";
const templates = Array.from({ length: symbols * 3 }, (_, k) => {
  const body = JSON.stringify(quote(Math.floor(k / 3), MARK, k % 3));
  const at = body.indexOf(MARK);
  return [body.slice(0, at), body.slice(at + MARK.length)] as const;
});
/** quote(s, ts, tick) depends on tick through (s + tick) % 3: the template of variant (tick % 3). */
const body = (s: number, tick: number, ts: string): string => {
  const t = templates[s * 3 + (tick % 3)]!;
  return t[0] + ts + t[1];
};

let published = 0;
let batches = 0;
const t0 = performance.now();
const timer = setInterval(() => {
  const due = Math.floor(((performance.now() - t0) / 1000) * rate);
  if (published >= due) return;
  const ts = new Date().toISOString();
  for (; published < due; published++) {
    const s = published % symbols;
    nc.publish(subjects[s]!, body(s, Math.floor(published / symbols), ts));
  }
  batches++;
}, TICK_MS);
process.stdout.write("ready\n");

const stop = (): void => {
  clearInterval(timer);
  const s = (performance.now() - t0) / 1000;
  const report = (stored: number | undefined): void => {
    const r = { published, stored, batches, seconds: +s.toFixed(1), per_s: Math.round(published / s) };
    process.stderr.write(`[quotes] ${JSON.stringify(r)}\n`);
  };
  nc.flush()
    .then(() => lastSeq())
    .then(
      (seq) => report(seq - seq0),
      () => report(undefined),
    )
    .then(() => nc.drain())
    .then(
      () => process.exit(0),
      () => process.exit(1),
    );
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
