/**
 * A stream followed by paced pulls rather than an ordered consumer's standing one (issue 11).
 *
 * Why: the NATS client's cost of a message delivered live, one socket read per few messages, is
 * ≈ 3× its cost in a bulk read (a bare process following QUOTES at 2 000 quotes/s: 6.3–6.7 % of a
 * core with nats.js's ordered consumer, 2.1–2.3 % with a pull every 50 ms). The quote stream is the
 * engine's largest flow, so it is the one followed this way.
 *
 * How: an ephemeral consumer (no acks, memory storage, one replica, from the cursor) and one pull
 * in flight at a time, its replies on an inbox subject of its own:
 * - *waiting* (nothing flowing): a pull for one message with an expiry, answered the moment a
 *   message is stored, so the first quote after a quiet spell is folded at once as before;
 * - *draining*: right after that message, a `no_wait` pull for everything stored meanwhile; while
 *   drains find messages, the next starts `paceMs` after the previous one started (at once when a
 *   drain filled its batch): a busy stream, steady or bursty, is read in a few large socket reads,
 *   its marks at most `paceMs` older than an ordered consumer's;
 * - a drain that found nothing goes back to waiting.
 * The lane stops with its connection (closed) and when its inbox subscription is refused.
 * Order and completeness as an ordered consumer's: a consumer sequence that skips, a pull answered
 * with an error status (409 consumer deleted or leadership change, 503 no responders) or not
 * answered within its deadline recreates the consumer from the last sequence delivered; a message
 * at or below it is never delivered twice.
 */
import { AckPolicy, DeliverPolicy, type JetStreamManager } from "@nats-io/jetstream";
import { type Msg, type MsgHdrs, type NatsConnection, createInbox, nanos } from "@nats-io/transport-node";
import { setTimeout as delay } from "node:timers/promises";
import { retryTransient } from "../bus/transient.js";
import type { Logger } from "../obs/log.js";

/** What the follower needs of a delivered message (a nats.js JsMsg has all of it). */
export interface Delivered {
  readonly subject: string;
  readonly data: Uint8Array;
  readonly headers?: MsgHdrs | undefined;
  /** The stream sequence. */
  readonly seq: number;
  readonly info: { readonly timestampNanos: number; readonly pending: number };
}

export interface PacedLaneOptions {
  nc: NatsConnection;
  jsm: JetStreamManager;
  stream: string;
  /** The last stream sequence already folded: the lane starts after it. */
  cursor: () => number;
  /** A busy stream's drains start at most once per this many ms (> 0). */
  paceMs: number;
  onMessage: (m: Delivered) => void;
  log: Logger;
  inboxPrefix?: string | undefined;
  /** How long a pull may go unanswered before the consumer is recreated (default 5 s). */
  stallMs?: number;
  /** A waiting pull's expiry (default 5 s). */
  waitMs?: number;
}

export interface PacedLane {
  /** The consumer the lane reads from now ("" while it is recreated). */
  consumer(): string;
  /** Pull requests sent so far. */
  pulls(): number;
  /** Closed: by `close()`, with its connection, or after its inbox was refused. */
  closed(): boolean;
  /** Drops the consumer and recreates it from the last sequence delivered (a test's fault). */
  reset(reason: string): void;
  close(): Promise<void>;
}

/** A consumer's start: the message after `seq` (every message when nothing was folded yet). */
export function startAfter(seq: number): { deliver_policy: DeliverPolicy; opt_start_seq?: number } {
  return seq > 0
    ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: seq + 1 }
    : { deliver_policy: DeliverPolicy.All };
}

/** Messages a drain asks for. */
const BATCH = 1000;
/** An idle consumer is removed by the server after this long (the lane's own is deleted on close). */
const INACTIVE_MS = 60_000;
const CREATE_DEADLINE_MS = 30_000;

interface Pull {
  id: number;
  draining: boolean;
  batch: number;
  got: number;
  started: number;
}

/**
 * The delivery reply subject's fields: `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.
 * <ts>.<pending>` (9 tokens) or with domain and account hash after `ACK` (12).
 */
export function parseReply(reply: string): {
  consumer: string;
  sseq: number;
  cseq: number;
  ts: number;
  pending: number;
} {
  const t = reply.split(".");
  const at = t.length === 9 ? 2 : 4;
  return {
    consumer: t[at + 1] ?? "",
    sseq: Number(t[at + 3]),
    cseq: Number(t[at + 4]),
    ts: Number(t[at + 5]),
    pending: Number(t[at + 6]),
  };
}

