/**
 * Folding the rebuild's way (issue 11): what nothing reads until the end is done once, at the end.
 * Books are revalued once by revalueDeferred() (state.deferred), and orders seen in fills alone
 * become records only if something else about them arrives or they outlive the closing sweep
 * (state.fillOnly, settled by sweepReservations()). The rebuilt state and snapshot equal an eager
 * fold's (replay.test.ts, quote-conflation.test.ts).
 */
import { createFillOnlyOrders } from "./fill-only.js";
import type { EngineState } from "./model.js";

export function foldTheRebuildWay(state: EngineState): void {
  state.deferred = new Set();
  state.fillOnly = createFillOnlyOrders();
}
