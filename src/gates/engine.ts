/** The engine gate (fail closed): no envelope for the fund, or state not caught up with the streams. */
import type { FundState } from "../state/model.js";
import { deny, type Denial } from "./types.js";

export function checkEngine(fund: FundState | undefined, fundId: string, ready: boolean): Denial | undefined {
  if (!fund?.envelope) return deny("NO_ENVELOPE", `no risk envelope for fund ${fundId}`, { fund_id: fundId });
  if (!ready) return deny("STATE_NOT_READY", "engine state is not caught up with the streams", {});
  return undefined;
}
