/** RISK_ENVELOPES: a newer version replaces the current one; older or equal versions are ignored. */
import { DEFAULT_BASE_CURRENCY, type Envelope, type Limits } from "../../contract/schemas.js";
import { revalue } from "../book.js";
import { type Effective, type EngineState, type EnvelopeEntry, getFund, touch } from "../model.js";

export type EnvelopeOutcome = { applied: true } | { applied: false; current: number };

export function envelopeId(fund: string, version: number): string {
  return `${fund}@v${version}`;
}

/**
 * A strategy's limits: every field it sets replaces the fund's, except the per-class map
 * `max_asset_class_pct`, merged class by class (a strategy that sets equity's share keeps the
 * fund's cap on crypto; it may still set crypto's itself). Replacing the whole map let such a
 * strategy trade any other class with no class limit at all (red team, stop 29).
 */
function overlay(base: Effective, o: Limits): Effective {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  if (o.max_asset_class_pct !== undefined && base.max_asset_class_pct !== undefined)
    out["max_asset_class_pct"] = { ...base.max_asset_class_pct, ...o.max_asset_class_pct };
  return out as Effective;
}

export function buildEntry(e: Envelope, raw: unknown): EnvelopeEntry {
  const id = envelopeId(e.fund_id, e.version);
  const { strategies, ...rest } = e;
  const base: Effective = { ...rest, envelope_id: id };
  const byStrategy = new Map<string, Effective>();
  for (const [sid, o] of Object.entries(strategies ?? {})) byStrategy.set(sid, overlay(base, o));
  let velocityWindowS = base.velocity?.window_s ?? 0;
  for (const lim of byStrategy.values())
    velocityWindowS = Math.max(velocityWindowS, lim.velocity?.window_s ?? 0);
  let duplicateWindowMs = base.duplicate_window_ms ?? 0;
  for (const lim of byStrategy.values())
    duplicateWindowMs = Math.max(duplicateWindowMs, lim.duplicate_window_ms ?? 0);
  const baseCurrency = e.base_currency ?? DEFAULT_BASE_CURRENCY;
  return { envelope: e, raw, id, base, byStrategy, velocityWindowS, duplicateWindowMs, baseCurrency };
}

export function applyEnvelope(state: EngineState, e: Envelope, raw: unknown): EnvelopeOutcome {
  const fund = getFund(state, e.fund_id);
  const cur = fund.envelope;
  if (cur && e.version <= cur.envelope.version) return { applied: false, current: cur.envelope.version };
  const entry = buildEntry(e, raw);
  const rebase = (cur?.baseCurrency ?? DEFAULT_BASE_CURRENCY) !== entry.baseCurrency;
  fund.envelope = entry;
  if (rebase) for (const b of fund.books.values()) revalue(state, fund, b); // money is in the new base
  fund.envelopeHistory.set(e.version, entry);
  if (entry.duplicateWindowMs > fund.dupWindowSeenMs) fund.dupWindowSeenMs = entry.duplicateWindowMs;
  const keep = state.settings.envelopeVersionsKept;
  if (fund.envelopeHistory.size > keep) {
    const versions = [...fund.envelopeHistory.keys()].sort((a, b) => a - b);
    for (const v of versions.slice(0, versions.length - keep)) fund.envelopeHistory.delete(v);
  }
  touch(state, "fund", fund.id);
  return { applied: true };
}

/** The limits in force for an order of this strategy (the fund's envelope with its overrides). */
export function effectiveLimits(entry: EnvelopeEntry, strategyId: string | undefined): Effective {
  if (strategyId === undefined) return entry.base;
  return entry.byStrategy.get(strategyId) ?? entry.base;
}
