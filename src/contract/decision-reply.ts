/**
 * Whether a reply on the check subject is a RiskDecision for the order sent: what the OMS client
 * and `mts-risk check` accept as an answer. A caller reads `approved`, so it must be a boolean; an
 * approval must be this order's and carry no rejection; a rejection must name its code (an empty
 * protobuf body decodes to a code-less one).
 */
import { firstIssue } from "./schemas.js";
import { RiskDecisionSchema } from "./records.js";

/** Why `d` is not a RiskDecision for the order `orderId`; undefined when it is one. */
export function notADecision(d: unknown, orderId: string): string | undefined {
  const shape = RiskDecisionSchema.safeParse(d);
  if (!shape.success) {
    const i = firstIssue(shape.error);
    return `${i.path || "(root)"}: ${i.message}`;
  }
  const r = shape.data;
  if (!r.approved) return r.rejection_code === "" ? "a rejection without a rejection_code" : undefined;
  if (r.rejection_code !== "" || r.rejecting_gate !== "") return "an approval with a rejection";
  if (r.order_id !== orderId) return `an approval of order_id ${JSON.stringify(r.order_id)}`;
  return undefined;
}
