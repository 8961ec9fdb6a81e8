/**
 * Gate 7, CRO veto (optional, advisory): asks an external advisor; vetoes only when it says
 * `veto` with confidence above the threshold. No answer in time passes (fail-open) and is alerted.
 */
import { z } from "zod";
import { dec } from "../contract/schemas.js";
import { toWire } from "../contract/wire.js";
import { type Dec, canon } from "../decimal/index.js";
import { deny, type RiskGate } from "./types.js";

/** Characters of the advisor's reason kept in the decision. */
const REASON_MAX = 4096;

/**
 * The advisor's answer: `veto` and `confidence` decide; `reason` is only text, so a long one is
 * cut and a missing or non-string one gives the default text (never a reason to ignore the veto).
 */
const VetoReply = z.object({
  veto: z.boolean(),
  confidence: dec("nonneg"),
  reason: z
    .unknown()
    .transform((r) => (typeof r === "string" && r.length > 0 ? r.slice(0, REASON_MAX) : undefined)),
});

export interface CroVetoOptions {
  /** Sends the question and resolves with the raw reply, or rejects on timeout / no responder. */
  ask(payload: unknown): Promise<unknown>;
  threshold: Dec;
  /** Called when the advisor did not answer usefully; the order passes. */
  onFailOpen(fund: string, orderId: string, why: string): void;
}

export function createCroVetoGate(o: CroVetoOptions): RiskGate {
  return {
    name: "cro_veto",
    mode: "async",
    async check(order, lim, ctx) {
      let reply: unknown;
      try {
        reply = await o.ask({
          order: toWire(order),
          envelope: toWire(lim),
          context: {
            mark: ctx.mark ? toWire({ bid: ctx.mark.bid, ask: ctx.mark.ask, ts: ctx.mark.ts }) : null,
            notional: ctx.notional ? canon(ctx.notional) : null,
            halted: ctx.fund.halts.size > 0,
          },
        });
      } catch (err) {
        o.onFailOpen(order.fund_id, order.order_id, err instanceof Error ? err.message : String(err));
        return undefined;
      }
      const r = VetoReply.safeParse(reply);
      if (!r.success) {
        o.onFailOpen(order.fund_id, order.order_id, "malformed advisor reply");
        return undefined;
      }
      if (r.data.veto && r.data.confidence.gt(o.threshold)) {
        return deny("CRO_VETO", r.data.reason ?? "vetoed by the CRO advisor", {
          confidence: canon(r.data.confidence),
          threshold: canon(o.threshold),
        });
      }
      return undefined;
    },
  };
}
