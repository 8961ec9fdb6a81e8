/**
 * Broker-exit reconciler (ENGINE.md "Workers"): every `interval_s`, asks each broker a fund uses for
 * the fund's positions and compares them, symbol by symbol, with the engine's quantity at that
 * broker. Drift is alerted, then per `on_drift` only alerted, locked (until a clean pass) or adopted
 * (an ADJUSTMENT fill at average cost). A broker that does not answer is a `stale` alert: the fund's
 * pass is then not clean and nothing of that broker is touched. `adopt` acts only on a difference
 * seen with the same quantities in `confirm_passes` consecutive passes (a fill in flight, or one
 * glitched, e.g. empty, broker answer, must not rewrite a position); a pass where that broker did
 * not answer, or the symbol matched, starts the count again. `lock` acts at once.
 */
import { z } from "zod";
import { dec as decimalField, id } from "../contract/schemas.js";
import { Subjects } from "../contract/subjects.js";
import { type Dec, DIV_DP, ZERO, canon, dec, div } from "../decimal/index.js";
import type { FundState } from "../state/model.js";
import { iso } from "../time/clock.js";
import { type Worker, type WorkerContext, factsOf } from "./types.js";
import { FactIds, FactKeys } from "../facts/emitters.js";

/** The pass an adjustment fill id names (its last token: FactIds.adjustment). */
const passOf = (fillId: string) => Number(fillId.slice(fillId.lastIndexOf(":") + 1));

export type ReconcileAction = "none" | "alert" | "lock" | "unlock" | "adopt";

export interface Difference {
  symbol: string;
  engine: string;
  broker: string;
}

export interface ReconcileReport {
  at: string;
  funds: {
    fund: string;
    brokers: { broker: string; answered: boolean; differences: Difference[] }[];
    action: ReconcileAction;
    /** Every broker answered and nothing differs. */
    clean: boolean;
  }[];
}

/** The broker adapter's reply on mts.v1.broker.positions.<broker>. */
const PositionsReplySchema = z.object({
  positions: z.array(z.object({ symbol: id, quantity: decimalField("any") })),
});

type FundReport = ReconcileReport["funds"][number];
type Answer = { ok: true; positions: Map<string, Dec> } | { ok: false; reason: string };

