/**
 * The load generator's sending side, a worker thread with its own NATS connection. It keeps a fixed
 * schedule: request i is due at start + i / rate, whatever happened to earlier ones (open loop).
 * Coarse waits use a timer; the last stretch sleeps on a futex (Atomics.wait), so the schedule is
 * kept to tens of microseconds without spinning a core. Each send time is written into shared
 * memory; the main thread, which receives the replies, turns it into the schedule-lag histogram.
 * It wakes at most every QUANTUM_MS and sends whatever came due in one batch (one socket write), so
 * at 5 000/s it costs ≈ 2 000 wake-ups per second rather than 5 000.
 */
import { connect } from "@nats-io/transport-node";
import { parentPort, workerData } from "node:worker_threads";
import { order } from "./book.js";
import { nowMs } from "./util.js";

export interface SendCommand {
  subject: string;
  /** Requests per second. */
  rate: number;
  count: number;
  /** When request 0 is due (nowMs clock). */
  startMs: number;
  /** Replies go to `<inbox>.<i>`. */
  inbox: string;
  /** Order ids are `<prefix>-<i>`. */
  prefix: string;
  /** Float64Array(count): when request i was handed to the socket (nowMs clock). */
  sent: SharedArrayBuffer;
  /** Int32Array(1): the receiver sets it to 1 to stop the run early (a hopeless overload). */
  abort: SharedArrayBuffer;
}

export interface SendReport {
  sent: number;
  firstMs: number;
  lastMs: number;
}

const port = parentPort;
if (!port) throw new Error("sender.js runs as a worker thread");
const { url } = workerData as { url: string };
const nc = await connect({ servers: url, name: "bench:sender", maxReconnectAttempts: -1 });
const futex = new Int32Array(new SharedArrayBuffer(4));
/** The shortest gap between two wake-ups of the sender, ms. */
const QUANTUM_MS = 0.5;

function run(c: SendCommand): Promise<SendReport> {
  const period = 1000 / c.rate;
  const sent = new Float64Array(c.sent);
  const abort = new Int32Array(c.abort);
  const make = (i: number) => order(c.prefix, i);
  return new Promise((done, fail) => {
    let i = 0;
    let woke = -Infinity;
    const tick = (): void => {
      const t = nowMs();
      const before = i;
      try {
        while (i < c.count && c.startMs + i * period <= nowMs()) {
          const body = JSON.stringify(make(i));
          nc.publish(c.subject, body, { reply: `${c.inbox}.${i}` });
          sent[i] = nowMs();
          i++;
        }
      } catch (err) {
        fail(err instanceof Error ? err : new Error(String(err)));
        return;
      }
      if (i > before) woke = t;
      if (i >= c.count || Atomics.load(abort, 0) === 1) {
        nc.flush().then(
          () => done({ sent: i, firstMs: sent[0] ?? 0, lastMs: sent[i - 1] ?? 0 }),
          (err: unknown) => fail(err instanceof Error ? err : new Error(String(err))),
        );
        return;
      }
      // Batch: wake at most once per QUANTUM_MS, so at high rates each wake-up sends the few requests
      // that came due meanwhile in one socket write (the generator must cost little next to what it
      // measures); a request is never sent early, at most QUANTUM_MS late (see the schedule lag).
      const wait = Math.max(c.startMs + i * period, woke + QUANTUM_MS) - nowMs();
      if (wait > 3) {
        setTimeout(tick, wait - 2);
      } else {
        // Return to the loop first: nats.js writes the batch to the socket in a microtask.
        setImmediate(() => {
          const left = Math.max(c.startMs + i * period, woke + QUANTUM_MS) - nowMs();
          if (left > 0.01) Atomics.wait(futex, 0, 0, left);
          tick();
        });
      }
    };
    tick();
  });
}

port.on("message", (c: SendCommand | "close") => {
  if (c === "close") {
    nc.close().then(
      () => port.close(),
      () => port.close(),
    );
    return;
  }
  run(c).then(
    (r) => port.postMessage({ ok: true, report: r }),
    (err: unknown) => port.postMessage({ ok: false, error: String(err) }),
  );
});
port.postMessage({ ready: true });
