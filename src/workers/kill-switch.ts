/**
 * Kill switch: a KILL_SWITCH halt also asks the OMS to cancel every open order of the fund
 * (mts.v1.oms.cancel_all.<fund>, OMS_INTENTS) and, if OMS_ORDERS still shows open orders for it
 * after kill_switch.verify_s, alerts with their ids (seed 002, RISK-001).
 */
import { Subjects } from "../contract/subjects.js";
import { isOpenOrder } from "../state/index.js";
import { iso } from "../time/clock.js";
import type { Change, Worker, WorkerContext } from "./types.js";

export interface KillSwitchWorker extends Worker {
  /** Verifies every kill whose time has come; returns the open order ids found per fund. */
  verify(): Record<string, string[]>;
}

export function createKillSwitch(ctx: WorkerContext): KillSwitchWorker {
  const { state, clock } = ctx;
  const log = ctx.log.child({ module: "kill-switch" });
  const verifyMs = ctx.config.kill_switch.verify_s * 1000;
  const due = new Map<string, { at: number; seq: number }>(); // fund -> when to verify

  function arm(fund: string): void {
    if (ctx.owns && !ctx.owns(fund)) return; // another engine owns the fund
    const h = state.funds.get(fund)?.halts.get("KILL_SWITCH");
    if (!h || due.get(fund)?.seq === h.seq) return;
    due.set(fund, { at: Date.parse(h.since) + verifyMs, seq: h.seq });
    ctx
      .publish(
        Subjects.cancelAll(fund),
        { fund_id: fund, reason: `kill switch: ${h.reason}`, at: iso(clock.now()) },
        `cancel_all:${fund}:${h.seq}`,
      )
      .catch((err: unknown) => log.error({ err, fund }, "cancel_all publish failed"));
  }

  function verify(): Record<string, string[]> {
    const now = clock.now();
    const found: Record<string, string[]> = {};
    for (const [fund, d] of due) {
      if (now < d.at) continue;
      if (ctx.owns && !ctx.owns(fund)) {
        due.delete(fund); // handed over: its owner verifies it
        continue;
      }
      due.delete(fund);
      const open = [...state.orders.values()]
        .filter((r) => r.fund === fund && isOpenOrder(r))
        .map((r) => r.orderId)
        .sort();
      found[fund] = open;
      if (open.length === 0) continue;
      ctx.alerter.alert(
        "kill_switch",
        fund,
        `${open.length} order(s) still open ${ctx.config.kill_switch.verify_s}s after the kill switch`,
        { order_ids: open.join(","), count: String(open.length) },
        `kill-verify:${fund}:${d.seq}`,
      );
    }
    return found;
  }

  return {
    name: "kill-switch",
    intervalMs: 1000,
    verify,
    onReady() {
      for (const f of state.funds.values()) if (f.halts.has("KILL_SWITCH")) arm(f.id);
    },
    onChange(c: Change) {
      if (c.kind === "control" && c.what === "halt") arm(c.fund);
    },
    tick: () => verify(),
  };
}
