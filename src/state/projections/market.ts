/** QUOTES and REFDATA: marks and instruments; both revalue the books that hold the symbol. */
import type { Instrument, Quote } from "../../contract/schemas.js";
import { HALF } from "../../decimal/index.js";
import { revalueFx, revalueSymbol } from "../book.js";
import { type EngineState, touch } from "../model.js";

/**
 * The latest quote in stream order is the mark, whatever its timestamp: a quote stamped in the
 * future by a bad clock must not freeze the mark (freshness, not order, judges its timestamp).
 */
export function applyQuote(state: EngineState, q: Quote): boolean {
  state.marks.set(q.symbol, { bid: q.bid, ask: q.ask, mid: q.bid.plus(q.ask).times(HALF), ts: q.timestamp });
  touch(state, "mark", q.symbol);
  revalueSymbol(state, q.symbol, true);
  if (state.fxHolders.has(q.symbol)) revalueFx(state, q.symbol); // an FX rate: revalue what is priced in it
  return true;
}

export function applyInstrument(state: EngineState, i: Instrument): void {
  state.instruments.set(i.symbol, i);
  touch(state, "instrument", i.symbol);
  revalueSymbol(state, i.symbol, false);
}
