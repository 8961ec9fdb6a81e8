/**
 * The check responder on mts.v1.risk.check and mts.v1.risk.check.<fund_id> (queue group
 * `riskengine`), JSON or protobuf by Content-Type. Every decision is journaled to RISK_DECISIONS and
 * acknowledged by the server before the reply, so a crash right after replying cannot free the
 * headroom an approval reserved, and an answered rejection is the one a retry replays.
 */
import { setTimeout as delay } from "node:timers/promises";
import {
  headers as natsHeaders,
  type Msg,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";
import {
  JSON_CONTENT_TYPE,
  PROTOBUF_CONTENT_TYPE,
  PROTOBUF_CONTENT_TYPE_ALT,
  decodeOrderProto,
  encodeDecisionProto,
  isProtobufContentType,
  protobufContentTypeOf,
} from "../contract/codec.js";
import { ORDER_NAMES, type RiskDecision } from "../contract/schemas.js";
import { QUEUE_GROUP, Subjects, checkFundOf } from "../contract/subjects.js";
import type { Logger } from "../obs/log.js";
import type { JsAck } from "../bus/js-publisher.js";
import { idempotencyKeyOf } from "../gates/idempotency.js";
import type { Decider, Evaluation } from "./decide.js";
import { revokeLive } from "../state/projections/decisions.js";
import { key2, type EngineState, type IdemRecord } from "../state/model.js";
import { NO_FUND } from "../contract/subjects.js";
import { FencedError, type FundJournal } from "./fund-journal.js";
import { FORWARDED_SUBJECT_HEADER, type Forwarder } from "./forward.js";
import { JsonDuplicateKeyError, parseOrderJson } from "../contract/json-strict.js";

export const MAX_ORDER_BYTES = 64 * 1024;
/**
 * How long an approval whose journal write timed out is re-published (same Nats-Msg-Id, so the
 * stream keeps one copy): well inside RISK_DECISIONS' 120 s duplicate window.
 */
const JOURNAL_RETRY_MS = 60_000;

export interface CheckServiceOptions {
  nc: NatsConnection;
  decider: Decider;
  state: EngineState;
  log: Logger;
  /** The decision journal (conditional writes, one lane per fund). */
  journal: FundJournal;
  queueGroup?: string;
  journalTimeoutMs?: number;
  /** How long an approval whose write timed out is published again before it is dropped. */
  journalRetryMs?: number;
  onDecision?: (e: Evaluation) => void;
  /**
   * Each reply sent: the evaluation, what the OMS was told (`unavailable`: an approval answered
   * STATE_NOT_READY because its journal write failed), and the time since the request arrived (s).
   */
  onAnswered?: (e: Evaluation, outcome: Outcome, seconds: number) => void;
  /** A check answered STATE_NOT_READY without a decision (no owner ready, a fault): its latency. */
  onNotReady?: (seconds: number) => void;
  /** Each acknowledged journal write and how long the stream took (s). */
  onJournaled?: (seconds: number) => void;
  /** The engine clock as an RFC 3339 string (replies the decider did not make). */
  clock: () => string;
  /** Several engines: checks of funds another engine owns are forwarded to it (or held). */
  forwarder?: Forwarder | undefined;
  /** This engine's own subject, where other engines forward checks (no queue group). */
  instanceSubject?: string | undefined;
  /** Subscribe only when `listen()` is called (once the engine can route checks). */
  deferListen?: boolean;
}

export type Outcome = "approved" | "rejected" | "replayed" | "unavailable";

export interface CheckService {
  /** Starts answering (subscribes); a no-op when already listening. */
  listen(): void;
  /**
   * Stops answering; waits up to `answerMs` (default: the journal timeout) for the checks under way
   * to be answered (several engines: a check held while its fund moves waits for the new owner).
   */
  stop(answerMs?: number): Promise<void>;
  stats(): { decisions: number; approved: number; journalFailures: number };
  /** Checks received and not answered yet (held, forwarded or waiting for their journal write). */
  inFlight(): number;
}

/** Fatal: a body that is not UTF-8 is "not valid JSON", never decoded with U+FFFD in place of its
 * bytes (two different orders would read the same, and the second be answered with the first's
 * decision). */
const td = new TextDecoder("utf-8", { fatal: true });
const te = new TextEncoder();

function orderIdOf(raw: unknown): string {
  const v = (raw as { order_id?: unknown } | null)?.order_id;
  return typeof v === "string" ? v.slice(0, 128) : "";
}

/** A write that certainly did not land: it may not be retried, and its effects are undone. */
function definite(err: unknown): boolean {
  if (err instanceof FencedError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return code === "JOURNAL_WRONG_LAST_SEQ";
}

/**
 * The stream answered and stored nothing (refused: full with discard new, no stream, a failed
 * condition, fenced). A timeout or a closed connection may have landed a write.
 */
function notStored(err: unknown): boolean {
  if (definite(err)) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return code === "JOURNAL_REJECTED" || code === "JOURNAL_NO_STREAM";
}

export function createCheckService(o: CheckServiceOptions): CheckService {
  const log = o.log.child({ module: "check" });
  const queue = o.queueGroup ?? QUEUE_GROUP;
  const journalTimeout = o.journalTimeoutMs ?? 2000;
  const protoHeaders = natsHeaders();
  protoHeaders.set("Content-Type", PROTOBUF_CONTENT_TYPE);
  const jsonHeaders = natsHeaders();
  jsonHeaders.set("Content-Type", JSON_CONTENT_TYPE);
  let decisions = 0;
  let approved = 0;
  let journalFailures = 0;
  let stopped = false;
  /**
   * Approvals whose journal write is not yet known durable, by fund + idempotency key: a replay
   * waits for them. Kept here, not on the record: a record flushed to the snapshot and evicted
   * from the store's cache is read back as a new object.
   */
  const notDurable = new Map<string, Promise<void>>();
  const untilDurable = (k: string, p: Promise<void>): void => {
    notDurable.set(k, p);
    const settled = () => {
      if (notDurable.get(k) === p) notDurable.delete(k);
    };
    p.then(settled, settled);
  };
  let inFlight = 0;

  // a protobuf reply names protobuf as the request did (application/protobuf or x-protobuf)
  const protoAltHeaders = natsHeaders();
  protoAltHeaders.set("Content-Type", PROTOBUF_CONTENT_TYPE_ALT);

  function reply(msg: Msg, proto: boolean, d: RiskDecision): void {
    if (!msg.reply) return;
    if (proto) {
      const alt = protobufContentTypeOf(msg.headers?.get("Content-Type")) === PROTOBUF_CONTENT_TYPE_ALT;
      msg.respond(encodeDecisionProto(d), { headers: alt ? protoAltHeaders : protoHeaders });
    } else msg.respond(te.encode(JSON.stringify(d)), { headers: jsonHeaders });
  }

  function journal(e: Evaluation): Promise<JsAck> {
    const written = o.journal.write(e.record).ack;
    const onJournaled = o.onJournaled;
    if (onJournaled) {
      const t0 = performance.now();
      written.then(
        () => onJournaled((performance.now() - t0) / 1000),
        () => undefined,
      );
    }
    return written;
  }

  const answered = (e: Evaluation, outcome: Outcome, t0: number): void =>
    o.onAnswered?.(e, outcome, (performance.now() - t0) / 1000);

  function journalUnavailable(msg: Msg, proto: boolean, d: RiskDecision): void {
    reply(msg, proto, {
      ...d,
      approved: false,
      rejecting_gate: "engine",
      rejection_code: "STATE_NOT_READY",
      reason: "decision journal unavailable",
      details: {},
    });
  }

  /**
   * The journal write of an approval timed out: whether it was stored is unknown. Publish the same
   * record again until the stream acknowledges it (a duplicate ack: the first write had landed).
   */
  async function rejournal(e: Evaluation, idemKey: string, failed: (err: unknown) => void): Promise<void> {
    const deadline = Date.now() + (o.journalRetryMs ?? JOURNAL_RETRY_MS);
    for (let attempt = 1; ; attempt++) {
      await delay(Math.min(100 * attempt, 1000));
      // Read back from the journal meanwhile (the follower found the lost write's bytes): it is
      // durable, and a second copy would be a second record of the same decision. Checked right
      // before the write: a write enqueued now is conditional on the state read so far, so a copy
      // stored earlier and not yet read back makes it fail (wrong last sequence), never land twice.
      if (journaledAlready(e, idemKey)) return;
      try {
        await journal(e);
        return;
      } catch (err) {
        failed(err);
        if (stopped || err instanceof FencedError || Date.now() >= deadline) throw err;
      }
    }
  }

  /** The idempotency record of this very decision, not yet read back from the journal. */
  function sameUnconfirmed(cur: IdemRecord | undefined, e: Evaluation): boolean {
    return (
      cur !== undefined &&
      !cur.confirmed &&
      cur.fingerprint === e.record.fingerprint &&
      cur.decision.decided_at === e.decision.decided_at
    );
  }

  function journaledAlready(e: Evaluation, idemKey: string): boolean {
    const cur = o.state.idem.get(idemKey);
    return (
      cur !== undefined &&
      cur.confirmed &&
      cur.fingerprint === e.record.fingerprint &&
      cur.decision.decided_at === e.decision.decided_at
    );
  }

  /**
   * `again`: routes the check once more (several engines). An approval whose write certainly did not
   * land because the fund's ownership moved (fenced, or another engine wrote first) is undone and
   * handed to the new owner rather than answered STATE_NOT_READY (a planned handover fails no check);
   * routed here again, it is answered STATE_NOT_READY (`stillHere`), not decided a second time.
   */
  async function deliver(
    msg: Msg,
    proto: boolean,
    e: Evaluation,
    t0: number,
    again?: (stillHere: () => void) => Promise<void>,
  ): Promise<void> {
    decisions++;
    o.onDecision?.(e);
    if (e.replayOf) {
      // The original must be durable before anyone is told about it again.
      const durable = notDurable.get(key2(e.record.fund_id, e.replayOf.key));
      if (durable) {
        const ok = await Promise.race([
          durable.then(
            () => true,
            () => false,
          ),
          delay(journalTimeout, false),
        ]);
        if (!ok) {
          journalUnavailable(msg, proto, e.decision);
          return answered(e, "unavailable", t0);
        }
      }
      // journal first: its bytes are queued on the connection before the reply's, so an OMS that
      // saw the reply knows the server has read the journal record (a kill -9 cannot split them)
      const w = o.journal.write(e.record);
      w.ack.catch((err: unknown) => log.warn({ err }, "journal of a replay failed"));
      await w.sent;
      reply(msg, proto, e.decision);
      answered(e, "replayed", t0);
      return;
    }
    // Every decision, a rejection too, is answered once the stream has it: a rejection answered
    // when its bytes were merely on the connection could be refused by the server afterwards (a
    // conditional write fenced by a takeover), and the new owner then decided the OMS's retry
    // afresh, a second decision for one key, and counted a window short of what was answered
    // (red team, stop 29: `test/faults/redteam-several-queued.test.ts`).
    const idem = e.record.idempotency_key
      ? o.state.idem.get(key2(e.record.fund_id, e.record.idempotency_key))
      : undefined;
    const idemKey = e.record.idempotency_key ? key2(e.record.fund_id, e.record.idempotency_key) : undefined;
    const forget = () => {
      // the reservation stays (conservative); a retry is evaluated afresh. The record is matched
      // by content, not identity: it may have been read back from the snapshot meanwhile.
      if (idemKey && sameUnconfirmed(o.state.idem.get(idemKey), e)) o.state.idem.delete(idemKey);
    };
    let reused = false;
    let moved = false;
    const first = journal(e).then(
      (ack) => {
        if (ack.duplicate) {
          reused = true;
          throw new Error(`decision id ${e.record.decision_id} reused`);
        }
      },
      (err: unknown) => {
        // definitely not written (another engine owns the fund, or wrote since this decision)
        if (definite(err)) reused = moved = true;
        throw err;
      },
    );
    if (idemKey) untilDurable(idemKey, first);
    try {
      await first;
      if (e.decision.approved) approved++;
      reply(msg, proto, e.decision);
      answered(e, e.decision.approved ? "approved" : "rejected", t0);
    } catch (err) {
      journalFailures++;
      // Not known to be durable: do not tell the OMS it may trade. Unless the id was reused, the
      // write may still have landed: keep the idempotency record and re-publish the same record,
      // so that the OMS's retry is answered with this very decision once it is durable, never
      // with a second approval for the same key.
      if (reused) {
        forget();
        revokeLive(o.state, e.record);
        if (moved && again && !stopped) {
          log.info(
            { err, order_id: e.decision.order_id },
            "fund moved while its approval was written; routed again",
          );
          return again(() => {
            journalUnavailable(msg, proto, e.decision);
            answered(e, "unavailable", t0);
          });
        }
      } else if (idem && idemKey) {
        // every attempt refused by the stream (none timed out): nothing of it is journaled, so its
        // live effects are undone when it is dropped, as a rebuild never had them (the order id is
        // free again, the headroom too); a write that may have landed keeps its reservation
        let mayHaveLanded = !notStored(err);
        const resent = rejournal(e, idemKey, (cause) => {
          if (!notStored(cause)) mayHaveLanded = true;
        });
        untilDurable(idemKey, resent);
        resent.catch((cause: unknown) => {
          if (mayHaveLanded) forget();
          else revokeLive(o.state, e.record);
          log.error(
            { err: cause, order_id: e.decision.order_id, revoked: !mayHaveLanded },
            "decision journal unavailable; dropped",
          );
        });
      }
      log.error({ err, order_id: e.decision.order_id }, "decision journal unavailable; rejecting");
      journalUnavailable(msg, proto, e.decision);
      answered(e, "unavailable", t0);
    }
  }

  /** A fault, not a decision: a transient rejection, so the OMS retries (never left unanswered). */
  function internalError(msg: Msg, proto: boolean, t0: number): void {
    notReady(msg, proto, undefined, "internal error", t0);
  }

  function notReady(msg: Msg, proto: boolean, raw: unknown, why: string, t0: number): void {
    o.onNotReady?.((performance.now() - t0) / 1000);
    reply(msg, proto, {
      order_id: orderIdOf(raw),
      approved: false,
      rejecting_gate: "engine",
      rejection_code: "STATE_NOT_READY",
      reason: why,
      details: {},
      envelope_id: "",
      decided_at: o.clock(),
    });
  }

  function handle(msg: Msg): void {
    const t0 = performance.now();
    const proto = isProtobufContentType(msg.headers?.get("Content-Type"));
    // mts.v1.risk.check.<fund_id>: the fund token, without splitting the subject per request (a
    // check forwarded by another engine names the subject it was sent on)
    const forwarded = o.instanceSubject !== undefined && msg.subject === o.instanceSubject;
    const subject = forwarded ? (msg.headers?.get(FORWARDED_SUBJECT_HEADER) ?? Subjects.check) : msg.subject;
    const subjectFund = checkFundOf(subject);
    let raw: unknown;
    let decodeError: string | undefined;
    let decodePath: string | undefined;
    if (msg.data.length > MAX_ORDER_BYTES) {
      decodeError = `request is ${msg.data.length} bytes; the limit is ${MAX_ORDER_BYTES}`;
    } else {
      try {
        raw = proto ? decodeOrderProto(msg.data) : parseOrderJson(td.decode(msg.data), ORDER_NAMES);
      } catch (err) {
        if (err instanceof JsonDuplicateKeyError) {
          decodeError = "a name is given twice in one object";
          decodePath = err.path;
        } else decodeError = proto ? "not a valid protobuf Order" : "not valid JSON";
      }
    }
    const fwd = o.forwarder;
    if (fwd) {
      const ik = decodeError === undefined ? idempotencyKeyOf(raw) : undefined;
      const fund = ik && ik.fund !== NO_FUND ? ik.fund : undefined;
      inFlight++;
      // A check whose approval was fenced is routed once more, to the fund's new owner; routed here
      // again, it is not decided a second time on the state the fence proved stale: `stillHere`.
      const route = (stillHere?: () => void): Promise<void> =>
        fwd.dispatch(msg, fund, forwarded, {
          local: () => {
            if (!stillHere)
              return decideHere(msg, proto, raw, decodeError, decodePath, subjectFund, t0, route);
            stillHere();
            return Promise.resolve();
          },
          notReady: (why) => notReady(msg, proto, raw, why, t0),
        });
      route()
        .catch((err: unknown) => log.error({ err }, "check routing failed"))
        .finally(() => inFlight--);
      return;
    }
    inFlight++;
    decideHere(msg, proto, raw, decodeError, decodePath, subjectFund, t0)
      .catch((err: unknown) => log.error({ err }, "delivery failed"))
      .finally(() => inFlight--);
  }

  async function decideHere(
    msg: Msg,
    proto: boolean,
    raw: unknown,
    decodeError: string | undefined,
    decodePath: string | undefined,
    subjectFund: string | undefined,
    t0: number,
    again?: (stillHere: () => void) => Promise<void>,
  ): Promise<void> {
    let out: Evaluation | Promise<Evaluation>;
    try {
      out = o.decider.decide({ raw, decodeError, decodePath, subjectFund });
    } catch (err) {
      log.error({ err }, "decision failed");
      internalError(msg, proto, t0);
      return;
    }
    try {
      await deliver(msg, proto, out instanceof Promise ? await out : out, t0, again);
    } catch (err) {
      // never leave a check unanswered: a fault after the decision is a transient rejection (a
      // second reply after one already sent is ignored by the requester)
      log.error({ err }, "delivery failed");
      internalError(msg, proto, t0);
    }
  }

  const subjects: { subject: string; queue?: string }[] = [
    { subject: Subjects.check, queue },
    { subject: Subjects.checkPartitioned, queue },
    ...(o.instanceSubject ? [{ subject: o.instanceSubject }] : []),
  ];
  const subs: Subscription[] = [];
  const subscribe = (subject: string, q: string | undefined) =>
    o.nc.subscribe(subject, {
      ...(q ? { queue: q } : {}),
      callback: (err, msg) => {
        if (err) {
          log.error({ err }, "subscription error");
          return;
        }
        handle(msg);
      },
    });
  let listening = false;
  const listen = () => {
    if (listening || stopped) return;
    listening = true;
    for (const { subject, queue: q } of subjects) subs.push(subscribe(subject, q));
  };
  if (o.deferListen !== true) listen();

  return {
    listen,
    async stop(answerMs = journalTimeout) {
      stopped = true;
      await Promise.all(
        subs.map((s) => Promise.race([s.drain().catch(() => undefined), delay(journalTimeout)])),
      );
      // let the checks under way (their journal writes, forwards) be answered
      const deadline = Date.now() + answerMs;
      while ((inFlight > 0 || o.journal.pending() > 0) && Date.now() < deadline) await delay(5);
    },
    stats: () => ({ decisions, approved, journalFailures }),
    inFlight: () => inFlight,
  };
}
