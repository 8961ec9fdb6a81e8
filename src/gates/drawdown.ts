/** Gate 5, drawdown halt: a halted fund rejects risk-increasing orders (reducing ones pass). */
import { HALT_PRECEDENCE } from "../contract/codes.js";
import { deny, type RiskGate } from "./types.js";

export const drawdownGate: RiskGate = {
  name: "drawdown",
  skipWhenReducing: true,
  check(_order, lim, ctx) {
    const halts = ctx.fund.halts;
    if (halts.size === 0) return undefined;
    const sev = HALT_PRECEDENCE.find((s) => halts.has(s));
    const h = sev ? halts.get(sev) : undefined;
    if (!h) return undefined;
    return deny("FUND_HALTED", `${lim.fund_id} is halted (${h.severity}) since ${h.since}: ${h.reason}`, {
      severity: h.severity,
      since: h.since,
    });
  },
};
