import { drawdownGate } from "./drawdown.js";
export { createDrawdownGate, type DrawdownGateOptions, type HaltSeen } from "./drawdown.js";
import { positionGate } from "./position.js";
export { worstAfter } from "./position.js";
import { reconciliationGate } from "./reconciliation.js";
import { shortSideGate } from "./short-side.js";
import { staticGate } from "./static.js";
import type { RiskGate } from "./types.js";
import { velocityGate } from "./velocity.js";

export * from "./types.js";
export * from "./context.js";
export * from "./pipeline.js";
export * from "./idempotency.js";
export * from "./schema.js";
export * from "./engine.js";
export { createCroVetoGate, type CroVetoOptions } from "./cro-veto.js";
export { staticGate, velocityGate, positionGate, drawdownGate, reconciliationGate, shortSideGate };

/** The deterministic gates after the engine gate, in contract order. */
export const DETERMINISTIC_GATES: readonly RiskGate[] = [
  staticGate,
  velocityGate,
  positionGate,
  drawdownGate,
  reconciliationGate,
  shortSideGate,
];
