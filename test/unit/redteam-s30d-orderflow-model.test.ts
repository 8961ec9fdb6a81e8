/**
 * Red team, stop 30 (d): a model-based property test of the order-flow gates. An independent
 * reference model (exact decimals with big.js, none of the engine's code) is driven with random
 * sequences of envelope versions, quotes, clock moves, orders (new keys, retries, conflicting
 * retries, reused order ids, identical orders under other keys), OMS events and fills; the engine
 * is driven in process (createDecider on a state fed by the real projector, every decision record
 * read back from the journal as in production) and the two are compared decision by decision
 * (approved + rejection_code; a replay must be the original decision with details.replayed).
 *
 * Documented engine choices encoded in the model (README "Decisions where the spec is silent",
 * "Velocity", "duplicate_window_ms", "max_open_orders", "Order identity"):
 * - transient NO_ENVELOPE answers are not recorded and not counted by velocity;
 * - velocity counts decisions in (now − window_s, now] (half open), this order included; counted:
 *   every schema-valid, non-replayed, non-transient decision, IDEMPOTENCY_CONFLICT and
 *   DUPLICATE_ORDER_ID included;
 * - duplicates: `now − then < window`, only decisions past the engine gate while a window is set,
 *   a DUPLICATE_ORDER rejection itself is not remembered, keys are kept only as long as the widest
 *   window seen (a widened window reaches back only as far as windows seen);
 * - open = reserving: an approved order reserves qty − filled until a terminal event (without
 *   filled_quantity: released at once), its last fill, or the TTL when never acknowledged (accepted
 *   or a fill make it reserve again);
 * - a risk-reducing order (toward zero, not crossing it, counting pending orders of its side)
 *   skips the velocity gate (duplicate, open orders and rates) but is counted and remembered.
 */
import { describe, it, expect } from "vitest";
import fc from "fast-check";
import Big from "big.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { Subjects } from "../../src/contract/subjects.js";
import { createState } from "../../src/state/index.js";
import { manualClock } from "../../src/time/clock.js";
import { FUND, Feed, NOW, envelope, isoAt, testDecider } from "./fixtures.js";

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

type Side = "BUY" | "SELL";
type OType = "MARKET" | "LIMIT" | "STOP" | "STOP_LIMIT";

interface Content {
  symbol: string;
  side: Side;
  type: OType;
  qty: string;
  limit?: string | undefined;
  stop?: string | undefined;
  tif?: string | undefined;
}

interface EnvOp {
  k: "env";
  maxQty?: string | undefined;
  maxNotional?: string | undefined;
  collar?: string | undefined;
  maxOpen?: number | undefined;
  dupMs?: number | undefined;
  maxAge?: number | undefined;
  vel?: { window_s: number; max_orders?: number | undefined; max_notional?: string | undefined } | undefined;
}

type Op =
  | EnvOp
  | { k: "quote"; sym: string; bid: string; ask: string }
  | { k: "adv"; ms: number }
  | { k: "new"; c: Content }
  | { k: "retry"; i: number; restamp: boolean; restate: boolean }
  | { k: "conflict"; i: number; field: "quantity" | "side" | "time_in_force" }
  | { k: "reuseId"; i: number; c: Content }
  | { k: "dupContent"; i: number; restate: boolean }
  | {
      k: "event";
      i: number;
      ev: "accepted" | "cancelled" | "rejected" | "done" | "expired";
      /** filled_quantity of an end event: none, 0, what has been filled, half of the order, all of it */
      fq: "none" | "zero" | "filled" | "half" | "all";
    }
  | { k: "fill"; i: number; part: "all" | "half" | "one" }
  | { k: "extFill"; sym: string; side: Side; qty: string };

const SYMS = ["AAPL", "MSFT"] as const;
const TTL_MS = 4000;

const optional = <T>(a: fc.Arbitrary<T>): fc.Arbitrary<T | undefined> =>
  fc.option(a, { nil: undefined, freq: 3 });

