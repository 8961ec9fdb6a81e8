/**
 * Kill switch: every press (a Halt of severity KILL_SWITCH, also one repeated while the fund is
 * already killed) asks the OMS to cancel every open order of the fund (mts.v1.oms.cancel_all.<fund>,
 * OMS_INTENTS, `Nats-Msg-Id` cancel_all:<fund>:<that Halt's stream sequence>, the id `mts-risk halt
 * --kill` uses for the same press) and, if OMS_ORDERS still shows open orders for it
 * kill_switch.verify_s after the engine applied that press (on the engine's clock, not the halt's
 * `at`), alerts with their ids (seed 002, RISK-001).
 */
import { isOpenOrder } from "../state/index.js";
import { iso } from "../time/clock.js";
import { type Change, type Worker, type WorkerContext, factsOf } from "./types.js";
import { FactIds } from "../facts/emitters.js";

export interface KillSwitchWorker extends Worker {
  /** Verifies every press whose time has come; returns the open order ids found per fund. */
  verify(): Record<string, string[]>;
}

/** The Nats-Msg-Id of the cancel_all for the KILL_SWITCH Halt stored at `haltSeq` (one per press). */
export const cancelAllMsgId = (fund: string, haltSeq: number): string => FactIds.cancelAll(fund, haltSeq);

export function createKillSwitch(ctx: WorkerContext): KillSwitchWorker {
  const { state, clock } = ctx;
  const log = ctx.log.child({ module: "kill-switch" });
  const facts = factsOf(ctx);
  const verifyMs = ctx.config.kill_switch.verify_s * 1000;
  /** Presses to verify, by `<fund>:<seq>`: when (engine clock), for which fund and press. */
  const due = new Map<string, { fund: string; seq: number; at: number }>();
  /** Presses this process has handled (cancel_all published, verification armed). */
  const handled = new Set<string>();
  /** Presses whose cancel_all could not be published: pressed again on the next tick (same id). */
  const failed = new Map<string, { fund: string; seq: number }>();

  /** Handles the press at `seq` (a KILL_SWITCH Halt in force for the fund); once per press. */
  function press(fund: string, seq: number): void {
    if (ctx.owns && !ctx.owns(fund)) return; // another engine owns the fund
    const h = state.funds.get(fund)?.halts.get("KILL_SWITCH");
    const k = `${fund}:${seq}`;
    if (!h || handled.has(k)) return;
    handled.add(k);
    due.set(k, { fund, seq, at: clock.now() + verifyMs });
    facts
      .cancelAll(
        { fund_id: fund, reason: `kill switch: ${h.reason}`, at: iso(clock.now()) },
        cancelAllMsgId(fund, seq),
      )
      .catch((err: unknown) => {
        // Not handled after all: the OMS was not asked to cancel. Pressed again each second until
        // the stream takes it (its message id makes a copy that did land a duplicate).
        log.error({ err, fund }, "cancel_all publish failed; retried");
        handled.delete(k);
        failed.set(k, { fund, seq });
      });
  }

  function retryFailed(): void {
    for (const [k, p] of failed) {
      failed.delete(k);
      press(p.fund, p.seq); // a no-op once the fund is resumed (no KILL_SWITCH halt in force)
    }
  }

  function verify(): Record<string, string[]> {
    const now = clock.now();
    const found: Record<string, string[]> = {};
    for (const [k, d] of due) {
      if (now < d.at) continue;
      due.delete(k);
      if (ctx.owns && !ctx.owns(d.fund)) continue; // handed over: its owner verifies it
      const open = [...state.orders.open(d.fund)]
        .filter((r) => isOpenOrder(r))
        .map((r) => r.orderId)
        .sort();
      found[d.fund] = open;
      if (open.length === 0) continue;
      ctx.alerter.alert(
        "kill_switch",
        d.fund,
        `${open.length} order(s) still open ${ctx.config.kill_switch.verify_s}s after the kill switch`,
        { order_ids: open.join(","), count: String(open.length) },
        `kill-verify:${d.fund}:${d.seq}`,
      );
    }
    return found;
  }

  return {
    name: "kill-switch",
    intervalMs: 1000,
    verify,
    onReady() {
      for (const f of state.funds.values()) {
        const h = f.halts.get("KILL_SWITCH");
        if (h) press(f.id, h.lastSeq ?? h.seq);
      }
    },
    onChange(c: Change) {
      if (c.kind !== "control" || c.what !== "halt") return;
      const h = state.funds.get(c.fund)?.halts.get("KILL_SWITCH");
      // this message is a KILL_SWITCH press when the halt in force was (re)pressed at its sequence
      if (h && (h.lastSeq ?? h.seq) === c.seq) press(c.fund, c.seq);
    },
    tick: () => {
      retryFailed();
      return verify();
    },
  };
}
