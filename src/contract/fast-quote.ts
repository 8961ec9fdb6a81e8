/**
 * A fast path for the common, well-formed Quote (the busiest stream): plain strings of the
 * expected shapes, checked by hand. It returns undefined for anything it is not sure about, and
 * the zod schema (the definition, with its error paths) decides. A property test holds both to
 * the same answers.
 */
import { type Dec, ZERO, parseDec } from "../decimal/index.js";
import type { Quote } from "./schemas.js";
import { ID_RE, RFC3339_RE } from "./schemas.js";

const KNOWN = new Set(["symbol", "bid", "ask", "bid_size", "ask_size", "venue", "timestamp"]);

function decimalAt(v: unknown, min: "pos" | "nonneg"): Dec | undefined {
  if (typeof v !== "string") return undefined;
  const d = parseDec(v);
  if (!d) return undefined;
  return (min === "pos" ? d.gt(ZERO) : d.gte(ZERO)) ? d : undefined;
}

export function fastParseQuote(raw: Record<string, unknown>): Quote | undefined {
  for (const k in raw) if (!KNOWN.has(k)) return undefined;
  const symbol = raw["symbol"];
  const ts = raw["timestamp"];
  if (typeof symbol !== "string" || !ID_RE.test(symbol)) return undefined;
  if (typeof ts !== "string" || !RFC3339_RE.test(ts)) return undefined;
  const timestamp = Date.parse(ts);
  if (!Number.isFinite(timestamp)) return undefined;
  const bid = decimalAt(raw["bid"], "nonneg");
  const ask = decimalAt(raw["ask"], "nonneg");
  if (!bid || !ask) return undefined;
  // one-sided (a side at 0) is valid; no price at all is not; only a two-sided quote can cross
  if (bid.eq(ZERO) ? ask.eq(ZERO) : !ask.eq(ZERO) && bid.gt(ask)) return undefined;
  const bs = raw["bid_size"];
  const as = raw["ask_size"];
  const venue = raw["venue"];
  const bid_size = bs === undefined ? undefined : decimalAt(bs, "nonneg");
  const ask_size = as === undefined ? undefined : decimalAt(as, "nonneg");
  if ((bs !== undefined && !bid_size) || (as !== undefined && !ask_size)) return undefined;
  if (venue !== undefined && (typeof venue !== "string" || venue.length > 64)) return undefined;
  return { symbol, bid, ask, bid_size, ask_size, venue, timestamp };
}