const contentArb: fc.Arbitrary<Content> = fc
  .record({
    symbol: fc.constantFrom(...SYMS),
    side: fc.constantFrom<Side>("BUY", "SELL"),
    type: fc.constantFrom<OType>("LIMIT", "LIMIT", "MARKET", "STOP", "STOP_LIMIT"),
    qty: fc.constantFrom("1", "5", "10", "50", "100", "0.5", "101"),
    limit: fc.constantFrom("95", "99", "100", "100.5", "105", "105.01", "110"),
    stop: fc.constantFrom("98", "101"),
  })
  .map((r) => ({
    symbol: r.symbol,
    side: r.side,
    type: r.type,
    qty: r.qty,
    limit: r.type === "LIMIT" || r.type === "STOP_LIMIT" ? r.limit : undefined,
    stop: r.type === "STOP" || r.type === "STOP_LIMIT" ? r.stop : undefined,
  }));

const envArb: fc.Arbitrary<Op> = fc.record({
  k: fc.constant("env" as const),
  maxQty: optional(fc.constantFrom("10", "50", "100")),
  maxNotional: optional(fc.constantFrom("1000", "5000", "10000")),
  collar: optional(fc.constantFrom("0.01", "0.05")),
  maxOpen: optional(fc.constantFrom(0, 1, 2, 3, 5)),
  dupMs: optional(fc.constantFrom(500, 1000, 2000)),
  maxAge: optional(fc.constantFrom(1000, 3000)),
  vel: optional(
    fc.record({
      window_s: fc.constantFrom(1, 2, 5),
      max_orders: optional(fc.constantFrom(1, 2, 3, 5, 10)),
      max_notional: optional(fc.constantFrom("1000", "5000", "20000")),
    }),
  ),
});

