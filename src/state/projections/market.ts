/**
 * QUOTES and REFDATA: marks and instruments; both revalue the books that hold the symbol. A quote
 * replaces the mark at once and is conflated for the aggregates: its holders fold it in as a delta
 * (qty × m × Δmid) at the next settle() (see book.ts); an FX rate revalues its books at once (it
 * changes every valuation factor, and FX symbols are few).
 */
import type { Instrument, Quote } from "../../contract/schemas.js";
import { type Dec, HALF } from "../../decimal/index.js";
import { markSymbol, revalueFx, revalueSymbol } from "../book.js";
import { type EngineState, type Mark, touch } from "../model.js";
import { boundedByStream } from "./stream-time.js";

/**
 * The mid of a quote. A bid of 0 is a price (nobody pays more than nothing: a far out-of-the-money
 * option is worth between 0 and its ask), so the mid is ask / 2. An ask of 0 is no offer at all:
 * the instrument is worth at least its bid, never half of it, so the mark is the bid.
 */
export function midOf(bid: Dec, ask: Dec): Dec {
  return ask.units === 0n ? bid : bid.plus(ask).times(HALF);
}

export function toMark(bid: Dec, ask: Dec, ts: number, rank = ts): Mark {
  return { bid, ask, mid: midOf(bid, ask), ts, rank };
}

/**
 * The mark is the latest quote by its own timestamp: one older than the mark in force (feeds
 * reorder, several publishers) is kept out; one with the same rank replaces it (stream order).
 * The rank is the timestamp bounded by the stream's own time of the message (boundedByStream: a
 * publisher whose clock runs fast cannot hold the mark), so a rebuild ranks every quote the same. Freshness still judges
 * the quote's own timestamp. True when the quote became the mark.
 */
export function applyQuote(state: EngineState, q: Quote, storedMs?: number): boolean {
  const rank = boundedByStream(q.timestamp, storedMs);
  const cur = state.marks.get(q.symbol);
  if (cur && rank < cur.rank) return false;
  const mark = toMark(q.bid, q.ask, q.timestamp, rank);
  const refusal = cur ? undefined : state.refusedQuotes.get(q.symbol);
  if (refusal) {
    state.refusedQuotes.delete(q.symbol);
    // older than a refused quote of a symbol with no mark then: it values positions, never fresh
    if (rank < refusal.rank) {
      mark.refused = refusal.reason;
      mark.rank = refusal.rank;
    }
  }
  state.marks.set(q.symbol, mark);
  touch(state, "mark", q.symbol);
  markSymbol(state, q.symbol, mark);
  if (state.fxHolders.has(q.symbol)) revalueFx(state, q.symbol); // an FX rate: revalue what is priced in it
  return true;
}

/**
 * A quote on `mts.v1.quote.<symbol>` that the schema refused (crossed, no price on either side, …):
 * when it is at least as recent as the mark in force (its own timestamp when it has one, bounded by
 * the stream's time as any quote's rank; else the stream's time), that mark is superseded by a
 * market the engine cannot establish. It keeps valuing positions (the last sound price known), but
 * is not fresh for any order or stop until the next valid quote (seed 003: an input that is stale,
 * unavailable or internally inconsistent rejects the order). Deterministic: a rebuild folds the
 * same refusals.
 */
export function refuseQuote(
  state: EngineState,
  symbol: string,
  raw: Record<string, unknown>,
  reason: string,
  storedMs: number | undefined,
): void {
  const cur = state.marks.get(symbol);
  const t = raw["timestamp"];
  const ts = typeof t === "string" ? Date.parse(t) : NaN;
  const rank = Number.isFinite(ts) ? boundedByStream(ts, storedMs) : storedMs;
  if (rank === undefined) return;
  if (!cur) {
    // no mark yet: a valid quote older than this one must not make one that is fresh (red team,
    // stop 30: a crossed quote, then an older valid one, approved a MARKET order)
    const was = state.refusedQuotes.get(symbol);
    if (was && rank < was.rank) return;
    state.refusedQuotes.set(symbol, { rank, reason });
    touch(state, "mark", symbol);
    return;
  }
  if (rank < cur.rank) return;
  cur.refused = reason;
  cur.rank = rank; // a valid quote older than the refused one does not make the mark sound again
  touch(state, "mark", symbol);
}

export function applyInstrument(state: EngineState, i: Instrument): void {
  state.instruments.set(i.symbol, i);
  touch(state, "instrument", i.symbol);
  revalueSymbol(state, i.symbol, false);
}