export function createReconciler(ctx: WorkerContext): Worker & { pass(): Promise<ReconcileReport> } {
  const cfg = ctx.config.broker_exit_reconciler;
  const log = ctx.log.child({ worker: "reconciler" });
  const threshold = Math.max(1, cfg.alert_threshold);
  let running: Promise<ReconcileReport> | undefined;
  let stopped = false;
  /** Consecutive passes each differing symbol was seen with the same quantities, by fund/broker/symbol. */
  const streaks = new Map<string, { engine: string; broker: string; passes: number }>();
  const confirmPasses = cfg.confirm_passes;
  const facts = factsOf(ctx);
  const streakKey = (fund: string, broker: string, symbol: string) => `${fund}\u0001${broker}\u0001${symbol}`;

  /** Updates the streaks of one broker of a fund from this pass; returns the confirmed differences. */
  function confirm(fund: string, broker: string, answered: boolean, diffs: Difference[]): Difference[] {
    const prefix = `${fund}\u0001${broker}\u0001`;
    const seen = new Set(answered ? diffs.map((d) => streakKey(fund, broker, d.symbol)) : []);
    for (const k of streaks.keys()) if (k.startsWith(prefix) && !seen.has(k)) streaks.delete(k);
    const out: Difference[] = [];
    for (const d of answered ? diffs : []) {
      const k = streakKey(fund, broker, d.symbol);
      const prev = streaks.get(k);
      const passes = prev && prev.engine === d.engine && prev.broker === d.broker ? prev.passes + 1 : 1;
      streaks.set(k, { engine: d.engine, broker: d.broker, passes });
      if (passes >= confirmPasses) out.push(d);
    }
    return out;
  }

  async function ask(fund: string, broker: string): Promise<Answer> {
    try {
      const m = await ctx.nc.request(Subjects.brokerPositions(broker), JSON.stringify({ fund_id: fund }), {
        timeout: cfg.timeout_s * 1000,
      });
      const r = PositionsReplySchema.safeParse(m.json());
      if (!r.success) return { ok: false, reason: `malformed reply: ${r.error.issues[0]?.message ?? "?"}` };
      const positions = new Map<string, Dec>();
      for (const p of r.data.positions)
        positions.set(p.symbol, (positions.get(p.symbol) ?? ZERO).plus(p.quantity));
      return { ok: true, positions };
    } catch (err) {
      return { ok: false, reason: err instanceof Error ? err.message : String(err) };
    }
  }

  /**
   * The engine's quantity per symbol at `broker`, over all books of the fund (zeros left out),
   * with the fills the OMS reported on ended orders that FILLS has not brought yet (what those
   * orders still reserve): the broker's position already holds them, and taking their absence
   * for a drift would adopt it, then flip the position when the fills land.
   */
  function engineAt(fund: FundState, broker: string): Map<string, Dec> {
    const out = new Map<string, Dec>();
    for (const [symbol, b] of fund.books) {
      const q = b.pos.brokers.get(broker);
      if (q && !q.eq(ZERO)) out.set(symbol, q);
    }
    for (const r of ctx.state.orders.open(fund.id)) {
      if (!r.terminal || r.reserved.eq(ZERO) || (r.broker ?? "") !== broker) continue;
      const q = (out.get(r.symbol) ?? ZERO)[r.side === "SELL" ? "minus" : "plus"](r.reserved);
      if (q.eq(ZERO)) out.delete(r.symbol);
      else out.set(r.symbol, q);
    }
    return out;
  }

  function diff(fund: FundState, broker: string, theirs: Map<string, Dec>): Difference[] {
    const ours = engineAt(fund, broker);
    const out: Difference[] = [];
    for (const symbol of [...new Set([...ours.keys(), ...theirs.keys()])].sort()) {
      const e = ours.get(symbol) ?? ZERO;
      const b = theirs.get(symbol) ?? ZERO;
      if (!e.eq(b)) out.push({ symbol, engine: canon(e), broker: canon(b) });
    }
    return out;
  }

  /** Average cost of the fund's position in `symbol`, else its mark mid; undefined when neither. */
  function priceOf(fund: FundState, symbol: string): Dec | undefined {
    const p = fund.books.get(symbol)?.pos;
    const px =
      p && !p.qty.eq(ZERO) ? div(p.cost, p.qty.abs()) : ctx.state.marks.get(symbol)?.mid.round(DIV_DP, 2);
    return px && px.gt(ZERO) ? px : undefined;
  }

  async function adopt(fund: FundState, broker: string, diffs: Difference[], passMs: number): Promise<void> {
    const f = fund.id;
    const done: Record<string, string> = {};
    const failed: Record<string, string> = {};
    for (const d of diffs) {
      // an adjustment this engine published and has not read back: not adopted again meanwhile
      // (for at most one interval: the pass that follows it looks again)
      const prev = facts.latest("adjustment", FactKeys.adjustment(f, broker, d.symbol));
      if (
        prev &&
        prev.state !== "failed" &&
        !ctx.state.fillIds.has(prev.msgId) &&
        passMs - passOf(prev.msgId) < cfg.interval_s * 1000
      ) {
        log.info({ fund: f, broker, symbol: d.symbol, fill_id: prev.msgId }, "adjustment still in flight");
        continue;
      }
      const now = engineAt(fund, broker).get(d.symbol) ?? ZERO;
      if (!now.eq(dec(d.engine))) {
        // a fill reached the engine during this pass: the difference is stale; the next passes decide
        log.info({ fund: f, broker, symbol: d.symbol }, "position moved during the pass; not adopted");
        streaks.delete(streakKey(f, broker, d.symbol));
        continue;
      }
      const price = priceOf(fund, d.symbol);
      if (!price) {
        failed[d.symbol] = "no average cost or mark to price it";
        continue;
      }
      const delta = dec(d.broker).minus(dec(d.engine));
      const fillId = FactIds.adjustment(f, broker, d.symbol, passMs);
      const fill = {
        fill_id: fillId,
        order_id: fillId,
        fund_id: f,
        broker,
        symbol: d.symbol,
        side: delta.gt(ZERO) ? ("BUY" as const) : ("SELL" as const),
        quantity: canon(delta.abs()),
        price: canon(price),
        fees: "0",
        timestamp: iso(ctx.clock.now()),
        kind: "ADJUSTMENT" as const,
      };
      try {
        await facts.adjustment(fill);
        streaks.delete(streakKey(f, broker, d.symbol)); // a further adoption needs a fresh confirmation
        done[`${d.symbol}.side`] = fill.side;
        done[`${d.symbol}.quantity`] = fill.quantity;
        done[`${d.symbol}.price`] = fill.price;
        done[`${d.symbol}.fill_id`] = fillId;
      } catch (err) {
        log.error({ err, fund: f, broker, symbol: d.symbol }, "adjustment fill publish failed");
        failed[d.symbol] = "adjustment fill publish failed";
      }
    }
    const adopted = diffs.map((d) => d.symbol).filter((s) => done[`${s}.fill_id`] !== undefined);
    if (adopted.length > 0) {
      ctx.alerter.alert("adopt", f, `${f}: adopted ${broker}'s positions in ${adopted.join(",")}`, {
        broker,
        symbols: adopted.join(","),
        ...done,
      });
    }
    const symbols = Object.keys(failed);
    if (symbols.length > 0) {
      const why = symbols.map((x) => `${x}: ${failed[x]}`).join("; ");
      const details = Object.fromEntries(symbols.map((x) => [`${x}.reason`, failed[x]!]));
      ctx.alerter.alert("drift", f, `${f}: could not adopt ${broker}'s positions (${why})`, {
        broker,
        symbols: symbols.join(","),
        ...details,
      });
    }
  }

  async function reconcileFund(fund: FundState, passMs: number): Promise<FundReport> {
    const f = fund.id;
    const brokers = new Set(fund.envelope?.envelope.allowed_brokers ?? []);
    for (const b of fund.books.values()) for (const br of b.pos.brokers.keys()) brokers.add(br);
    const names = [...brokers].sort();
    const answers = await Promise.all(names.map((b) => ask(f, b)));
    const rows: FundReport["brokers"] = [];
    for (const [i, broker] of names.entries()) {
      const a = answers[i]!;
      if (!a.ok) {
        if (!stopped)
          ctx.alerter.alert("stale", f, `${f}: broker ${broker} did not answer: ${a.reason}`, { broker });
        rows.push({ broker, answered: false, differences: [] });
      } else {
        rows.push({ broker, answered: true, differences: diff(fund, broker, a.positions) });
      }
    }
    const confirmed = new Map(rows.map((r) => [r.broker, confirm(f, r.broker, r.answered, r.differences)]));
    const clean = rows.every((r) => r.answered && r.differences.length === 0);
    const drifting = rows.filter((r) => r.differences.length > 0);
    let action: ReconcileAction = "none";
    if (drifting.reduce((n, r) => n + r.differences.length, 0) >= threshold) {
      for (const r of drifting) {
        const details: Record<string, string> = {
          broker: r.broker,
          symbols: r.differences.map((d) => d.symbol).join(","),
        };
        for (const d of r.differences) {
          details[`${d.symbol}.engine`] = d.engine;
          details[`${d.symbol}.broker`] = d.broker;
        }
        const what = r.differences.map((d) => `${d.symbol} engine ${d.engine} broker ${d.broker}`).join("; ");
        ctx.alerter.alert("drift", f, `${f}: positions differ at ${r.broker}: ${what}`, details);
      }
      action = cfg.on_drift;
      if (cfg.on_drift === "lock" && !fund.lock) {
        const at = drifting.map((r) => r.broker);
        await setLock(f, true, `position drift at ${at.join(",")}`, passMs, at);
      } else if (cfg.on_drift === "adopt") {
        action = "alert"; // until a difference is confirmed
        for (const r of drifting) {
          const sure = confirmed.get(r.broker) ?? [];
          if (sure.length < r.differences.length)
            log.info(
              {
                fund: f,
                broker: r.broker,
                awaiting: r.differences.length - sure.length,
                confirm_passes: confirmPasses,
              },
              "drift not yet seen alike in confirm_passes consecutive passes; not adopted",
            );
          if (sure.length === 0) continue;
          action = "adopt";
          await adopt(fund, r.broker, sure, passMs);
        }
      }
    } else if (clean && fund.lock) {
      await setLock(f, false, "clean reconciliation pass", passMs, names);
      action = "unlock";
    }
    return { fund: f, brokers: rows, action, clean };
  }

  async function setLock(f: string, locked: boolean, reason: string, passMs: number, brokers: string[]) {
    const ev = locked ? "lock" : "unlock";
    const body = { fund_id: f, locked, reason, at: iso(ctx.clock.now()), brokers };
    try {
      await factsOf(ctx).reconcile(body, FactIds.reconcile(ev, f, passMs));
    } catch (err) {
      log.error({ err, fund: f }, `reconcile ${ev} publish failed`);
    }
  }

  async function run(): Promise<ReconcileReport> {
    const passMs = ctx.clock.now();
    const funds = [...ctx.state.funds.values()].filter(
      (f) => f.envelope !== undefined && (ctx.owns?.(f.id) ?? true),
    );
    const report: ReconcileReport = {
      at: iso(passMs),
      funds: await Promise.all(funds.map((f) => reconcileFund(f, passMs))),
    };
    ctx.onReconcile?.(report);
    const count = (p: (r: FundReport) => boolean) => report.funds.filter(p).length;
    log.info(
      {
        funds: report.funds.length,
        clean: count((r) => r.clean),
        drifting: count((r) => r.brokers.some((b) => b.differences.length > 0)),
        stale: count((r) => r.brokers.some((b) => !b.answered)),
        actions: report.funds.filter((r) => r.action !== "none").map((r) => `${r.fund}:${r.action}`),
        ms: ctx.clock.now() - passMs,
      },
      "reconciliation pass",
    );
    return report;
  }

  /** One pass at a time: a call while one runs gets the running one's promise. */
  function pass(): Promise<ReconcileReport> {
    running ??= run().finally(() => {
      running = undefined;
    });
    return running;
  }

  return {
    name: "reconciler",
    ...(cfg.enabled ? { intervalMs: cfg.interval_s * 1000 } : {}),
    pass,
    tick: pass,
    stop() {
      stopped = true;
    },
  };
}
