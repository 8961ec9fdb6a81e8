/**
 * The gate pipeline: synchronous gates in registration order (the first denial answers), then
 * asynchronous gates in order. Decisions never wait on the network unless an async gate is on.
 */
import type { Order } from "../contract/schemas.js";
import type { Effective } from "../state/model.js";
import type { GateContext, GateResult, RiskGate, Denial } from "./types.js";

export interface GateRejection {
  gate: string;
  denial: Denial;
}

export interface Pipeline {
  readonly gates: readonly RiskGate[];
  readonly hasAsync: boolean;
  runSync(order: Order, limits: Effective, ctx: GateContext): GateRejection | undefined;
  runAsync(order: Order, limits: Effective, ctx: GateContext): Promise<GateRejection | undefined>;
}

export function createPipeline(gates: readonly RiskGate[]): Pipeline {
  const sync = gates.filter((g) => g.mode !== "async");
  const async = gates.filter((g) => g.mode === "async");
  return {
    gates: [...sync, ...async],
    hasAsync: async.length > 0,
    runSync(order, limits, ctx) {
      for (const g of sync) {
        if (g.skipWhenReducing && ctx.reducing) continue;
        const r = g.check(order, limits, ctx) as GateResult;
        if (r) return { gate: g.name, denial: r };
      }
      return undefined;
    },
    async runAsync(order, limits, ctx) {
      for (const g of async) {
        if (g.skipWhenReducing && ctx.reducing) continue;
        const r = await g.check(order, limits, ctx);
        if (r) return { gate: g.name, denial: r };
      }
      return undefined;
    },
  };
}
