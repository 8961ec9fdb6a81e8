/**
 * The engine gate (fail closed): state not caught up with the streams, or no envelope for the fund.
 * Readiness is judged first: an engine that has not caught up cannot establish that a fund has no
 * envelope (it may be in the tail it has not applied yet), so it answers STATE_NOT_READY, which an
 * OMS retries, rather than NO_ENVELOPE, which it would take as the fund's configuration.
 */
import type { FundState } from "../state/model.js";
import { deny, type Denial } from "./types.js";

export function checkEngine(fund: FundState | undefined, fundId: string, ready: boolean): Denial | undefined {
  if (!ready) return deny("STATE_NOT_READY", "engine state is not caught up with the streams", {});
  if (!fund?.envelope) return deny("NO_ENVELOPE", `no risk envelope for fund ${fundId}`, { fund_id: fundId });
  return undefined;
}