export async function openPacedLane(o: PacedLaneOptions): Promise<PacedLane> {
  const log = o.log.child({ module: "follower", stream: o.stream, paced_ms: o.paceMs });
  const stallMs = o.stallMs ?? 5_000;
  const waitMs = o.waitMs ?? 5_000;
  const base = createInbox(o.inboxPrefix);
  let closed = false;
  let consumer = "";
  let lastCseq = 0;
  let lastSseq = o.cursor();
  let pull: Pull | undefined;
  let pulls = 0;
  let watchdog: NodeJS.Timeout | undefined;
  let paced: NodeJS.Timeout | undefined;
  let resetting: Promise<void> | undefined;
  let lastReset = -Infinity;

  async function create(): Promise<void> {
    const start = Math.max(lastSseq, o.cursor());
    const info = await retryTransient(
      () =>
        o.jsm.consumers.add(o.stream, {
          ack_policy: AckPolicy.None,
          ...startAfter(start),
          mem_storage: true,
          num_replicas: 1,
          inactive_threshold: nanos(INACTIVE_MS),
        }),
      {
        forMs: CREATE_DEADLINE_MS,
        onRetry: (err, attempt) => log.warn({ err, attempt }, "consumer create failed (transient); retrying"),
      },
    );
    consumer = info.name;
    lastCseq = 0;
    lastSseq = start;
  }

  function clearTimers(): void {
    if (watchdog) clearTimeout(watchdog);
    if (paced) clearTimeout(paced);
    watchdog = paced = undefined;
  }

  function issue(draining: boolean): void {
    paced = undefined;
    if (closed || resetting || !consumer) return;
    if (o.nc.isClosed()) return void close();
    const id = ++pulls;
    const batch = draining ? BATCH : 1;
    pull = { id, draining, batch, got: 0, started: performance.now() };
    const req = draining ? { batch, no_wait: true } : { batch, expires: nanos(waitMs) };
    try {
      o.nc.publish(`$JS.API.CONSUMER.MSG.NEXT.${o.stream}.${consumer}`, JSON.stringify(req), {
        reply: `${base}.${id}`,
      });
    } catch (err) {
      // closed or draining under it (a timer's callback must not throw)
      pull = undefined;
      return o.nc.isClosed() ? void close() : reset(`pull not sent: ${String(err)}`);
    }
    arm(draining ? stallMs : waitMs + stallMs);
  }

  /** The next drain `paceMs` after `from` (the previous pull's start), at once if that has passed. */
  function drainAfter(from: number): void {
    const wait = from + o.paceMs - performance.now();
    if (wait <= 0) return issue(true);
    paced = setTimeout(() => issue(true), wait);
  }

  function arm(ms: number): void {
    if (watchdog) clearTimeout(watchdog);
    watchdog = setTimeout(() => reset("pull unanswered"), ms);
  }

  function endPull(p: Pull): void {
    pull = undefined;
    clearTimers(); // the pull's watchdog (no pace timer runs while a pull is in flight)
    // a waiting pull's message is folded at once, and so is whatever was stored meanwhile (a drain
    // at once): a quote or two after a quiet spell is not held back by the pace
    if (!p.draining) return issue(p.got > 0);
    if (p.got >= p.batch) return issue(true); // more pending: at once
    if (p.got === 0) return issue(false); // quiet again: wait for the next message
    drainAfter(p.started);
  }

  function reset(reason: string): void {
    if (closed || resetting) return;
    clearTimers();
    pull = undefined;
    const old = consumer;
    consumer = "";
    log.warn({ reason, consumer: old, after: lastSseq }, "paced consumer recreated");
    if (old) void o.jsm.consumers.delete(o.stream, old).catch(() => undefined);
    const since = performance.now() - lastReset;
    lastReset = performance.now();
    resetting = (async () => {
      // a fault that persists (say a permission) must not turn into a loop of creates
      if (since < 1000) await delay(1000 - since);
      for (let attempt = 1; !closed && !o.nc.isClosed(); attempt++) {
        try {
          await create();
          return;
        } catch (err) {
          log.error({ err, attempt }, "paced consumer create failed; retrying");
          await delay(Math.min(250 * attempt, 2000));
        }
      }
    })()
      .catch(() => undefined)
      .finally(() => {
        resetting = undefined;
        issue(false);
      });
  }

  function onMsg(m: Msg): void {
    if (closed) return;
    const p = pull;
    if (!m.reply) {
      // a status, on its pull's own reply subject: 404 (nothing pending) and 408 (expired) end the
      // pull; 100 is a heartbeat
      if (!p || m.subject !== `${base}.${p.id}`) return;
      const code = m.headers?.code ?? 0;
      if (code === 404 || code === 408) return endPull(p);
      if (code === 100) return;
      return reset(`pull answered ${code} ${m.headers?.description ?? ""}`.trim());
    }
    const r = parseReply(m.reply);
    if (r.consumer !== consumer) return; // a consumer replaced since
    if (r.cseq !== lastCseq + 1) return reset(`consumer sequence ${r.cseq} after ${lastCseq}`);
    lastCseq = r.cseq;
    if (p) p.got++;
    try {
      if (r.sseq > lastSseq) {
        lastSseq = r.sseq;
        o.onMessage({
          subject: m.subject, // a JetStream delivery carries the stored message's own subject
          data: m.data,
          headers: m.headers,
          seq: r.sseq,
          info: { timestampNanos: r.ts, pending: r.pending },
        });
      }
    } finally {
      if (p && p.got >= p.batch && pull === p) endPull(p);
    }
  }

  let failed: Error | undefined;
  const sub = o.nc.subscribe(`${base}.*`, {
    callback: (err, m) => {
      if (!err) return onMsg(m);
      // nats-core reports a subscription's error (a permission) and closes it: the lane is dead.
      // Stopped, not recreated: the staleness monitor alerts and reopens the stream.
      failed ??= err;
      log.error({ err }, "paced lane's inbox refused; the lane stops");
      void close();
    },
  });
  let closing: Promise<void> | undefined;
  function close(): Promise<void> {
    closing ??= (async () => {
      closed = true;
      clearTimers();
      pull = undefined;
      sub.unsubscribe();
      await resetting;
      if (consumer && !o.nc.isClosed()) {
        await o.jsm.consumers.delete(o.stream, consumer).catch(() => undefined);
      }
    })();
    return closing;
  }
  void o.nc.closed().then(() => close());
  try {
    await create();
    if (failed) throw failed;
  } catch (err) {
    await close();
    if (consumer) await o.jsm.consumers.delete(o.stream, consumer).catch(() => undefined);
    throw err;
  }
  issue(false);
  return {
    consumer: () => consumer,
    pulls: () => pulls,
    closed: () => closed,
    reset,
    close,
  };
}
