/**
 * Gate 1, idempotency: the same key with the same order replays the original decision; the same
 * key with a different order is IDEMPOTENCY_CONFLICT (naming the first differing field); a new key
 * with an order id the fund already used is DUPLICATE_ORDER_ID. Keys and order ids are scoped to
 * the fund.
 */
import { Buffer } from "node:buffer";
import * as crypto from "node:crypto";
import { ID_RE, type Order } from "../contract/schemas.js";
import { NO_FUND } from "../contract/subjects.js";
import { canon, parseDec, type Dec, ZERO } from "../decimal/index.js";
import { type EngineState, type IdemRecord, key2 } from "../state/model.js";
import { deny, type Denial } from "./types.js";

/** The fund and key of a raw request, when both are usable (`_` is the journal's "no fund"). */
export function idempotencyKeyOf(raw: unknown): { fund: string; key: string } | undefined {
  if (raw === null || typeof raw !== "object") return undefined;
  const r = raw as { fund_id?: unknown; idempotency_key?: unknown };
  if (typeof r.fund_id !== "string" || r.fund_id === NO_FUND || !ID_RE.test(r.fund_id)) return undefined;
  if (typeof r.idempotency_key !== "string" || r.idempotency_key.length === 0) return undefined;
  return { fund: r.fund_id, key: r.idempotency_key };
}

/** The order id of a raw request when it is one the schema accepts, else undefined. */
export function usableOrderId(raw: unknown): string | undefined {
  const v = (raw as { order_id?: unknown } | null)?.order_id;
  return typeof v === "string" && v.length >= 1 && v.length <= 128 ? v : undefined;
}

const opt = (v: { toFixed(): string } | string | number | boolean | undefined): string =>
  v === undefined ? "" : typeof v === "object" ? canon(v as Dec) : String(v);

/**
 * A stable hash of the order's business content: every field but `created_at` (a retry may be
 * re-stamped), in a fixed order, canonical decimals.
 */
export function fingerprint(o: Order): string {
  return hashFields(o, false);
}

/**
 * The fingerprint of engines before created_at was excluded: a record journaled by one (it has no
 * field hashes) still replays for a retry of the very same order.
 */
export function legacyFingerprint(o: Order): string {
  return hashFields(o, true);
}

function hashFields(o: Order, withCreatedAt: boolean): string {
  const fields = [
    o.order_id,
    o.idempotency_key,
    o.fund_id,
    opt(o.strategy_id),
    o.broker,
    o.symbol,
    opt(o.asset_class),
    o.side,
    o.order_type,
    canon(o.quantity),
    opt(o.limit_price),
    opt(o.stop_price),
    opt(o.time_in_force),
    opt(o.reduce_only),
    ...(withCreatedAt ? [opt(o.created_at)] : []),
    opt(o.locate_id),
  ];
  // Joined with NUL, as always: unambiguous while no field holds a NUL itself. One that does
  // (free text may) is encoded as JSON instead, after a leading NUL that no joined form has (the
  // order id comes first and is never empty): two different orders never share a fingerprint.
  const s = fields.some((f) => f.includes("\u0000"))
    ? `\u0000${JSON.stringify(fields)}`
    : fields.join("\u0000");
  return sha1(s);
}

/**
 * SHA-1, base64url: the one-shot `crypto.hash` (Node ≥ 20.12) where there is one, ≈ 1 µs less a
 * decision than a Hash object (0.6–0.8 against 1.8–1.9 µs a fingerprint, same output); a Hash
 * object on an older Node 20.
 */
const sha1: (s: string) => string =
  typeof crypto.hash === "function"
    ? (s) => crypto.hash("sha1", s, "base64url")
    : (s) => crypto.createHash("sha1").update(s).digest("base64url");

/**
 * The fields compared by "the same order", in the contract's order (`idempotency_key` and
 * `fund_id` are equal by construction: the key is scoped to the fund; `created_at` is excluded).
 */
export const ORDER_FIELDS = [
  "order_id",
  "strategy_id",
  "broker",
  "symbol",
  "asset_class",
  "side",
  "order_type",
  "quantity",
  "limit_price",
  "stop_price",
  "time_in_force",
  "reduce_only",
  "locate_id",
] as const;
const DECIMAL_FIELDS: ReadonlySet<string> = new Set(["quantity", "limit_price", "stop_price"]);
const HASH_BYTES = 3; // 24 bits a field, exactly 4 base64url characters: 52 characters a record
const HASH_CHARS = 4;
const hashBuf = Buffer.alloc(ORDER_FIELDS.length * HASH_BYTES);

