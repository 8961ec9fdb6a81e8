/**
 * Whether a reply on the check subject is a RiskDecision for the order sent: what the OMS client
 * and `mts-risk check` accept as an answer. A caller reads `approved`, so it must be a boolean; an
 * approval must be this order's and carry no rejection; a rejection must name its code (an empty
 * protobuf body decodes to a code-less one).
 */

/** Why `d` is not a RiskDecision for the order `orderId`; undefined when it is one. */
export function notADecision(d: unknown, orderId: string): string | undefined {
  if (typeof d !== "object" || d === null || Array.isArray(d)) return "not an object";
  const r = d as Record<string, unknown>;
  if (typeof r.approved !== "boolean") return "approved is not a boolean";
  if (typeof r.rejection_code !== "string" || typeof r.rejecting_gate !== "string") {
    return "rejecting_gate or rejection_code is not a string";
  }
  if (!r.approved) return r.rejection_code === "" ? "a rejection without a rejection_code" : undefined;
  if (r.rejection_code !== "" || r.rejecting_gate !== "") return "an approval with a rejection";
  if (r.order_id !== orderId) return `an approval of order_id ${JSON.stringify(r.order_id)}`;
  return undefined;
}
