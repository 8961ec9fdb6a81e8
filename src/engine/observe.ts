/**
 * A read-only view of the engine's state for tests and tools in the same process: every answer is
 * a plain-data copy (decimals as strings), so nothing outside the engine can change its state or
 * depend on its in-memory layout. What an operator or another process needs is on the bus instead
 * (`mts.v1.risk.status`, fund reports, the decision and alert streams) and over HTTP.
 */
import { type Dec, canon } from "../decimal/index.js";
import { type EngineState, key2, stateDigest } from "../state/index.js";

/** A fund's book in one symbol: its position and what pending orders reserve. */
export interface BookView {
  qty: string;
  cost: string;
  realized: string;
  fees: string;
  /** Signed quantity per broker. */
  brokers: Record<string, string>;
  pend_buy: string;
  pend_sell: string;
  pend_buy_by_broker: Record<string, string>;
  pend_sell_by_broker: Record<string, string>;
}

export interface HaltView {
  severity: string;
  since: string;
  reason: string;
  by: string;
  /** RISK_CONTROL sequence of the halt, and of the latest press that repeated it. */
  seq: number;
  last_seq: number | undefined;
}

export interface FundView {
  id: string;
  /** `<fund>@v<version>` of the envelope in force, if any. */
  envelope_id: string | undefined;
  envelope_version: number | undefined;
  /** Halts in force by severity. */
  halts: Record<string, HaltView>;
  lock: { since: string; reason: string; brokers: string[] } | undefined;
  /** P&L baselines by period (day, week, month): the start instant, equity and capital then. */
  baselines: Record<string, { starts_at: string; equity: string; capital: string | undefined }>;
  /** Halts lifted by a resume, oldest first. */
  lifted: { severity: string; since: string; resumed_at: string; operator: string }[];
  /** Realized P&L over the fund's books. */
  realized: string;
  books: Record<string, BookView>;
}

export interface StopView {
  fund: string;
  symbol: string;
  side: "LONG" | "SHORT";
  qty: string;
  stop_price: string;
  arm_seq: number;
  state: "armed" | "triggered" | "cleared";
}

/** What the engine knows of an order (its checks' approvals and the OMS's events). */
export interface OrderView {
  accepted: boolean;
  terminal: boolean;
  /** Idempotency keys of the approvals that hold quantity for it. */
  approvals: string[];
  /** The quantity still reserved in its book. */
  reserved: string;
}

export interface InstrumentView {
  asset_class: string;
  /** Currency of its prices (absent: the fund's base currency). */
  currency: string | undefined;
}

export interface MarkView {
  bid: string;
  ask: string;
  mid: string;
}

/** The last reconciliation pass that looked at a fund (what the dashboard's drift shows, in full). */
export interface ReconciliationView {
  at: string;
  /** What the pass did: none, alert, lock, unlock or adopt. */
  action: string;
  /** Every broker answered and nothing differs. */
  clean: boolean;
  brokers: {
    broker: string;
    answered: boolean;
    differences: { symbol: string; engine: string; broker: string }[];
  }[];
}

export interface EngineObserver {
  /** The last sequence applied from `stream` (0 before any). */
  cursor(stream: string): number;
  fund(id: string): FundView | undefined;
  book(fund: string, symbol: string): BookView | undefined;
  mark(symbol: string): MarkView | undefined;
  stop(fund: string, symbol: string): StopView | undefined;
  /** Reference data known for the symbol. */
  instrument(symbol: string): boolean;
  instrumentOf(symbol: string): InstrumentView | undefined;
  order(fund: string, orderId: string): OrderView | undefined;
  /** The envelope in force for the fund, as published (a copy). */
  envelope(fund: string): unknown;
  /** The engine holds a decision for this idempotency key of the fund (its window not passed). */
  decided(fund: string, key: string): boolean;
  /** The quantity an order still holds in its book's reservations. */
  reserved(fund: string, orderId: string): string | undefined;
  /** The state digest (`mts-risk status`, `rebuild`). */
  digest(): string;
  /** The last reconciliation pass over the fund (undefined: none yet). */
  reconciliation(fund: string): ReconciliationView | undefined;
}

