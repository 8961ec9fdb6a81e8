/**
 * The decision journal, one writer lane per fund: every write on mts.v1.risk.decision.<fund> is
 * conditional on the subject's last sequence (`Nats-Expected-Last-Subject-Sequence`), so a write
 * succeeds only when no other engine wrote for the fund since the state it was decided on. One
 * write per fund is in flight at a time; decisions made meanwhile go out together as one message
 * when it is acknowledged (group commit: a JSON array, header `Mts-Batch: <n>`). An empty batch
 * with `Mts-Fence` is an ownership fence: a new owner's first write, which makes every write an
 * old owner prepared on older state fail.
 */
import { setTimeout as delay } from "node:timers/promises";
import type { DecisionRecord } from "../contract/records.js";
import { NO_FUND, Subjects } from "../contract/subjects.js";
import { toWire } from "../contract/wire.js";
import { type JsAck, JsPublishError, type JsPublisher } from "../bus/js-publisher.js";
import type { EngineState } from "../state/model.js";
import { type OwnDecisions, createOwnDecisions } from "../facts/decisions.js";

const MAX_BATCH = 256;
/** Well under the server's default max_payload (1 MiB). */
const MAX_BATCH_BYTES = 512 * 1024;
const FENCE_CATCH_UP_MS = 10_000;
/** A write whose acknowledgement timed out is sent again (same id) this many times before it fails. */
const TIMEOUT_RETRIES = 3;

/** A write this engine may no longer make: another engine owns (fenced) the fund. */
export class FencedError extends Error {
  readonly code = "FENCED";
  constructor(fund: string) {
    super(`fund ${fund} is fenced: another engine owns it`);
    this.name = "FencedError";
  }
}

export interface FundJournalOptions {
  publisher: JsPublisher;
  state: EngineState;
  /** False when this engine is fenced for the fund (checked before every write). */
  mayWrite?: (fund: string) => boolean;
  /** The engine's own records from sent to recognised (one is created when absent). */
  own?: OwnDecisions;
  /**
   * The `Nats-Msg-Id` of the journal message stored at `seq` (undefined: none or unknown). Tells
   * whether a write whose acknowledgement timed out was stored after all, when its retry then
   * fails its own condition on that very message.
   */
  storedMsgId?: (seq: number) => Promise<string | undefined>;
}

export interface FundJournal {
  /**
   * Journals a decision record (conditional on its fund's last sequence, except the no-fund `_`).
   * `sent`: its bytes are on the connection (or the write was given up); `ack`: the stream has it.
   */
  write(record: DecisionRecord): { sent: Promise<void>; ack: Promise<JsAck> };
  /** An empty batch carrying `headers`, written once this engine has applied the subject's last message. */
  fence(fund: string, msgId: string, headers: Record<string, string>): Promise<JsAck>;
  /** Writes queued or in flight (for one fund, or all). */
  pending(fund?: string): number;
  /** What it wrote, until the follower recognises it. */
  readonly own: OwnDecisions;
}

interface Item {
  text: string;
  record: DecisionRecord | undefined; // undefined: a fence
  headers?: Record<string, string> | undefined;
  msgId: string;
  cursor: number; // RISK_DECISIONS applied when it was decided
  seen: number; // the fund's last journal sequence reflected in the state it was decided on
  resolve: (a: JsAck) => void;
  reject: (e: Error) => void;
  sent?: (() => void) | undefined;
}

interface Lane {
  queue: Item[];
  inFlight: number;
  lastAck: number | undefined;
}