/** FNV-1a, 32 bits, over a type tag and the UTF-16 code units of a value. */
function fnv(tag: number, s: string): number {
  let h = Math.imul(0x811c9dc5 ^ tag, 0x01000193);
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

const TAG_ABSENT = 0;
const TAG_DEC = 1;
const TAG_STRING = 2;
const TAG_JSON = 3;

function hashValue(field: string, v: unknown, parsed: Dec | undefined): number {
  // reduce_only false is its absence (sameButReduceOnlyForm)
  // "" is the fingerprint's absent form too (opt()): a time_in_force of "" and none are one value,
  // so a conflict names the field that differs, not that one (red team, stop 30)
  if (v === undefined || v === null || v === "" || (v === false && field === "reduce_only"))
    return fnv(TAG_ABSENT, "");
  if (DECIMAL_FIELDS.has(field)) {
    const d =
      parsed ??
      (typeof v === "string"
        ? parseDec(v)
        : typeof v === "number" && Number.isSafeInteger(v)
          ? parseDec(String(v))
          : undefined);
    if (d) return fnv(TAG_DEC, canon(d));
  }
  return typeof v === "string" ? fnv(TAG_STRING, v) : fnv(TAG_JSON, jsonText(v));
}

/**
 * A value's JSON text for its hash; a value nested too deep to stringify (a schema-invalid field:
 * every known field is a scalar) hashes as one marker rather than failing the check (red team,
 * stop 30: a 20 000-deep array answered STATE_NOT_READY for ever instead of SCHEMA_INVALID).
 */
function jsonText(v: unknown): string {
  try {
    return JSON.stringify(v) ?? "";
  } catch {
    return "\u0000unhashable";
  }
}

/**
 * `reduce_only: false` and no `reduce_only` are one value (the flag is optional, false when
 * absent): an order that differs from the recorded one only in that form is the same order. The
 * fingerprint keeps the form it was journaled with (records already on the journal stay valid), so
 * the other form is tried only when the fingerprints differ.
 */
function sameButReduceOnlyForm(o: Order, recorded: string): boolean {
  if (o.reduce_only === true) return false;
  return fingerprint({ ...o, reduce_only: o.reduce_only === false ? undefined : false }) === recorded;
}

/**
 * Short per-field hashes of a request (valid or not; decimals canonical, null = absent), kept with
 * the idempotency record so that a conflict can name its first differing field without keeping
 * the order. Only names a field: replay is decided by the full fingerprint. `order`: the request
 * as parsed, when valid (its decimals are not parsed again).
 */
export function fieldHashes(raw: unknown, order?: Order): string {
  const o = (raw !== null && typeof raw === "object" ? raw : {}) as Record<string, unknown>;
  for (let i = 0; i < ORDER_FIELDS.length; i++) {
    const f = ORDER_FIELDS[i]!;
    const parsed =
      order === undefined
        ? undefined
        : f === "quantity"
          ? order.quantity
          : f === "limit_price"
            ? order.limit_price
            : f === "stop_price"
              ? order.stop_price
              : undefined;
    const h = hashValue(f, o[f], parsed);
    hashBuf[i * HASH_BYTES] = (h >>> 16) & 0xff;
    hashBuf[i * HASH_BYTES + 1] = (h >>> 8) & 0xff;
    hashBuf[i * HASH_BYTES + 2] = h & 0xff;
  }
  return hashBuf.toString("base64url");
}

/** The first field whose hashes differ, or undefined when unknown (a record without hashes). */
export function firstDifferingField(a: string | undefined, b: string | undefined): string | undefined {
  if (a === undefined || b === undefined || a.length !== b.length) return undefined;
  for (let i = 0; i < ORDER_FIELDS.length; i++) {
    const at = i * HASH_CHARS;
    if (a.slice(at, at + HASH_CHARS) !== b.slice(at, at + HASH_CHARS)) return ORDER_FIELDS[i];
  }
  return undefined;
}

export type IdempotencyOutcome =
  | { kind: "new" }
  | { kind: "replay"; record: IdemRecord }
  | { kind: "conflict"; record: IdemRecord | undefined; denial: Denial };

/**
 * `fields`: the request's fieldHashes. `orderId`: its order id when usable; checked only for a
 * key the fund has not used (after replay and conflict, as the gate table lists them).
 */
export function checkIdempotency(
  state: EngineState,
  fund: string,
  key: string,
  fp: string | undefined,
  fields?: string,
  orderId?: string,
  order?: Order,
): IdempotencyOutcome {
  const record = state.idem.get(key2(fund, key));
  if (!record) return orderId === undefined ? { kind: "new" } : checkOrderId(state, fund, orderId);
  if (fp !== undefined && fp === record.fingerprint) return { kind: "replay", record };
  if (record.fields === undefined && order && legacyFingerprint(order) === record.fingerprint) {
    return { kind: "replay", record };
  }
  if (order && sameButReduceOnlyForm(order, record.fingerprint)) return { kind: "replay", record };
  const details: Record<string, string> = {
    original_order_id: record.decision.order_id,
    original_decided_at: record.decision.decided_at,
  };
  const field = firstDifferingField(record.fields, fields);
  if (field !== undefined) details["field"] = field;
  const why = field !== undefined ? ` (${field} differs)` : "";
  return {
    kind: "conflict",
    record,
    denial: deny(
      "IDEMPOTENCY_CONFLICT",
      `idempotency key ${key} was used for a different order${why}`,
      details,
    ),
  };
}

/**
 * An order id names one order of its fund for ever: one already decided under another key (kept
 * as long as that decision's idempotency record), or known to the reservations (an approval, a
 * fill or an OMS event of it, kept while it can still matter), is DUPLICATE_ORDER_ID.
 */
function checkOrderId(state: EngineState, fund: string, orderId: string): IdempotencyOutcome {
  const k = key2(fund, orderId);
  const owner = state.idem.owner(k);
  if (owner) {
    return {
      kind: "conflict",
      record: owner,
      denial: deny(
        "DUPLICATE_ORDER_ID",
        `order_id ${orderId} was already decided for fund ${fund} under another idempotency key`,
        { original_decided_at: owner.decision.decided_at },
      ),
    };
  }
  const r = state.orders.get(k);
  // a record left empty (an approval applied live, dropped on reload because it was never
  // journaled) is no use of the id: the OMS's retry of that order must be decided
  if (r && (r.approvals.size > 0 || r.filled.gt(ZERO) || r.accepted || r.terminal)) {
    return {
      kind: "conflict",
      record: undefined,
      denial: deny("DUPLICATE_ORDER_ID", `order_id ${orderId} is already in use by fund ${fund}`, {}),
    };
  }
  return { kind: "new" };
}
