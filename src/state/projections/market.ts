/** QUOTES and REFDATA: marks and instruments; both revalue the books that hold the symbol. */
import type { Instrument, Quote } from "../../contract/schemas.js";
import { type Dec, HALF, ZERO } from "../../decimal/index.js";
import { revalueSymbol } from "../book.js";
import { type EngineState, type Mark, touch } from "../model.js";

/**
 * The mid of a quote. A bid of 0 is a price (nobody pays more than nothing: a far out-of-the-money
 * option is worth between 0 and its ask), so the mid is ask / 2. An ask of 0 is no offer at all:
 * the instrument is worth at least its bid, never half of it, so the mark is the bid.
 */
export function midOf(bid: Dec, ask: Dec): Dec {
  return ask.eq(ZERO) ? bid : bid.plus(ask).times(HALF);
}

export function toMark(bid: Dec, ask: Dec, ts: number): Mark {
  return { bid, ask, mid: midOf(bid, ask), ts };
}

/**
 * The mark is the latest quote by its own timestamp: one older than the mark in force (feeds
 * reorder, several publishers) is kept out; one with the same timestamp replaces it (stream
 * order, so a rebuild decides the same). A quote stamped in the future by a bad clock is not
 * fresh (|now − ts| > max age), so nothing is priced on it, but it holds the mark until quotes
 * pass its timestamp (see the README). True when the quote became the mark.
 */
export function applyQuote(state: EngineState, q: Quote): boolean {
  const cur = state.marks.get(q.symbol);
  if (cur && q.timestamp < cur.ts) return false;
  state.marks.set(q.symbol, toMark(q.bid, q.ask, q.timestamp));
  touch(state, "mark", q.symbol);
  revalueSymbol(state, q.symbol, true);
  return true;
}

export function applyInstrument(state: EngineState, i: Instrument): void {
  state.instruments.set(i.symbol, i);
  touch(state, "instrument", i.symbol);
  revalueSymbol(state, i.symbol, false);
}
