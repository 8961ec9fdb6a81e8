/**
 * The baselines, in their own process on the same nats-server as the engine:
 *  - no-op: replies a fixed RiskDecision (a real one captured from the engine) and does nothing else;
 *  - journaled: also publishes a decision record of the engine's size (a real one captured from
 *    RISK_DECISIONS) to a file-backed JetStream stream configured like RISK_DECISIONS, with a unique
 *    Nats-Msg-Id, and waits for the acknowledgement before replying, as the engine does for
 *    approvals. Like the engine with its 10 % rejections, every 10th request is journaled without
 *    waiting. Nothing else: no parsing, no state.
 * `node dist/bench/responders.js '<json options>'`; prints `ready` on stdout once subscribed.
 */
import { jetstream, jetstreamManager, RetentionPolicy, StorageType } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { randomBytes } from "node:crypto";

export interface ResponderOptions {
  url: string;
  decision: string;
  record: string;
  noopSubject: string;
  journalSubject: string;
}

export const JOURNAL_STREAM = "BENCH_JOURNAL";
export const JOURNAL_PREFIX = "bench.v1.risk.journal";
const NS = 1_000_000_000;

const o = JSON.parse(process.argv[2] ?? "{}") as ResponderOptions;
const nc = await connect({ servers: o.url, name: "bench:baselines", maxReconnectAttempts: -1 });
const jsm = await jetstreamManager(nc);
await jsm.streams
  .add({
    name: JOURNAL_STREAM,
    subjects: [`${JOURNAL_PREFIX}.>`],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: 7 * 86_400 * NS,
    duplicate_window: 120 * NS,
    num_replicas: 1,
  })
  .catch(() => undefined); // exists already
const js = jetstream(nc);
const te = new TextEncoder();
const decision = te.encode(o.decision);
const record = te.encode(o.record);
const failed = te.encode(
  JSON.stringify({ ...(JSON.parse(o.decision) as object), approved: false, rejecting_gate: "engine" }),
);
const idBase = randomBytes(6).toString("base64url");
let n = 0;
let journalFailures = 0;

nc.subscribe(o.noopSubject, { queue: "bench", callback: (_err, m) => void m.respond(decision) });
nc.subscribe(o.journalSubject, {
  queue: "bench",
  callback: (_err, m) => {
    const k = ++n;
    const ack = js.publish(`${JOURNAL_PREFIX}.f${k % 50}`, record, {
      msgID: `${idBase}-${k}`,
      timeout: 2000,
    });
    if (k % 10 === 0) {
      m.respond(decision);
      ack.catch(() => void journalFailures++);
      return;
    }
    ack.then(
      () => void m.respond(decision),
      () => {
        journalFailures++;
        m.respond(failed);
      },
    );
  },
});
await nc.flush();
process.stdout.write("ready\n");

const stop = (): void => {
  process.stderr.write(`[baselines] journaled ${n}, journal failures ${journalFailures}\n`);
  nc.drain().then(
    () => process.exit(0),
    () => process.exit(1),
  );
};
process.once("SIGTERM", stop);
process.once("SIGINT", stop);
