/**
 * The engine's own decision records, one path from decided to recognised:
 *
 *  1. applied to the state as pending (`applyDecision(state, rec, live = true)`, by the decider):
 *     their idempotency records and approvals are marked unconfirmed, and a snapshot drops them;
 *  2. `pending(text, records)`: the journal body (one record or a group-commit batch) is sent with
 *     the decision id as its Nats-Msg-Id, conditional on the fund's last sequence (fund-journal.ts);
 *  3. `acked(text, seq)`: the stream stored it — the records are confirmed now (durable), without
 *     waiting for the follower;
 *  4. `recognise(...)` on read-back (the follower, before the projector): a message at a sequence
 *     this engine was acknowledged for is its own — already applied and confirmed: only the cursor
 *     and the fund's journal sequence advance (`readBack: "skip"`), or the records are applied
 *     again from memory without parsing (`readBack: "apply"`, the former path). A body it sent
 *     whose acknowledgement has not arrived yet is recognised byte for byte and applied from
 *     memory; anything else (another engine's, a replay after restart) is parsed by the projector.
 *
 * A single writer per fund (ownership and fenced writes) is what makes the skip safe: no other
 * engine's record of the fund can sit between this engine's decision and its own journal entry.
 * Engines that do not own a fund never have its records here: they fold them like any message.
 */
import type { DecisionRecord } from "../contract/records.js";
import type { StreamName } from "../contract/subjects.js";
import { Subjects } from "../contract/subjects.js";
import { applyDecision, confirmDecision } from "../state/projections/decisions.js";
import type { EngineState } from "../state/model.js";
import type { ProjectResult } from "../state/projector.js";

/** Bodies awaiting acknowledgement or read-back (those of lost writes never are: then reset). */
const MAX_PENDING = 100_000;
/** Acknowledged sequences awaiting read-back beyond which those already passed are looked for. */
const PRUNE_AT = 10_000;

export type ReadBack = "skip" | "apply";

export interface OwnDecisionsOptions {
  state: EngineState;
  /** What the owner does when its own acknowledged record comes back (default "skip"). */
  readBack?: ReadBack | (() => ReadBack) | undefined;
}

export interface OwnDecisions {
  /** The journal body about to be written (its exact bytes), with the records it carries. */
  pending(text: string, records: DecisionRecord | DecisionRecord[]): void;
  /** The stream stored that body at `seq`: its records are durable. */
  acked(text: string, seq: number): void;
  /** The engine's own message on RISK_DECISIONS, folded without parsing; undefined: not its own. */
  recognise(stream: StreamName, subject: string, seq: number, data: Uint8Array): ProjectResult | undefined;
  /** Bodies pending (sent, not yet read back) and sequences acknowledged, not yet read back. */
  size(): { pending: number; acked: number };
}

const td = new TextDecoder();
const DECISION_PREFIX = Subjects.decision("");
const OK: ProjectResult = { ok: true };

export function createOwnDecisions(o: OwnDecisionsOptions): OwnDecisions {
  const { state } = o;
  const byText = new Map<string, DecisionRecord[]>();
  /** Acknowledged sequence -> its body (in acknowledgement order: mostly ascending). */
  const bySeq = new Map<number, string>();
  const cursor = () => state.cursors.get("RISK_DECISIONS") ?? 0;
  let pruneAt = PRUNE_AT;

  /** Forgets acknowledged sequences the follower has passed without delivering them (a purge). */
  function prune(upTo: number): void {
    for (const [seq, text] of bySeq) {
      if (seq > upTo) continue;
      bySeq.delete(seq);
      byText.delete(text);
    }
  }

  const rb = o.readBack;
  const mode: () => ReadBack = typeof rb === "function" ? rb : () => rb ?? "skip";
  const self: OwnDecisions = {
    pending(text, records) {
      if (byText.size >= MAX_PENDING) {
        byText.clear();
        bySeq.clear();
      }
      byText.set(text, Array.isArray(records) ? records : [records]);
    },
    acked(text, seq) {
      const records = byText.get(text);
      if (!records) return;
      for (const r of records) confirmDecision(state, r);
      // already read back (the follower was first): nothing left to recognise
      if (seq <= cursor()) byText.delete(text);
      else if (mode() === "skip") {
        // sequences the follower passed without delivering (a purge) are forgotten now and then,
        // not on every read-back (iterating a map from its start walks its deleted entries too)
        if (bySeq.size >= pruneAt) {
          prune(cursor());
          pruneAt = Math.max(PRUNE_AT, 2 * bySeq.size); // amortized while the follower lags
        }
        bySeq.set(seq, text);
      }
    },
    recognise(stream, subject, seq, data) {
      if (stream !== "RISK_DECISIONS" || byText.size === 0) return undefined;
      const prev = cursor();
      if (seq <= prev) return undefined; // the projector's replay rule answers it
      const text = bySeq.get(seq);
      if (text !== undefined) {
        bySeq.delete(seq);
        const records = byText.get(text);
        byText.delete(text);
        if (records && subject === Subjects.decision(records[0]?.fund_id ?? "")) {
          advance(seq, subject);
          return OK;
        }
        return undefined;
      }
      // not acknowledged yet (or mode "apply"): the same bytes as sent are the same records
      const body = td.decode(data);
      const records = byText.get(body);
      const first = records?.[0];
      if (!records || (first !== undefined && subject !== Subjects.decision(first.fund_id))) return undefined;
      byText.delete(body);
      advance(seq, subject);
      for (const r of records) applyDecision(state, r);
      return OK;
    },
    size: () => ({ pending: byText.size, acked: bySeq.size }),
  };

  function advance(seq: number, subject: string): void {
    state.cursors.set("RISK_DECISIONS", seq);
    if (subject.startsWith(DECISION_PREFIX))
      state.decisionSeq.set(subject.slice(DECISION_PREFIX.length), seq);
  }

  return self;
}
