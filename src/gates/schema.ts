/** Gate 2, schema: zod validation of the order; the denial names the field in details.path. */
import { fastParseOrder } from "../contract/fast-order.js";
import { firstIssue, type Instrument, type Order, OrderSchema } from "../contract/schemas.js";
import type { AssetClass } from "../contract/codes.js";
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

/**
 * The class a fund's book in a symbol without refdata is summed under, while it holds a position
 * or a reservation (see checkRefdataClass); undefined for a book with nothing in it, which takes
 * the class of its next approval.
 */
export function heldClass(
  book:
    | {
        assetClassHint: AssetClass | undefined;
        pos: { qty: { units: bigint } };
        pendBuyQty: { units: bigint };
        pendSellQty: { units: bigint };
      }
    | undefined,
): AssetClass | undefined {
  if (book === undefined) return undefined;
  const holds = book.pos.qty.units !== 0n || book.pendBuyQty.units !== 0n || book.pendSellQty.units !== 0n;
  return holds ? book.assetClassHint : undefined;
}

export function schemaDenial(path: string, message: string): Denial {
  return deny("SCHEMA_INVALID", path ? `${path}: ${message}` : message, { path });
}

/**
 * When refdata knows the instrument, an order stating another asset class is SCHEMA_INVALID: the
 * reference data, not the order, says what an instrument is (an order may omit it).
 */
export function checkRefdataClass(
  order: Order,
  instrument: Instrument | undefined,
  bookClass?: AssetClass,
): Denial | undefined {
  if (order.asset_class === undefined) return undefined;
  if (instrument === undefined) {
    // No refdata: the fund's book in the symbol took its class from the first approval that
    // stated one, and its reservations and position are summed under it. An order calling the
    // same symbol another class would be judged under one class and reserve under the other (a
    // later order of that class would not see it): refused, as against refdata (stop 29).
    if (bookClass === undefined || bookClass === order.asset_class) return undefined;
    return deny(
      "SCHEMA_INVALID",
      `asset_class: the fund's ${order.symbol} is ${bookClass} (from its earlier orders, no reference data), not ${order.asset_class}`,
      { path: "asset_class", book_asset_class: bookClass },
    );
  }
  if (order.asset_class === instrument.asset_class) return undefined;
  return deny(
    "SCHEMA_INVALID",
    `asset_class: ${order.symbol} is ${instrument.asset_class} in the reference data, not ${order.asset_class}`,
    { path: "asset_class", refdata_asset_class: instrument.asset_class },
  );
}
