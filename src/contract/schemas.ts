/**
 * The wire messages of CONTRACT.md as zod schemas: the one place they are defined.
 * Decimals arrive as strings (or exactly representable integers) and leave as canonical strings.
 */
import { z } from "zod";
import { type Dec, ONE, parseDec, parseDecInternal, ZERO } from "../decimal/index.js";
import { AssetClass, HaltSeverity, OrderEventKind, OrderType, Side } from "./codes.js";
import { NO_FUND } from "./subjects.js";

export const ID_RE = /^[A-Za-z0-9_-]{1,64}$/;
export const RFC3339_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

export const id = z.string().regex(ID_RE, "must match ^[A-Za-z0-9_-]{1,64}$");
/** The fund id of an order or envelope: an id, but not `_` (the journal's "no fund" token). */
export const fundId = id.refine((v) => v !== NO_FUND, `"${NO_FUND}" is reserved`);
/** A UTF-16 surrogate without its pair: text that is not Unicode (no UTF-8 can carry it). */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/**
 * Well-formed Unicode: a JSON `\ud800` escape is the only way to a lone surrogate (a body is
 * decoded as strict UTF-8), and protobuf, whose strings are UTF-8, cannot carry one at all, so an
 * order with one is SCHEMA_INVALID in both encodings (red team, stop 30: approved in JSON).
 */
export const wellFormed = (s: string): boolean => !LONE_SURROGATE.test(s);
const text = (max: number) =>
  z.string().max(max).refine(wellFormed, "not well-formed Unicode (a lone surrogate)");

/** ISO 4217 currency code. */
export const CURRENCY_RE = /^[A-Z]{3}$/;
export const currency = z.string().regex(CURRENCY_RE, "must be an ISO 4217 code (3 upper-case letters)");
export const DEFAULT_BASE_CURRENCY = "USD";
/** The longest duplicate_window_ms an envelope may set (1 h, like the velocity windows). */
export const MAX_DUPLICATE_WINDOW_MS = 3_600_000;

type DecBound = "any" | "nonneg" | "pos";
/** "wire": what clients send (≤ 18 fraction digits); "internal": what the engine journals itself. */
type DecScope = "wire" | "internal";
function decimal(bound: DecBound = "any", scope: DecScope = "wire") {
  const parse = scope === "wire" ? parseDec : parseDecInternal;
  return z.union([z.string(), z.number()]).transform((v, ctx): Dec => {
    let d: Dec | undefined;
    if (typeof v === "number") {
      d = Number.isSafeInteger(v) ? parse(String(v)) : undefined;
    } else {
      d = parse(v);
    }
    if (d === undefined) {
      ctx.addIssue({ code: "custom", message: "must be a decimal string (or an exact integer)" });
      return z.NEVER;
    }
    if (bound === "pos" && !d.gt(ZERO)) {
      ctx.addIssue({ code: "custom", message: "must be > 0" });
      return z.NEVER;
    }
    if (bound === "nonneg" && d.lt(ZERO)) {
      ctx.addIssue({ code: "custom", message: "must be >= 0" });
      return z.NEVER;
    }
    return d;
  });
}
export const dec = decimal;

/** RFC 3339 timestamp; parsed to epoch milliseconds. */
export const timestamp = z
  .string()
  .regex(RFC3339_RE, "must be an RFC 3339 timestamp")
  .transform((s, ctx) => {
    const ms = Date.parse(s);
    if (!Number.isFinite(ms)) {
      ctx.addIssue({ code: "custom", message: "not a valid date" });
      return z.NEVER;
    }
    return ms;
  });

const opt = <T extends z.ZodTypeAny>(t: T) => t.nullish().transform((v) => v ?? undefined);

