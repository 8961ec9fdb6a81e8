/**
 * state_digest: SHA-256 over the canonical engine state (positions, envelopes, halts,
 * reservations, stops, P&L baselines, idempotency records: their multiset hash, see
 * idem-digest.ts), independent of the order in which streams were interleaved. Marks, velocity windows and aggregates are derived and excluded.
 */
import { createHash } from "node:crypto";
import { canonicalJson } from "../contract/wire.js";
import { ZERO, canon } from "../decimal/index.js";
import type { EngineState } from "./model.js";

export function canonicalLines(state: EngineState): string[] {
  const lines: string[] = [];
  for (const f of state.funds.values()) {
    for (const b of f.books.values()) {
      const p = b.pos;
      if (p.qty.eq(ZERO) && p.realized.eq(ZERO) && p.fees.eq(ZERO) && p.cost.eq(ZERO)) continue;
      const brokers = [...p.brokers.entries()]
        .sort(([a], [b2]) => (a < b2 ? -1 : 1))
        .map(([k, q]) => `${k}:${canon(q)}`)
        .join(",");
      lines.push(
        `P|${f.id}|${b.symbol}|${canon(p.qty)}|${canon(p.cost)}|${canon(p.realized)}|${canon(p.fees)}|${brokers}`,
      );
    }
    if (f.envelope) {
      lines.push(`E|${f.id}|${f.envelope.envelope.version}|${canonicalJson(f.envelope.envelope)}`);
      const versions = [...f.envelopeHistory.keys()].sort((a, b) => a - b).join(",");
      lines.push(`EH|${f.id}|${versions}`);
    }
    for (const h of f.halts.values()) lines.push(`H|${f.id}|${h.severity}|${h.since}|${h.by}|${h.reason}`);
    for (const l of f.lifted) lines.push(`L|${f.id}|${l.severity}|${l.since}|${l.resumedAt}|${l.operator}`);
    if (f.lock) lines.push(`K|${f.id}|${f.lock.since}|${f.lock.reason}`);
    for (const b of f.baselines.values())
      lines.push(
        `B|${f.id}|${b.period}|${b.startsAt}|${canon(b.equity)}|${b.capital ? canon(b.capital) : ""}`,
      );
  }
  for (const r of state.orders.open()) {
    if (r.reserved.eq(ZERO)) continue;
    lines.push(
      `R|${r.fund}|${r.orderId}|${r.symbol}|${r.side}|${canon(r.reserved)}|${canon(r.price)}|${r.expiresAt}|${r.broker ?? ""}`,
    );
  }
  for (const s of state.stops.values()) {
    lines.push(
      `S|${s.fund}|${s.symbol}|${s.side}|${canon(s.qty)}|${canon(s.stopPrice)}|${s.armSeq}|${s.state}` +
        // the retry backoff only when there is one (a digest of stops that never failed is unchanged)
        (s.attempt > 0 ? `|${s.attempt}|${s.notBefore}` : ""),
    );
  }
  // every idempotency record, as one line kept incrementally (O(1), state/idem-digest.ts)
  lines.push(state.idem.digestLine());
  return lines.sort();
}

export function stateDigest(state: EngineState): string {
  const h = createHash("sha256");
  for (const l of canonicalLines(state)) {
    h.update(l);
    h.update("\n");
  }
  return h.digest("hex");
}
