/**
 * A fast path for the common, well-formed Order: plain strings and booleans of the expected
 * shapes, checked by hand. It returns undefined for anything it is not sure about, and the zod
 * schema (the definition, with its error paths) decides. A property test holds both to the same
 * answers.
 */
import { parseDec, ZERO } from "../decimal/index.js";
import type { Order } from "./schemas.js";
import { ID_RE, RFC3339_RE, wellFormed } from "./schemas.js";
import { NO_FUND } from "./subjects.js";

const SIDES = new Set(["BUY", "SELL"]);
const TYPES = new Set(["MARKET", "LIMIT", "STOP", "STOP_LIMIT"]);
const CLASSES = new Set(["equity", "crypto", "option", "future", "fx"]);

const str = (v: unknown, max: number): v is string =>
  typeof v === "string" && v.length >= 1 && v.length <= max && wellFormed(v);
const absent = (v: unknown) => v === undefined || v === null;

function positive(v: unknown) {
  if (typeof v !== "string") return undefined;
  const d = parseDec(v);
  return d && d.gt(ZERO) ? d : undefined;
}

export function fastParseOrder(raw: unknown): Order | undefined {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return undefined;
  const o = raw as Record<string, unknown>;
  if (!str(o["order_id"], 128) || !str(o["idempotency_key"], 256)) return undefined;
  const fund = o["fund_id"];
  const broker = o["broker"];
  const symbol = o["symbol"];
  if (typeof fund !== "string" || fund === NO_FUND || !ID_RE.test(fund)) return undefined;
  if (typeof broker !== "string" || !ID_RE.test(broker)) return undefined;
  if (typeof symbol !== "string" || !ID_RE.test(symbol)) return undefined;
  const side = o["side"];
  const type = o["order_type"];
  if (typeof side !== "string" || !SIDES.has(side) || typeof type !== "string" || !TYPES.has(type))
    return undefined;
  const quantity = positive(o["quantity"]);
  if (!quantity) return undefined;
  const lp = o["limit_price"];
  const sp = o["stop_price"];
  const limit_price = absent(lp) ? undefined : positive(lp);
  const stop_price = absent(sp) ? undefined : positive(sp);
  if ((!absent(lp) && !limit_price) || (!absent(sp) && !stop_price)) return undefined;
  if ((type === "LIMIT" || type === "STOP_LIMIT") && !limit_price) return undefined;
  if ((type === "STOP" || type === "STOP_LIMIT") && !stop_price) return undefined;
  const strategy = o["strategy_id"];
  if (!absent(strategy) && (typeof strategy !== "string" || !ID_RE.test(strategy))) return undefined;
  const ac = o["asset_class"];
  if (!absent(ac) && (typeof ac !== "string" || !CLASSES.has(ac))) return undefined;
  const tif = o["time_in_force"];
  if (!absent(tif) && (typeof tif !== "string" || tif.length > 64 || !wellFormed(tif))) return undefined;
  const ro = o["reduce_only"];
  if (!absent(ro) && typeof ro !== "boolean") return undefined;
  const locate = o["locate_id"];
  if (!absent(locate) && !str(locate, 128)) return undefined;
  const ca = o["created_at"];
  let created_at: number | undefined;
  if (!absent(ca)) {
    if (typeof ca !== "string" || !RFC3339_RE.test(ca)) return undefined;
    created_at = Date.parse(ca);
    if (!Number.isFinite(created_at)) return undefined;
  }
  return {
    order_id: o["order_id"],
    idempotency_key: o["idempotency_key"],
    fund_id: fund,
    strategy_id: strategy ?? undefined,
    broker,
    symbol,
    asset_class: (ac ?? undefined) as Order["asset_class"],
    side: side as Order["side"],
    order_type: type as Order["order_type"],
    quantity,
    limit_price,
    stop_price,
    time_in_force: tif ?? undefined,
    reduce_only: ro ?? undefined,
    created_at,
    locate_id: locate ?? undefined,
  };
}