export const OrderSchema = z
  .object({
    order_id: text(128).min(1),
    idempotency_key: text(256).min(1),
    fund_id: fundId,
    strategy_id: opt(id),
    broker: id,
    symbol: id,
    asset_class: opt(z.enum(AssetClass)),
    side: z.enum(Side),
    order_type: z.enum(OrderType),
    quantity: decimal("pos"),
    limit_price: opt(decimal("pos")),
    stop_price: opt(decimal("pos")),
    time_in_force: opt(text(64)),
    reduce_only: opt(z.boolean()),
    created_at: opt(timestamp),
    locate_id: opt(text(128).min(1)),
  })
  .superRefine((o, ctx) => {
    if ((o.order_type === "LIMIT" || o.order_type === "STOP_LIMIT") && o.limit_price === undefined) {
      ctx.addIssue({ code: "custom", path: ["limit_price"], message: `required for ${o.order_type}` });
    }
    if ((o.order_type === "STOP" || o.order_type === "STOP_LIMIT") && o.stop_price === undefined) {
      ctx.addIssue({ code: "custom", path: ["stop_price"], message: `required for ${o.order_type}` });
    }
  });
export type Order = z.output<typeof OrderSchema>;
/** The names of an Order's fields (every other name in a request is ignored). */
export const ORDER_NAMES: ReadonlySet<string> = new Set(Object.keys(OrderSchema.shape));

const VelocitySchema = z.object({
  window_s: z.number().int().positive().max(86_400),
  max_orders: z.number().int().nonnegative().optional(),
  max_notional: opt(decimal("nonneg")),
});

/** The limit fields a strategy override may set (everything but identity, capital and strategies). */
const limitFields = {
  allowed_brokers: z.array(id).optional(),
  allowed_order_types: z.array(z.enum(OrderType)).optional(),
  allowed_asset_classes: z.array(z.enum(AssetClass)).optional(),
  max_order_notional: opt(decimal("nonneg")),
  max_order_qty: opt(decimal("nonneg")),
  max_position_pct: opt(decimal("nonneg")),
  max_gross_exposure_pct: opt(decimal("nonneg")),
  max_net_exposure_pct: opt(decimal("nonneg")),
  max_sector_pct: opt(decimal("nonneg")),
  max_asset_class_pct: z.partialRecord(z.enum(AssetClass), decimal("nonneg")).optional(),
  daily_loss_halt_pct: opt(decimal("nonneg")),
  weekly_loss_halt_pct: opt(decimal("nonneg")),
  monthly_loss_halt_pct: opt(decimal("nonneg")),
  enable_shorting: opt(z.boolean()),
  max_borrow_fee_bps: opt(decimal("nonneg")),
  synthetic_stop_pct: opt(decimal("nonneg")),
  price_collar_pct: opt(decimal("nonneg")),
  max_quote_age_ms: z.number().int().nonnegative().max(86_400_000).optional(),
  restricted_symbols: z.array(id).optional(),
  velocity: VelocitySchema.optional(),
  /** Approved orders of the fund still open (reserving), this one included (velocity gate). */
  max_open_orders: z.number().int().nonnegative().max(1_000_000_000).optional(),
  /** Same symbol/side/type/quantity/limit/stop under another key within this many ms (velocity gate). */
  duplicate_window_ms: z.number().int().positive().max(MAX_DUPLICATE_WINDOW_MS).optional(),
  /** quantity <= pct x the instrument's `adv` (static gate; no adv while set: rejected). */
  max_adv_pct: opt(decimal("nonneg")),
  /** Every order needs a fresh mark (STALE_MARKET_DATA otherwise). */
  require_fresh_mark: opt(z.boolean()),
};

export const LimitsSchema = z.object(limitFields);
export type Limits = z.output<typeof LimitsSchema>;

export const EnvelopeSchema = z.object({
  fund_id: fundId,
  version: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
  capital: decimal("pos"),
  ...limitFields,
  /** Currency of capital, NAV, P&L and every money limit (default USD). Fund-level only. */
  base_currency: opt(currency),
  /** Share of a limit above which a limit_warning alert is published (0 < x <= 1). Fund-level only. */
  warn_at_pct: opt(decimal("pos")).refine((v) => v === undefined || v.lte(ONE), "must be <= 1"),
  /**
   * `__proto__` is refused as a strategy id (structured error): zod's record drops that key, and
   * orders of that strategy would get the fund's limits in silence.
   */
  strategies: z
    .preprocess(
      (v, ctx) => {
        if (v !== null && typeof v === "object" && Object.prototype.hasOwnProperty.call(v, "__proto__"))
          ctx.addIssue({ code: "custom", message: "__proto__ is reserved as a strategy id", input: v });
        return v;
      },
      z.record(id, LimitsSchema),
    )
    .optional(),
});
export type Envelope = z.output<typeof EnvelopeSchema>;
export type EnvelopeInput = z.input<typeof EnvelopeSchema>;

