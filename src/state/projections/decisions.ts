/** RISK_DECISIONS: idempotency records, velocity windows and reservations. Idempotent per decision. */
import type { DecisionRecord } from "../../contract/records.js";
import { type Dec, ZERO } from "../../decimal/index.js";
import { VELOCITY_HISTORY_S, addVelocity, pruneVelocity, readVelocity, velocityBucket } from "../velocity.js";
import { MAX_DUPLICATE_WINDOW_MS } from "../../contract/schemas.js";
import { pruneDuplicates, recordDuplicate } from "../duplicates.js";
import { type EngineState, type FundState, type IdemRecord, getFund, key2, touch } from "../model.js";
import { applyApproval, revokeApproval } from "./reservations.js";

/**
 * Folds a decision in. `live`: the engine applying its own decision before the journal has it;
 * such effects are marked unconfirmed until the record is read back from RISK_DECISIONS, and a
 * snapshot load drops whatever is still unconfirmed (the tail replay restores what was journaled),
 * so a crash can never leave in the snapshot an approval that no stream holds.
 */
/**
 * An earlier decision's idempotency record, expired when `rec` was made: the live engine had swept
 * it (`rec` recorded the key afresh). A fold that sweeps later (a rebuild: once, at its end) must
 * not keep it in place of `rec`: the key then names `rec`.
 */
const expiredBy = (cur: IdemRecord, rec: DecisionRecord): boolean => cur.expiresAt <= rec.at_ms;

export function applyDecision(state: EngineState, rec: DecisionRecord, live = false): void {
  const fundKnown = rec.fund_id !== "_";
  // a velocity window a snapshot left on disk is read before anything changes: a read that fails
  // applies nothing of the record, never its idempotency record without its reservation
  if (fundKnown && rec.counted) readVelocity(getFund(state, rec.fund_id).velocity);
  if (rec.recorded && rec.idempotency_key !== undefined && rec.fingerprint !== undefined && fundKnown) {
    const k = key2(rec.fund_id, rec.idempotency_key);
    let cur = state.idem.get(k);
    if (cur && expiredBy(cur, rec)) {
      state.idem.delete(k);
      cur = undefined;
    }
    if (!cur) {
      state.idem.put(k, {
        fund: rec.fund_id,
        key: rec.idempotency_key,
        fingerprint: rec.fingerprint,
        decision: rec.decision,
        expiresAt: rec.at_ms + state.settings.idempotencyWindowMs,
        confirmed: !live,
        fields: rec.fields,
      });
    } else if (!live && !cur.confirmed) {
      state.idem.confirm(k);
    }
  }
  if (!fundKnown) return;
  const fund = getFund(state, rec.fund_id);
  if (rec.counted) countVelocity(state, fund, rec.decision_id, rec.at_ms, rec.notional ?? ZERO);
  if (rec.dup_key !== undefined && rec.idempotency_key !== undefined) {
    if (rec.dup_window_ms !== undefined && rec.dup_window_ms > fund.dupWindowSeenMs)
      fund.dupWindowSeenMs = rec.dup_window_ms;
    countDuplicate(state, fund, rec.dup_key, rec.idempotency_key, rec.at_ms);
  }
  if (rec.decision.approved && rec.reservation && rec.idempotency_key !== undefined) {
    applyApproval(state, rec.fund_id, rec.idempotency_key, rec.reservation, rec.at_ms, live);
  }
}

/**
/**
 * Confirms a decision applied live (`applyDecision(…, live = true)`) once the journal has stored
 * it: what applying the journal's copy would do to it, without folding it again. Falls back to the
 * full fold when the state no longer holds what the live apply left there.
 */
export function confirmDecision(state: EngineState, rec: DecisionRecord): void {
  if (rec.idempotency_key === undefined || rec.fund_id === "_") return;
  const k = key2(rec.fund_id, rec.idempotency_key);
  if (rec.recorded && rec.fingerprint !== undefined) {
    const cur = state.idem.get(k);
    if (!cur || expiredBy(cur, rec)) return applyDecision(state, rec);
    if (!cur.confirmed) state.idem.confirm(k);
  }
  const res = rec.reservation;
  if (!rec.decision.approved || !res) return;
  const order = state.orders.get(key2(rec.fund_id, res.order_id));
  if (!order?.approvals.has(rec.idempotency_key)) return applyDecision(state, rec);
  if (order.unconfirmed.delete(rec.idempotency_key)) touch(state, "order", key2(rec.fund_id, res.order_id));
}

/**
 * Every counted decision of a fund is kept for VELOCITY_HISTORY_S (or the envelope's longest
 * window if longer), whether or not a velocity limit is in force: a window set or widened later
 * counts the orders decided before it.
 */
function countVelocity(state: EngineState, fund: FundState, id: string, at: number, notional: Dec): void {
  if (!addVelocity(fund.velocity, id, at, notional)) return;
  // its own small rows, one a second: a decision does not rewrite the fund's envelopes or history
  touch(state, "velocity", key2(fund.id, String(velocityBucket(at))));
  pruneFundVelocity(state, fund, at);
}

export function velocityHorizonMs(fund: FundState): number {
  return Math.max(VELOCITY_HISTORY_S, fund.envelope?.velocityWindowS ?? 0) * 1000;
}

/** Forgets a fund's velocity entries older than its horizon before `now` (their rows too). */
export function pruneFundVelocity(state: EngineState, fund: FundState, now: number): void {
  for (const b of pruneVelocity(fund.velocity, now - velocityHorizonMs(fund))) {
    touch(state, "velocity", key2(fund.id, String(b))); // rewritten with what is left, or deleted
  }
}

function countDuplicate(state: EngineState, fund: FundState, dupKey: string, key: string, at: number): void {
  if (!recordDuplicate(fund.dups, dupKey, key, at)) return;
  pruneDuplicates(fund.dups, at - duplicateHorizonMs(fund));
  touch(state, "dup", fund.id);
}

/**
 * How long a fund's duplicate keys are kept: the widest window seen for it (its envelope versions
 * and the windows its decision records were decided under: `dupWindowSeenMs`), or the contract's
 * longest while it has no envelope. Streams are folded in any order (a catch-up may read a decision
 * before its fund's envelope, or under an older, narrower version): a key pruned with a window not
 * yet known would be missing when the window arrives. Memory only: the check judges the window in
 * force. O(1): it runs for every decision with a duplicate key.
 */
function duplicateHorizonMs(fund: FundState): number {
  return fund.envelope ? fund.dupWindowSeenMs : MAX_DUPLICATE_WINDOW_MS;
}

/** Forgets the idempotency records expired at `now` (and the order ids they owned). */
export function sweepIdempotency(state: EngineState, now: number): number {
  return state.idem.sweep(now);
}

/**
 * Undoes what `applyDecision(live)` did for a record that certainly was not journaled (its
 * conditional write failed): its approval and idempotency record, while still unconfirmed.
 * Velocity keeps the order (conservative).
 */
export function revokeLive(state: EngineState, rec: DecisionRecord): void {
  if (rec.idempotency_key === undefined) return;
  const k = key2(rec.fund_id, rec.idempotency_key);
  const idem = state.idem.get(k);
  if (idem && !idem.confirmed && idem.fingerprint === rec.fingerprint) state.idem.delete(k);
  const res = rec.reservation;
  if (!rec.decision.approved || !res) return;
  revokeApproval(state, rec.fund_id, rec.idempotency_key, res.order_id);
}