/** What the engine keeps beside the state that the observer shows. */
export interface ObservedExtras {
  reconciliation?: (fund: string) => ReconciliationView | undefined;
}

const s = (d: Dec): string => canon(d);

export function createObserver(state: EngineState, extras: ObservedExtras = {}): EngineObserver {
  const byBroker = (m: Iterable<[string, Dec]>) => Object.fromEntries([...m].map(([b, q]) => [b, s(q)]));
  const book = (fund: string, symbol: string): BookView | undefined => {
    const b = state.funds.get(fund)?.books.get(symbol);
    if (!b) return undefined;
    const p = b.pos;
    return {
      qty: s(p.qty),
      cost: s(p.cost),
      realized: s(p.realized),
      fees: s(p.fees),
      brokers: byBroker(p.brokers),
      pend_buy: s(b.pendBuyQty),
      pend_sell: s(b.pendSellQty),
      pend_buy_by_broker: byBroker(b.pendBuyByBroker),
      pend_sell_by_broker: byBroker(b.pendSellByBroker),
    };
  };
  return {
    cursor: (stream) => state.cursors.get(stream as never) ?? 0,
    fund(id) {
      const f = state.funds.get(id);
      if (!f) return undefined;
      return {
        id,
        envelope_id: f.envelope?.id,
        envelope_version: f.envelope?.envelope.version,
        halts: Object.fromEntries(
          [...f.halts].map(([k, h]) => [
            k,
            {
              severity: h.severity,
              since: h.since,
              reason: h.reason,
              by: h.by,
              seq: h.seq,
              last_seq: h.lastSeq,
            },
          ]),
        ),
        lifted: f.lifted.map((l) => ({
          severity: l.severity,
          since: l.since,
          resumed_at: l.resumedAt,
          operator: l.operator,
        })),
        lock: f.lock && { since: f.lock.since, reason: f.lock.reason, brokers: [...f.lock.brokers] },
        baselines: Object.fromEntries(
          [...f.baselines].map(([p, b]) => [
            p,
            { starts_at: b.startsAt, equity: s(b.equity), capital: b.capital && s(b.capital) },
          ]),
        ),
        realized: s(f.agg.realized),
        books: Object.fromEntries([...f.books.keys()].map((sym) => [sym, book(id, sym)!])),
      };
    },
    book,
    mark(symbol) {
      const m = state.marks.get(symbol);
      return m && { bid: s(m.bid), ask: s(m.ask), mid: s(m.mid) };
    },
    stop(fund, symbol) {
      const r = state.stops.get(key2(fund, symbol));
      return (
        r && {
          fund: r.fund,
          symbol: r.symbol,
          side: r.side,
          qty: s(r.qty),
          stop_price: s(r.stopPrice),
          arm_seq: r.armSeq,
          state: r.state,
        }
      );
    },
    instrument: (symbol) => state.instruments.has(symbol),
    instrumentOf(symbol) {
      const i = state.instruments.get(symbol);
      return i && { asset_class: i.asset_class, currency: i.currency };
    },
    order(fund, orderId) {
      const o = state.orders.get(key2(fund, orderId));
      return (
        o && {
          accepted: o.accepted,
          terminal: o.terminal,
          approvals: [...o.approvals.keys()],
          reserved: s(o.reserved),
        }
      );
    },
    envelope: (fund) => {
      const raw = state.funds.get(fund)?.envelope?.raw;
      return raw === undefined ? undefined : structuredClone(raw);
    },
    decided: (fund, key) => state.idem.has(key2(fund, key)),
    reserved: (fund, orderId) => {
      const o = state.orders.get(key2(fund, orderId));
      return o && s(o.reserved);
    },
    digest: () => stateDigest(state),
    reconciliation(fund) {
      const r = extras.reconciliation?.(fund);
      return r && structuredClone(r);
    },
  };
}