export const InstrumentSchema = z.object({
  symbol: id,
  asset_class: z.enum(AssetClass),
  sector: opt(text(64).min(1)),
  shortable: opt(z.boolean()),
  borrow_fee_bps: opt(decimal("nonneg")),
  multiplier: opt(decimal("pos")),
  /** Currency of its prices (default the fund's base_currency). */
  currency: opt(currency),
  /** Average daily volume, in units of quantity (for max_adv_pct). */
  adv: opt(decimal("nonneg")),
});
export type Instrument = z.output<typeof InstrumentSchema>;

/**
 * A side at 0 is a one-sided market (bid 0: nobody pays anything, a far out-of-the-money option;
 * ask 0: nobody offers) and is valid; a quote with no price on either side is not a quote. Only a
 * two-sided quote can be crossed.
 */
export const QuoteSchema = z
  .object({
    symbol: id,
    bid: decimal("nonneg"),
    ask: decimal("nonneg"),
    bid_size: opt(decimal("nonneg")),
    ask_size: opt(decimal("nonneg")),
    venue: opt(text(64)),
    timestamp,
  })
  .refine((q) => q.bid.gt(ZERO) || q.ask.gt(ZERO), { path: ["ask"], message: "no price on either side" })
  .refine((q) => q.ask.eq(ZERO) || q.bid.lte(q.ask), { path: ["bid"], message: "crossed quote: bid > ask" });
export type Quote = z.output<typeof QuoteSchema>;

export const FillKind = { TRADE: "TRADE", ADJUSTMENT: "ADJUSTMENT" } as const;
export type FillKind = (typeof FillKind)[keyof typeof FillKind];

export const FillSchema = z.object({
  fill_id: text(256).min(1),
  order_id: text(128).min(1),
  fund_id: id,
  strategy_id: opt(id),
  broker: id,
  symbol: id,
  side: z.enum(Side),
  quantity: decimal("pos"),
  price: decimal("nonneg"), // 0: a transfer in, a corporate action (it moves the position)
  fees: decimal("any").prefault("0"),
  venue: opt(text(64)),
  timestamp,
  kind: opt(z.enum(FillKind)),
});
export type Fill = z.output<typeof FillSchema>;

export const OrderEventSchema = z.object({
  order_id: text(128).min(1),
  fund_id: id,
  event: z.enum(OrderEventKind),
  filled_quantity: opt(decimal("nonneg")),
  at: timestamp,
});
export type OrderEvent = z.output<typeof OrderEventSchema>;

export const HaltSchema = z.object({
  fund_id: id,
  severity: z.enum(HaltSeverity),
  reason: text(1024),
  at: timestamp,
  by: text(128),
});
export type Halt = z.output<typeof HaltSchema>;

export const ResumeSchema = z.object({
  fund_id: id,
  operator: text(128).min(1),
  reason: text(1024).min(1),
  at: timestamp,
});
export type Resume = z.output<typeof ResumeSchema>;

export const EnvelopeRequestSchema = z.object({
  fund_id: id,
  version: z.number().int().positive().optional(),
});
export type EnvelopeRequest = z.output<typeof EnvelopeRequestSchema>;

/** The reply to a check (CONTRACT.md RiskDecision). */
export interface RiskDecision {
  order_id: string;
  approved: boolean;
  rejecting_gate: string;
  rejection_code: string;
  reason: string;
  details: Record<string, string>;
  envelope_id: string;
  decided_at: string;
}

export interface ZodFailure {
  path: string;
  message: string;
}

/** First issue of a zod error as a dotted path and a message. */
export function firstIssue(err: z.ZodError): ZodFailure {
  const issue = err.issues[0];
  if (!issue) return { path: "", message: "invalid" };
  return { path: issue.path.map(String).join("."), message: issue.message };
}
