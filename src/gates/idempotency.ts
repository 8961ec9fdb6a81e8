/**
 * Gate 1, idempotency: the same key with the same order replays the original decision; the same
 * key with a different order is IDEMPOTENCY_CONFLICT. Keys are scoped to the fund.
 */
import { createHash } from "node:crypto";
import { ID_RE, type Order } from "../contract/schemas.js";
import { canon, type Dec } from "../decimal/index.js";
import { type EngineState, type IdemRecord, key2 } from "../state/model.js";
import { deny, type Denial } from "./types.js";

/** The fund and key of a raw request, when both are usable. */
export function idempotencyKeyOf(raw: unknown): { fund: string; key: string } | undefined {
  if (raw === null || typeof raw !== "object") return undefined;
  const r = raw as { fund_id?: unknown; idempotency_key?: unknown };
  if (typeof r.fund_id !== "string" || !ID_RE.test(r.fund_id)) return undefined;
  if (typeof r.idempotency_key !== "string" || r.idempotency_key.length === 0) return undefined;
  return { fund: r.fund_id, key: r.idempotency_key };
}

const opt = (v: { toFixed(): string } | string | number | boolean | undefined): string =>
  v === undefined ? "" : typeof v === "object" ? canon(v as Dec) : String(v);

/** A stable hash of the order's business content: every field, in a fixed order, canonical decimals. */
export function fingerprint(o: Order): string {
  const s = [
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
    opt(o.created_at),
    opt(o.locate_id),
  ].join("\u0000");
  return createHash("sha1").update(s).digest("base64url");
}

export type IdempotencyOutcome =
  | { kind: "new" }
  | { kind: "replay"; record: IdemRecord }
  | { kind: "conflict"; record: IdemRecord; denial: Denial };

export function checkIdempotency(
  state: EngineState,
  fund: string,
  key: string,
  fp: string | undefined,
): IdempotencyOutcome {
  const record = state.idem.get(key2(fund, key));
  if (!record) return { kind: "new" };
  if (fp !== undefined && fp === record.fingerprint) return { kind: "replay", record };
  return {
    kind: "conflict",
    record,
    denial: deny("IDEMPOTENCY_CONFLICT", `idempotency key ${key} was used for a different order`, {
      original_order_id: record.decision.order_id,
      original_decided_at: record.decision.decided_at,
    }),
  };
}
