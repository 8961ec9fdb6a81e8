/** Reconciliation lock: set by the reconciler on drift (mode `lock`), lifted by a clean pass. */
import { deny, type RiskGate } from "./types.js";

export const reconciliationGate: RiskGate = {
  name: "reconciliation",
  skipWhenReducing: true,
  check(_order, lim, ctx) {
    const lock = ctx.fund.lock;
    if (!lock) return undefined;
    return deny(
      "RECONCILIATION_LOCK",
      `${lim.fund_id} is locked by the reconciler since ${lock.since}: ${lock.reason}`,
      {
        since: lock.since,
        brokers: lock.brokers.join(","),
      },
    );
  },
};
