/** Gate 2, schema: zod validation of the order; the denial names the field in details.path. */
import { fastParseOrder } from "../contract/fast-order.js";
import { firstIssue, type Instrument, type Order, OrderSchema } from "../contract/schemas.js";
import { deny, type Denial } from "./types.js";

export type SchemaOutcome = { ok: true; order: Order } | { ok: false; denial: Denial };

export function checkSchema(raw: unknown): SchemaOutcome {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return { ok: false, denial: schemaDenial("", "the order must be a JSON object") };
  }
  const fast = fastParseOrder(raw);
  if (fast) return { ok: true, order: fast };
  const r = OrderSchema.safeParse(raw);
  if (r.success) return { ok: true, order: r.data };
  const i = firstIssue(r.error);
  return { ok: false, denial: schemaDenial(i.path, i.message) };
}

export function schemaDenial(path: string, message: string): Denial {
  return deny("SCHEMA_INVALID", path ? `${path}: ${message}` : message, { path });
}

/**
 * When refdata knows the instrument, an order stating another asset class is SCHEMA_INVALID: the
 * reference data, not the order, says what an instrument is (an order may omit it).
 */
export function checkRefdataClass(order: Order, instrument: Instrument | undefined): Denial | undefined {
  if (order.asset_class === undefined || instrument === undefined) return undefined;
  if (order.asset_class === instrument.asset_class) return undefined;
  return deny(
    "SCHEMA_INVALID",
    `asset_class: ${order.symbol} is ${instrument.asset_class} in the reference data, not ${order.asset_class}`,
    { path: "asset_class", refdata_asset_class: instrument.asset_class },
  );
}
