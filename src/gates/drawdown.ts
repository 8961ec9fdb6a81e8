/** Gate 5, drawdown halt: a halted fund rejects risk-increasing orders (reducing ones pass). */
import { HALT_PRECEDENCE, type HaltSeverity } from "../contract/codes.js";
import { deny, type RiskGate } from "./types.js";

/** A halt as the gate reports it. */
export interface HaltSeen {
  severity: HaltSeverity;
  since: string;
  reason: string;
}

export interface DrawdownGateOptions {
  /**
   * The most severe halt this engine has decided for the fund and not read back from RISK_CONTROL
   * yet (the drawdown monitor's halt in flight, or kept after a failed publish and retried): the
   * fund is halted from the moment the breach is decided, not from when its Halt comes back.
   */
  inFlight?(fund: string): HaltSeen | undefined;
}

export function createDrawdownGate(o: DrawdownGateOptions = {}): RiskGate {
  return {
    name: "drawdown",
    skipWhenReducing: true,
    check(order, lim, ctx) {
      const halts = ctx.fund.halts;
      const sev = halts.size === 0 ? undefined : HALT_PRECEDENCE.find((s) => halts.has(s));
      const h: HaltSeen | undefined = (sev ? halts.get(sev) : undefined) ?? o.inFlight?.(order.fund_id);
      if (!h) return undefined;
      return deny("FUND_HALTED", `${lim.fund_id} is halted (${h.severity}) since ${h.since}: ${h.reason}`, {
        severity: h.severity,
        since: h.since,
      });
    },
  };
}

/** The gate on the folded state alone (explain's replay, the benchmarks). */
export const drawdownGate: RiskGate = createDrawdownGate();
