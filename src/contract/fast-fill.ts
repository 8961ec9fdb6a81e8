/**
 * A fast path for the common, well-formed Fill (every rebuild folds a million of them): plain
 * strings of the expected shapes, checked by hand. It returns undefined for anything it is not
 * sure about, and the zod schema (the definition, with its error paths) decides. A property test
 * holds both to the same answers.
 */
import { type Dec, ZERO, parseDec } from "../decimal/index.js";
import type { Fill } from "./schemas.js";
import { ID_RE, RFC3339_RE } from "./schemas.js";

const KNOWN = new Set([
  "fill_id",
  "order_id",
  "fund_id",
  "strategy_id",
  "broker",
  "symbol",
  "side",
  "quantity",
  "price",
  "fees",
  "venue",
  "timestamp",
  "kind",
]);
const SIDES = new Set(["BUY", "SELL"]);
const KINDS = new Set(["TRADE", "ADJUSTMENT"]);

const text = (v: unknown, max: number): v is string =>
  typeof v === "string" && v.length >= 1 && v.length <= max;
const ident = (v: unknown): v is string => typeof v === "string" && ID_RE.test(v);

function positive(v: unknown): Dec | undefined {
  if (typeof v !== "string") return undefined;
  const d = parseDec(v);
  return d && d.gt(ZERO) ? d : undefined;
}

function nonNegative(v: unknown): Dec | undefined {
  if (typeof v !== "string") return undefined;
  const d = parseDec(v);
  return d && d.gte(ZERO) ? d : undefined;
}

export function fastParseFill(raw: Record<string, unknown>): Fill | undefined {
  for (const k in raw) if (!KNOWN.has(k)) return undefined;
  const { fill_id, order_id, fund_id, strategy_id, broker, symbol, side, fees, venue, kind } = raw;
  if (!text(fill_id, 256) || !text(order_id, 128)) return undefined;
  if (!ident(fund_id) || !ident(broker) || !ident(symbol)) return undefined;
  if (strategy_id !== undefined && !ident(strategy_id)) return undefined;
  if (typeof side !== "string" || !SIDES.has(side)) return undefined;
  if (kind !== undefined && (typeof kind !== "string" || !KINDS.has(kind))) return undefined;
  if (venue !== undefined && (typeof venue !== "string" || venue.length > 64)) return undefined;
  const quantity = positive(raw["quantity"]);
  const price = nonNegative(raw["price"]); // 0 is a valid fill price (transfer in)
  if (!quantity || !price) return undefined;
  const fee = fees === undefined ? ZERO : typeof fees === "string" ? parseDec(fees) : undefined;
  if (!fee) return undefined;
  const ts = raw["timestamp"];
  if (typeof ts !== "string" || !RFC3339_RE.test(ts)) return undefined;
  const timestamp = Date.parse(ts);
  if (!Number.isFinite(timestamp)) return undefined;
  return {
    fill_id,
    order_id,
    fund_id,
    strategy_id,
    broker,
    symbol,
    side: side as Fill["side"],
    quantity,
    price,
    fees: fee,
    venue,
    timestamp,
    kind: kind as Fill["kind"],
  };
}
