/** RISK_CONTROL: halts, resumes, reconciliation locks and P&L baselines. Alerts carry no state. */
import type { Halt, Resume } from "../../contract/schemas.js";
import type { PnlBaseline, ReconcileEvent, Stop, StopEvent } from "../../contract/records.js";
import { boundedByStream } from "./stream-time.js";
import { type EngineState, type LiftedHalt, type StopRecord, getFund, key2, touch } from "../model.js";

/**
 * A timestamp as the engine reports it (CONTRACT.md: RFC 3339 in UTC): one written in UTC (`Z`) is
 * kept as written (its digits, sub-millisecond ones included); one with an offset
 * (`15:29:59.5+01:00`) becomes that instant in UTC at millisecond precision.
 */
export function utcText(at: string): string {
  if (at.endsWith("Z")) return at;
  const ms = Date.parse(at);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : at;
}

export function applyHalt(
  state: EngineState,
  h: Halt,
  raw: { at: string },
  seq: number,
  /** When RISK_CONTROL stored it (epoch ms), if known. */
  storedMs?: number,
): void {
  const fund = getFund(state, h.fund_id);
  const cur = fund.halts.get(h.severity);
  if (!cur) {
    const atMs = Date.parse(raw.at);
    const bounded = boundedByStream(atMs, storedMs);
    fund.halts.set(h.severity, {
      severity: h.severity,
      since: utcText(raw.at),
      reason: h.reason,
      by: h.by,
      seq,
      lastSeq: seq,
      ...(bounded < atMs ? { boundedMs: bounded } : {}),
    });
    touch(state, "fund", fund.id);
  } else if (seq > (cur.lastSeq ?? cur.seq)) {
    // a repeated press: the halt stays as first published (sticky); its latest press is remembered
    cur.lastSeq = seq;
    touch(state, "fund", fund.id);
  }
}

/** Lifted halts a fund remembers (the latest of each severity is kept beyond them). */
const LIFTED_KEPT = 50;

/**
 * The last LIFTED_KEPT lifts, and the latest of each severity however old: the drawdown monitor
 * reads it to not halt again for a breach resumed within the period (60 manual halt/resume drills
 * in a month pushed the month's resumed loss halt out, and it halted again).
 */
function keepLifted(all: LiftedHalt[]): LiftedHalt[] {
  const from = all.length - LIFTED_KEPT;
  const latest = new Set<LiftedHalt>();
  const seen = new Set<string>();
  for (let i = all.length - 1; i >= 0; i--) {
    const l = all[i]!;
    if (seen.has(l.severity)) continue;
    seen.add(l.severity);
    latest.add(l);
  }
  return all.filter((l, i) => i >= from || latest.has(l));
}

/** Lifts every halt published before this resume; returns how many it lifted. */
export function applyResume(state: EngineState, r: Resume, raw: { at: string }, seq: number): number {
  const fund = getFund(state, r.fund_id);
  let lifted = 0;
  for (const [sev, h] of fund.halts) {
    if (h.seq >= seq) continue;
    fund.halts.delete(sev);
    // the lifted halt's period (the drawdown monitor does not halt a resumed breach again within
    // it) is judged by its time bounded by the stream's: a Halt stamped in the next period by a
    // clock running ahead, resumed, suppressed that period's own breach
    const since = h.boundedMs !== undefined ? new Date(h.boundedMs).toISOString() : h.since;
    fund.lifted.push({ severity: sev, since, resumedAt: utcText(raw.at), operator: r.operator });
    lifted++;
  }
  if (fund.lifted.length > LIFTED_KEPT) fund.lifted = keepLifted(fund.lifted);
  if (lifted > 0) touch(state, "fund", fund.id);
  return lifted;
}

export function applyReconcile(state: EngineState, e: ReconcileEvent, raw: { at: string }): void {
  const fund = getFund(state, e.fund_id);
  fund.lock = e.locked ? { since: utcText(raw.at), reason: e.reason, brokers: e.brokers ?? [] } : undefined;
  touch(state, "fund", fund.id);
}

export function applyBaseline(state: EngineState, b: PnlBaseline, raw: { starts_at: string }): void {
  const fund = getFund(state, b.fund_id);
  const cur = fund.baselines.get(b.period);
  if (cur && cur.startsAtMs >= b.starts_at) return;
  fund.baselines.set(b.period, {
    period: b.period,
    startsAt: raw.starts_at,
    startsAtMs: b.starts_at,
    equity: b.equity,
    capital: b.capital,
  });
  touch(state, "fund", fund.id);
}

/**
 * A stop record after `event` (pure): a newer arm sequence replaces the older; within one sequence
 * armed → triggered → cleared. Undefined when the event does not move the stop on.
 */
export function foldStop(
  cur: StopRecord | undefined,
  event: StopEvent,
  s: Stop,
  raw: { at: string },
): StopRecord | undefined {
  const rank = { armed: 0, triggered: 1, cleared: 2 } as const;
  if (cur && (s.arm_seq < cur.armSeq || (s.arm_seq === cur.armSeq && rank[event] <= rank[cur.state])))
    return undefined;
  const same = s.arm_seq === cur?.armSeq;
  return {
    fund: s.fund_id,
    symbol: s.symbol,
    side: s.side,
    qty: s.quantity,
    stopPrice: s.stop_price,
    armSeq: s.arm_seq,
    state: event,
    closingOrderId: s.closing_order_id ?? (same ? cur.closingOrderId : undefined),
    legs:
      s.closing_orders?.map((l) => ({
        orderId: l.order_id,
        key: l.idempotency_key,
        broker: l.broker,
        qty: l.quantity,
      })) ?? (same ? cur.legs : []),
    attempt: s.attempt ?? 0,
    notBefore: s.not_before ?? 0,
    at: raw.at,
  };
}

/** A stop's newer arm sequence replaces the older; within one sequence armed → triggered → cleared. */
export function applyStop(state: EngineState, event: StopEvent, s: Stop, raw: { at: string }): void {
  const k = key2(s.fund_id, s.symbol);
  const next = foldStop(state.stops.get(k), event, s, raw);
  if (!next) return;
  state.stops.set(k, next);
  touch(state, "stop", k);
}