export function createFundJournal(o: FundJournalOptions): FundJournal {
  const { state, publisher } = o;
  const own = o.own ?? createOwnDecisions({ state });
  const lanes = new Map<string, Lane>();
  const applied = () => state.cursors.get("RISK_DECISIONS") ?? 0;

  function lane(fund: string): Lane {
    let l = lanes.get(fund);
    if (!l) lanes.set(fund, (l = { queue: [], inFlight: 0, lastAck: undefined }));
    return l;
  }

  function take(l: Lane): Item[] {
    const first = l.queue[0]!;
    if (first.record === undefined) return l.queue.splice(0, 1);
    let n = 0;
    let bytes = 0;
    while (n < l.queue.length && n < MAX_BATCH) {
      const it = l.queue[n]!;
      if (it.record === undefined || (n > 0 && bytes + it.text.length > MAX_BATCH_BYTES)) break;
      bytes += it.text.length + 1;
      n++;
    }
    return l.queue.splice(0, n);
  }

  function pump(fund: string, l: Lane): void {
    if (l.inFlight > 0 || l.queue.length === 0) return;
    if (o.mayWrite && !o.mayWrite(fund)) {
      const err = new FencedError(fund);
      for (const it of l.queue.splice(0)) {
        it.sent?.();
        it.reject(err);
      }
      return;
    }
    const batch = take(l);
    const fence = batch[0]!.record === undefined;
    const records = batch.map((b) => b.record!);
    const body = fence
      ? "[]"
      : batch.length === 1
        ? batch[0]!.text
        : `[${batch.map((b) => b.text).join(",")}]`;
    if (!fence) own.pending(body, records);
    const headers = fence
      ? batch[0]!.headers
      : batch.length > 1
        ? { "Mts-Batch": String(batch.length) }
        : undefined;
    l.inFlight = batch.length;
    // decided on state reflecting the subject up to `seen` (and this engine's own writes since)
    const expected = Math.max(l.lastAck ?? 0, Math.min(...batch.map((b) => b.seen)));
    void send(fund, l, batch, body, headers, expected, fence, 0);
  }

  async function send(
    fund: string,
    l: Lane,
    batch: Item[],
    body: string,
    headers: Record<string, string> | undefined,
    expected: number,
    fence: boolean,
    attempt: number,
  ): Promise<void> {
    const subject = Subjects.decision(fund);
    try {
      const pending = publisher.publish(subject, body, batch[0]!.msgId, {
        expectedLastSubjectSeq: expected,
        ...(headers ? { headers } : {}),
      });
      for (const it of batch) it.sent?.();
      const got = await pending;
      // a duplicate of this very write: an earlier attempt that timed out had landed
      const ack = attempt > 0 && got.duplicate ? { ...got, duplicate: false } : got;
      // a first-attempt duplicate is another message with this id: that sequence is not ours
      if (!fence && !ack.duplicate) own.acked(body, ack.seq);
      l.lastAck = ack.seq;
      l.inFlight = 0;
      for (const it of batch) it.resolve(ack);
    } catch (err) {
      if (err instanceof JsPublishError && err.code === "JOURNAL_TIMEOUT" && attempt < TIMEOUT_RETRIES) {
        // Stored or not, unknown: the same message again (same id, same condition) tells, since
        // the stream answers a duplicate with the sequence it stored it at.
        return send(fund, l, batch, body, headers, expected, fence, attempt + 1);
      }
      const last =
        err instanceof JsPublishError && err.code === "JOURNAL_WRONG_LAST_SEQ" ? err.lastSeq : undefined;
      if (last !== undefined && attempt > 0 && (await storedHere(last, batch[0]!.msgId))) {
        // An earlier attempt (its acknowledgement lost, e.g. to a leader change) stored this very
        // message, and the retry fails its condition on it: written, at `last`. Taken for a
        // definite failure, the approvals would be undone and the OMS's retry approved a second time.
        if (!fence) own.acked(body, last);
        l.lastAck = last;
        l.inFlight = 0;
        for (const it of batch) it.resolve({ stream: "RISK_DECISIONS", seq: last, duplicate: false });
        pump(fund, l);
        return;
      }
      if (last !== undefined && attempt < 50 && (!o.mayWrite || o.mayWrite(fund))) {
        // Another message is on the subject. Written again on the subject's last sequence only when
        // every record of the batch was decided with that message applied; a fence waits for it.
        const decidedOn = Math.min(...batch.map((b) => b.cursor));
        if (last <= decidedOn || (fence && (await caughtUpTo(last)))) {
          return send(fund, l, batch, body, headers, last, fence, attempt + 1);
        }
      }
      l.lastAck = undefined;
      l.inFlight = 0;
      const e = err instanceof Error ? err : new Error(String(err));
      for (const it of batch) {
        it.sent?.();
        it.reject(e);
      }
    }
    pump(fund, l);
  }

  async function storedHere(seq: number, msgId: string): Promise<boolean> {
    if (!o.storedMsgId) return false;
    try {
      return (await o.storedMsgId(seq)) === msgId;
    } catch {
      return false; // unknown: treated as before (not written)
    }
  }

  async function caughtUpTo(seq: number): Promise<boolean> {
    const deadline = performance.now() + FENCE_CATCH_UP_MS;
    while (applied() < seq) {
      if (performance.now() > deadline) return false;
      await delay(10);
    }
    return true;
  }

  function enqueue(
    fund: string,
    it: Omit<Item, "resolve" | "reject" | "seen" | "sent">,
  ): { sent: Promise<void>; ack: Promise<JsAck> } {
    const l = lane(fund);
    const seen = Math.max(l.lastAck ?? 0, state.decisionSeq.get(fund) ?? 0);
    let sent!: () => void;
    const sentP = new Promise<void>((r) => (sent = r));
    const ack = new Promise<JsAck>((resolve, reject) => {
      l.queue.push({ ...it, seen, resolve, reject, sent });
    });
    pump(fund, l);
    return { sent: sentP, ack };
  }

  return {
    write(record) {
      const text = JSON.stringify(toWire(record));
      if (record.fund_id === NO_FUND) {
        own.pending(text, record);
        const ack = publisher.publish(Subjects.decision(NO_FUND), text, record.decision_id);
        return {
          sent: Promise.resolve(),
          ack: ack.then((a) => {
            if (!a.duplicate) own.acked(text, a.seq);
            return a;
          }),
        };
      }
      return enqueue(record.fund_id, { text, record, msgId: record.decision_id, cursor: applied() });
    },
    fence(fund, msgId, headers) {
      return enqueue(fund, {
        text: "[]",
        record: undefined,
        headers: { "Mts-Batch": "0", ...headers },
        msgId,
        cursor: applied(),
      }).ack;
    },
    pending(fund) {
      if (fund !== undefined) {
        const l = lanes.get(fund);
        return l ? l.queue.length + l.inFlight : 0;
      }
      let n = 0;
      for (const l of lanes.values()) n += l.queue.length + l.inFlight;
      return n;
    },
    own,
  };
}