const idx = fc.nat({ max: 1000 });
const opArb: fc.Arbitrary<Op> = fc
  .oneof(
    { arbitrary: envArb, weight: 2 },
    {
      arbitrary: fc.record({
        k: fc.constant("quote" as const),
        sym: fc.constantFrom(...SYMS),
        q: fc.constantFrom(["99.5", "100.5"], ["98", "102"], ["100", "100.1"], ["95", "96"]),
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({
        k: fc.constant("adv" as const),
        ms: fc.constantFrom(0, 1, 250, 499, 500, 999, 1000, 1001, 2000, 3000),
      }),
      weight: 4,
    },
    { arbitrary: fc.record({ k: fc.constant("new" as const), c: contentArb }), weight: 8 },
    {
      arbitrary: fc.record({
        k: fc.constant("retry" as const),
        i: idx,
        restamp: fc.boolean(),
        restate: fc.boolean(),
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({
        k: fc.constant("conflict" as const),
        i: idx,
        field: fc.constantFrom<"quantity" | "side" | "time_in_force">("quantity", "side", "time_in_force"),
      }),
      weight: 2,
    },
    { arbitrary: fc.record({ k: fc.constant("reuseId" as const), i: idx, c: contentArb }), weight: 2 },
    {
      arbitrary: fc.record({ k: fc.constant("dupContent" as const), i: idx, restate: fc.boolean() }),
      weight: 4,
    },
    {
      arbitrary: fc.record({
        k: fc.constant("event" as const),
        i: idx,
        ev: fc.constantFrom<"accepted" | "cancelled" | "rejected" | "done" | "expired">(
          "accepted",
          "accepted",
          "cancelled",
          "rejected",
          "done",
          "expired",
        ),
        fq: fc.constantFrom<"none" | "zero" | "filled" | "half" | "all">(
          "none",
          "none",
          "zero",
          "filled",
          "half",
          "all",
        ),
      }),
      weight: 3,
    },
    {
      arbitrary: fc.record({
        k: fc.constant("fill" as const),
        i: idx,
        part: fc.constantFrom<"all" | "half" | "one">("all", "half", "one"),
      }),
      weight: 2,
    },
    {
      arbitrary: fc.record({
        k: fc.constant("extFill" as const),
        sym: fc.constantFrom(...SYMS),
        side: fc.constantFrom<Side>("BUY", "SELL"),
        qty: fc.constantFrom("5", "20", "100"),
      }),
      weight: 2,
    },
  )
  .map((o) =>
    o.k === "quote" && "q" in o ? { k: "quote" as const, sym: o.sym, bid: o.q[0], ask: o.q[1] } : o,
  );

// ---------------------------------------------------------------------------------------------
// The reference model
// ---------------------------------------------------------------------------------------------

interface Limits {
  maxQty?: Big | undefined;
  maxNotional?: Big | undefined;
  collar?: Big | undefined;
  maxOpen?: number | undefined;
  dupMs?: number | undefined;
  maxAge: number;
  vel?: { windowMs: number; maxOrders?: number | undefined; maxNotional?: Big | undefined } | undefined;
}

interface Request {
  key: string;
  orderId: string;
  c: Content;
  createdAt?: string | undefined;
  /** decimals written in another form of the same value ("100.0") */
  restate?: boolean | undefined;
}

interface Expect {
  approved: boolean;
  code: string;
  /** the key whose recorded decision this replays */
  replayOf?: string | undefined;
  /** judged risk-reducing (the velocity gate skipped) */
  reducing?: boolean | undefined;
}

interface ModelOrder {
  symbol: string;
  side: Side;
  qty: Big;
  price: Big;
  filled: Big;
  accepted: boolean;
  terminal: boolean;
  /** filled_quantity the end event reported (0 when absent) */
  endFilled: Big;
  at: number;
  /** latest approval, event or fill time */
  touched: number;
}

const big = (s: string): Big => new Big(s);
const ZERO = new Big(0);

/** Same order for idempotency: every field but created_at, decimals by value. */
function fp(r: Request): string {
  const c = r.c;
  return JSON.stringify([
    r.orderId,
    r.key,
    c.symbol,
    c.side,
    c.type,
    big(c.qty).toString(),
    c.limit === undefined ? "" : big(c.limit).toString(),
    c.stop === undefined ? "" : big(c.stop).toString(),
    c.tif ?? "",
  ]);
}

function dupKeyOf(c: Content): string {
  return [
    c.symbol,
    c.side,
    c.type,
    big(c.qty).toString(),
    c.limit === undefined ? "" : big(c.limit).toString(),
    c.stop === undefined ? "" : big(c.stop).toString(),
  ].join("|");
}

class Model {
  now = NOW;
  env: Limits | undefined;
  dupSeenMs = 0;
  idem = new Map<string, { fp: string; exp: Expect }>();
  owners = new Set<string>();
  vel: { at: number; notional: Big }[] = [];
  dups = new Map<string, { at: number; key: string }>();
  orders = new Map<string, ModelOrder>();
  pos = new Map<string, Big>();
  marks = new Map<string, { bid: Big; ask: Big; ts: number }>();

  setEnv(o: EnvOp): void {
    this.env = {
      maxQty: o.maxQty === undefined ? undefined : big(o.maxQty),
      maxNotional: o.maxNotional === undefined ? undefined : big(o.maxNotional),
      collar: o.collar === undefined ? undefined : big(o.collar),
      maxOpen: o.maxOpen,
      dupMs: o.dupMs,
      maxAge: o.maxAge ?? 5000,
      vel:
        o.vel === undefined
          ? undefined
          : {
              windowMs: o.vel.window_s * 1000,
              maxOrders: o.vel.max_orders,
              maxNotional: o.vel.max_notional === undefined ? undefined : big(o.vel.max_notional),
            },
    };
    if ((o.dupMs ?? 0) > this.dupSeenMs) this.dupSeenMs = o.dupMs!;
  }

  reserving(o: ModelOrder): Big {
    if (o.terminal) {
      // the fills the OMS reported and FILLS has not brought yet keep reserving, until one TTL
      // after the order was last touched (README "Reservations")
      const toCome = (o.endFilled.lt(o.qty) ? o.endFilled : o.qty).minus(o.filled);
      if (toCome.lte(0) || this.now >= o.touched + TTL_MS) return ZERO;
      return toCome;
    }
    const rest = o.qty.minus(o.filled);
    if (rest.lte(0)) return ZERO;
    const acknowledged = o.accepted || o.filled.gt(0);
    if (!acknowledged && this.now >= o.at + TTL_MS) return ZERO; // the TTL lapsed
    return rest;
  }

  openOrders(): number {
    let n = 0;
    for (const o of this.orders.values()) if (this.reserving(o).gt(0)) n++;
    return n;
  }

  pending(symbol: string, side: Side): Big {
    let s = ZERO;
    for (const o of this.orders.values())
      if (o.symbol === symbol && o.side === side) s = s.plus(this.reserving(o));
    return s;
  }

  freshMark(symbol: string): { bid: Big; ask: Big } | undefined {
    const m = this.marks.get(symbol);
    if (!m || !this.env) return undefined;
    return Math.abs(this.now - m.ts) <= this.env.maxAge ? m : undefined;
  }

  /** The order's price per the contract: limit for LIMIT/STOP_LIMIT, else the fresh ask/bid. */
  priceOf(c: Content): Big | undefined {
    if (c.type === "LIMIT" || c.type === "STOP_LIMIT") return big(c.limit!);
    const m = this.freshMark(c.symbol);
    if (!m) return undefined;
    return c.side === "BUY" ? m.ask : m.bid;
  }

  reducing(c: Content): boolean {
    const p = this.pos.get(c.symbol) ?? ZERO;
    const q = big(c.qty);
    if (c.side === "BUY") return p.lt(0) && this.pending(c.symbol, "BUY").plus(q).lte(p.abs());
    return p.gt(0) && this.pending(c.symbol, "SELL").plus(q).lte(p);
  }

  velUsed(windowMs: number): { count: number; notional: Big } {
    let count = 0;
    let notional = ZERO;
    for (const e of this.vel) {
      if (this.now - e.at < windowMs && e.at <= this.now) {
        count++;
        notional = notional.plus(e.notional);
      }
    }
    return { count, notional };
  }

  /** Expected answer, and the model state moved as the decision requires. */
  decide(r: Request, idGateNotional: boolean): Expect {
    const f = fp(r);
    const rec = this.idem.get(r.key);
    const count = (notional: Big | undefined) => this.vel.push({ at: this.now, notional: notional ?? ZERO });
    const contractNotional = () => {
      const p = this.priceOf(r.c);
      return p === undefined ? undefined : p.times(r.c.qty);
    };
    if (rec) {
      if (rec.fp === f) return { ...rec.exp, replayOf: r.key };
      count(idGateNotional ? contractNotional() : undefined);
      return { approved: false, code: "IDEMPOTENCY_CONFLICT" };
    }
    if (this.owners.has(r.orderId)) {
      const exp = { approved: false, code: "DUPLICATE_ORDER_ID" };
      this.idem.set(r.key, { fp: f, exp });
      count(idGateNotional ? contractNotional() : undefined);
      return exp;
    }
    const lim = this.env;
    if (!lim) return { approved: false, code: "NO_ENVELOPE" };
    const c = r.c;
    const qty = big(c.qty);
    const price = this.priceOf(c);
    const notional = price?.times(qty);
    const mark = this.freshMark(c.symbol);
    const reducing = this.reducing(c);
    let code = "";
    // static
    if (lim.maxQty !== undefined && qty.gt(lim.maxQty)) code = "MAX_ORDER_QTY_EXCEEDED";
    else if (lim.maxNotional !== undefined && notional !== undefined && notional.gt(lim.maxNotional))
      code = "MAX_ORDER_NOTIONAL_EXCEEDED";
    else if (
      lim.collar !== undefined &&
      c.limit !== undefined &&
      mark !== undefined &&
      big(c.limit)
        .minus(mark.bid.plus(mark.ask).div(2))
        .abs()
        .gt(lim.collar.times(mark.bid.plus(mark.ask).div(2)))
    )
      code = "PRICE_COLLAR_BREACHED";
    else if ((c.type === "MARKET" || c.type === "STOP" || lim.collar !== undefined) && mark === undefined)
      code = "STALE_MARKET_DATA";
    // velocity gate (skipped for a risk-reducing order)
    if (code === "" && !reducing) {
      const dk = dupKeyOf(c);
      const prev = this.dups.get(dk);
      const used = lim.vel ? this.velUsed(lim.vel.windowMs) : undefined;
      if (lim.dupMs !== undefined && prev && prev.key !== r.key && this.now - prev.at < lim.dupMs)
        code = "DUPLICATE_ORDER";
      else if (lim.maxOpen !== undefined && this.openOrders() + 1 > lim.maxOpen)
        code = "MAX_OPEN_ORDERS_EXCEEDED";
      else if (lim.vel?.maxOrders !== undefined && used!.count + 1 > lim.vel.maxOrders)
        code = "VELOCITY_EXCEEDED";
      else if (
        lim.vel?.maxNotional !== undefined &&
        used!.notional.plus(notional ?? ZERO).gt(lim.vel.maxNotional)
      )
        code = "VELOCITY_EXCEEDED";
    }
    const exp: Expect = { approved: code === "", code, reducing };
    // apply
    this.idem.set(r.key, { fp: f, exp });
    this.owners.add(r.orderId);
    count(notional);
    if ((lim.dupMs ?? 0) > 0 && code !== "DUPLICATE_ORDER") {
      const dk = dupKeyOf(c);
      const cur = this.dups.get(dk);
      if (!cur || cur.at < this.now || cur.key !== r.key) this.dups.set(dk, { at: this.now, key: r.key });
      for (const [k, e] of this.dups) if (e.at <= this.now - this.dupSeenMs) this.dups.delete(k);
    }
    if (exp.approved) {
      this.orders.set(r.orderId, {
        symbol: c.symbol,
        side: c.side,
        qty,
        price: price!,
        filled: ZERO,
        accepted: false,
        terminal: false,
        endFilled: ZERO,
        at: this.now,
        touched: this.now,
      });
    }
    return exp;
  }
}

// ---------------------------------------------------------------------------------------------
// The engine, in process
// ---------------------------------------------------------------------------------------------

function restated(s: string): string {
  return s.includes(".") ? `${s}0` : `${s}.0`;
}

function rawOf(r: Request): Record<string, unknown> {
  const c = r.c;
  const d = (s: string) => (r.restate ? restated(s) : s);
  return {
    order_id: r.orderId,
    idempotency_key: r.key,
    fund_id: FUND,
    broker: "paper",
    symbol: c.symbol,
    side: c.side,
    order_type: c.type,
    quantity: d(c.qty),
    ...(c.limit === undefined ? {} : { limit_price: d(c.limit) }),
    ...(c.stop === undefined ? {} : { stop_price: d(c.stop) }),
    ...(c.tif === undefined ? {} : { time_in_force: c.tif }),
    ...(r.createdAt === undefined ? {} : { created_at: r.createdAt }),
  };
}

interface Step {
  op: string;
  got?: string;
  want?: string;
}

export interface RunResult {
  trace: Step[];
  mismatch?: string | undefined;
  codes: Map<string, number>;
}

/** Runs ops on the engine and the model; stops at the first difference. */
export function run(ops: readonly Op[], idGateNotional = true): RunResult {
  const feed = new Feed(createState({ reservationTtlMs: TTL_MS }));
  for (const s of SYMS) feed.instrument({ symbol: s, asset_class: "equity", shortable: true });
  const clock = manualClock(NOW);
  const decider = testDecider(feed, clock);
  const model = new Model();
  const sent: Request[] = [];
  const engineAnswer = new Map<string, RiskDecision>(); // key → the recorded (non-replay) decision
  const trace: Step[] = [];
  const codes = new Map<string, number>();
  let version = 0;
  let n = 0;
  let fillN = 0;

  const check = (r: Request): string | undefined => {
    const raw = rawOf(r);
    const e = decider.decide({ raw });
    if (e instanceof Promise) throw new Error("the deterministic pipeline decides synchronously");
    feed.decision(e.record); // the journal's read-back, as in production
    const want = model.decide(r, idGateNotional);
    const got = e.decision;
    const g = got.approved ? "APPROVED" : got.rejection_code;
    const w = want.replayOf !== undefined ? `replay(${want.code || "APPROVED"})` : want.code || "APPROVED";
    const gr = got.details["replayed"] === "true" ? `replay(${g})` : g;
    trace.push({ op: JSON.stringify(raw), got: gr, want: w });
    codes.set(w, (codes.get(w) ?? 0) + 1);
    if (want.reducing === true && want.replayOf === undefined) {
      const k = `risk-reducing ${w}`;
      codes.set(k, (codes.get(k) ?? 0) + 1);
    }
    if (want.replayOf !== undefined) {
      const orig = engineAnswer.get(want.replayOf);
      if (gr !== w) return `replay expected: got ${gr}, want ${w}`;
      if (!orig) return "replay of a key the engine never recorded";
      const same =
        JSON.stringify({ ...orig, details: { ...orig.details, replayed: "true" } }) === JSON.stringify(got);
      if (!same) return `replay differs from the original: ${JSON.stringify(got)} vs ${JSON.stringify(orig)}`;
      return undefined;
    }
    if (gr !== w) return `got ${gr}, want ${w}`;
    if (!engineAnswer.has(r.key) && want.code !== "NO_ENVELOPE" && want.code !== "IDEMPOTENCY_CONFLICT") {
      engineAnswer.set(r.key, got);
    }
    return undefined;
  };

  const pick = (i: number): Request | undefined => (sent.length === 0 ? undefined : sent[i % sent.length]);
  const submit = (r: Request): string | undefined => {
    sent.push(r);
    return check(r);
  };

  for (const op of ops) {
    let bad: string | undefined;
    switch (op.k) {
      case "env": {
        version++;
        const body = envelope({
          version,
          enable_shorting: true,
          ...(op.maxQty === undefined ? {} : { max_order_qty: op.maxQty }),
          ...(op.maxNotional === undefined ? {} : { max_order_notional: op.maxNotional }),
          ...(op.collar === undefined ? {} : { price_collar_pct: op.collar }),
          ...(op.maxOpen === undefined ? {} : { max_open_orders: op.maxOpen }),
          ...(op.dupMs === undefined ? {} : { duplicate_window_ms: op.dupMs }),
          ...(op.maxAge === undefined ? {} : { max_quote_age_ms: op.maxAge }),
          ...(op.vel === undefined
            ? {}
            : {
                velocity: {
                  window_s: op.vel.window_s,
                  ...(op.vel.max_orders === undefined ? {} : { max_orders: op.vel.max_orders }),
                  ...(op.vel.max_notional === undefined ? {} : { max_notional: op.vel.max_notional }),
                },
              }),
        });
        feed.publish("RISK_ENVELOPES", Subjects.envelopeUpdated(FUND), body);
        model.setEnv(op);
        trace.push({ op: `envelope ${JSON.stringify(body)}` });
        break;
      }
      case "quote":
        feed.quote(op.sym, op.bid, op.ask, clock.now());
        model.marks.set(op.sym, { bid: big(op.bid), ask: big(op.ask), ts: clock.now() });
        trace.push({ op: `quote ${op.sym} ${op.bid}/${op.ask}` });
        break;
      case "adv":
        clock.advance(op.ms);
        model.now += op.ms;
        trace.push({ op: `advance ${op.ms} ms` });
        break;
      case "new": {
        n++;
        bad = submit({ key: `k${n}`, orderId: `o${n}`, c: op.c });
        break;
      }
      case "retry": {
        const p = pick(op.i);
        if (!p) break;
        bad = submit({
          ...p,
          createdAt: op.restamp ? isoAt(clock.now()) : p.createdAt,
          restate: op.restate,
        });
        break;
      }
      case "conflict": {
        const p = pick(op.i);
        if (!p) break;
        const c: Content = { ...p.c };
        if (op.field === "quantity") c.qty = big(c.qty).plus(1).toString();
        else if (op.field === "side") c.side = c.side === "BUY" ? "SELL" : "BUY";
        else c.tif = c.tif === "GTC" ? "DAY" : "GTC";
        bad = submit({ key: p.key, orderId: p.orderId, c });
        break;
      }
      case "reuseId": {
        const p = pick(op.i);
        if (!p) break;
        n++;
        bad = submit({ key: `k${n}`, orderId: p.orderId, c: op.c });
        break;
      }
      case "dupContent": {
        const p = pick(op.i);
        if (!p) break;
        n++;
        bad = submit({ key: `k${n}`, orderId: `o${n}`, c: p.c, restate: op.restate });
        break;
      }
      case "event": {
        // only orders the model knows as approved (ids with no decision are out of scope here)
        const p = pick(op.i);
        const o = p && model.orders.get(p.orderId);
        if (!p || !o) break;
        const fq =
          op.ev === "accepted" || op.fq === "none"
            ? undefined
            : op.fq === "zero"
              ? ZERO
              : op.fq === "filled"
                ? o.filled
                : op.fq === "half"
                  ? o.qty.div(2)
                  : o.qty;
        feed.publish("OMS_ORDERS", Subjects.orderEvent(op.ev, FUND), {
          order_id: p.orderId,
          fund_id: FUND,
          event: op.ev,
          ...(fq === undefined ? {} : { filled_quantity: fq.toString() }),
          at: isoAt(clock.now()),
        });
        o.touched = Math.max(o.touched, clock.now());
        if (op.ev === "accepted") o.accepted = true;
        else {
          o.terminal = true;
          if (fq !== undefined && fq.gt(o.endFilled)) o.endFilled = fq;
        }
        trace.push({
          op: `event ${op.ev} ${p.orderId}${fq === undefined ? "" : ` filled_quantity ${fq.toString()}`}`,
        });
        break;
      }
      case "fill": {
        const p = pick(op.i);
        const o = p && model.orders.get(p.orderId);
        if (!p || !o) break;
        // an ended order gets at most the fills its end event reported
        const cap = o.terminal ? (o.endFilled.lt(o.qty) ? o.endFilled : o.qty) : o.qty;
        const rest = cap.minus(o.filled);
        if (rest.lte(0)) break;
        const q =
          op.part === "all" ? rest : op.part === "half" ? rest.div(2) : rest.gt(1) ? new Big(1) : rest;
        feed.publish("FILLS", Subjects.fill(FUND, o.symbol), {
          fill_id: `f${++fillN}`,
          order_id: p.orderId,
          fund_id: FUND,
          broker: "paper",
          symbol: o.symbol,
          side: o.side,
          quantity: q.toString(),
          price: o.price.toString(),
          fees: "0",
          timestamp: isoAt(clock.now()),
        });
        o.filled = o.filled.plus(q);
        o.touched = Math.max(o.touched, clock.now());
        const cur = model.pos.get(o.symbol) ?? ZERO;
        model.pos.set(o.symbol, o.side === "BUY" ? cur.plus(q) : cur.minus(q));
        trace.push({ op: `fill ${p.orderId} ${q.toString()}` });
        break;
      }
      case "extFill": {
        feed.publish("FILLS", Subjects.fill(FUND, op.sym), {
          fill_id: `f${++fillN}`,
          order_id: `ext-${fillN}`,
          fund_id: FUND,
          broker: "paper",
          symbol: op.sym,
          side: op.side,
          quantity: op.qty,
          price: "100",
          fees: "0",
          timestamp: isoAt(clock.now()),
        });
        const cur = model.pos.get(op.sym) ?? ZERO;
        model.pos.set(op.sym, op.side === "BUY" ? cur.plus(op.qty) : cur.minus(op.qty));
        trace.push({ op: `external fill ${op.sym} ${op.side} ${op.qty}` });
        break;
      }
    }
    if (bad !== undefined) return { trace, mismatch: bad, codes };
  }
  return { trace, codes };
}

function explain(r: RunResult): string {
  return [
    `mismatch: ${r.mismatch}`,
    ...r.trace.map((s) => (s.got === undefined ? `  ${s.op}` : `  ${s.op} -> ${s.got} (model ${s.want})`)),
  ].join("\n");
}

// ---------------------------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------------------------

const seqArb = fc
  .tuple(fc.integer({ min: 0, max: 9 }), envArb, fc.array(opArb, { minLength: 5, maxLength: 80 }))
  .map(([d, env, rest]) =>
    d > 0 ? [env, { k: "quote" as const, sym: "AAPL", bid: "99.5", ask: "100.5" }, ...rest] : rest,
  );

describe("order-flow gates against a reference model (red team s30d)", () => {
  it("given random envelopes, quotes, clock moves, orders, retries, OMS events and fills, then every decision is the model's", () => {
    const total = new Map<string, number>();
    fc.assert(
      fc.property(seqArb, (ops) => {
        const r = run(ops);
        for (const [k, v] of r.codes) total.set(k, (total.get(k) ?? 0) + v);
        if (r.mismatch !== undefined) throw new Error(explain(r));
      }),
      { seed: 30_4242, numRuns: 1000, endOnFailure: false },
    );
    if (process.env["REDTEAM_COVERAGE"]) console.log(JSON.stringify([...total].sort(), null, 1));
  });
});

// ---------------------------------------------------------------------------------------------
// Regressions (shrunk counterexamples)
// ---------------------------------------------------------------------------------------------

describe("velocity max_notional and the idempotency gate's rejections (red team s30d)", () => {
  /**
   * CONTRACT.md, VELOCITY_EXCEEDED: "counts every schema-valid order of the fund in the window,
   * approved or not; replays excluded". A DUPLICATE_ORDER_ID or IDEMPOTENCY_CONFLICT rejection of a
   * schema-valid LIMIT order counts for max_orders (README "Order identity") and, since stop 30,
   * with its notional for max_notional, as a static rejection does (decide.test.ts "their notional
   * counts too"); before, it added 0. Shrunk from the property run with the contract's reading.
   */
  const setup = (velocity: Record<string, unknown> = { window_s: 1, max_notional: "1000" }) => {
    const feed = new Feed(createState({ reservationTtlMs: TTL_MS }));
    feed.publish("RISK_ENVELOPES", Subjects.envelopeUpdated(FUND), envelope({ velocity }));
    const decider = testDecider(feed, manualClock(NOW));
    const decide = (raw: Record<string, unknown>): RiskDecision => {
      const e = decider.decide({ raw });
      if (e instanceof Promise) throw new Error("async");
      feed.decision(e.record);
      return e.decision;
    };
    const order = (orderId: string, key: string, quantity: string) => ({
      order_id: orderId,
      idempotency_key: key,
      fund_id: FUND,
      broker: "paper",
      symbol: "AAPL",
      side: "BUY",
      order_type: "LIMIT",
      quantity,
      limit_price: "95",
    });
    return { decide, order };
  };

  it.each([
    ["DUPLICATE_ORDER_ID", "o1", "k2"],
    ["IDEMPOTENCY_CONFLICT", "o1", "k1"],
  ])(
    "given max_notional 1000/s and an order of 95, when a %s rejection of 9 595 (101 @ 95) comes, then the next order of 95 is VELOCITY_EXCEEDED",
    (code, orderId, key) => {
      const { decide, order } = setup();
      expect(decide(order("o1", "k1", "1")).approved).toBe(true); // 95 in the window
      expect(decide(order(orderId, key, "101")).rejection_code).toBe(code); // schema-valid, 9 595
      const third = decide(order("o3", "k3", "1")); // 95 + 9 595 + 95 > 1 000
      expect(third.rejection_code).toBe("VELOCITY_EXCEEDED");
    },
  );

  it("given max_orders 2/s, then the idempotency gate's rejection is counted", () => {
    const { decide, order } = setup({ window_s: 1, max_orders: 2 });
    expect(decide(order("o1", "k1", "1")).approved).toBe(true);
    expect(decide(order("o1", "k2", "101")).rejection_code).toBe("DUPLICATE_ORDER_ID");
    expect(decide(order("o3", "k3", "1")).rejection_code).toBe("VELOCITY_EXCEEDED");
  });
});
