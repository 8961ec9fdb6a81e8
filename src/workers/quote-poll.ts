/**
 * Quote polling for symbols with an armed stop and no recent mark (no quote stream): asks
 * mts.v1.md.quote.<symbol> every poll_interval_s (crypto) or poll_interval_equities_s, and publishes
 * an answer newer than the mark in force to QUOTES (Nats-Msg-Id poll:<symbol>:<timestamp>), so that
 * it is the mark everywhere (every engine, the check, replays); the stop fires when it is applied.
 */
import { QuoteSchema } from "../contract/schemas.js";
import { Subjects } from "../contract/subjects.js";
import { markFresh } from "../gates/context.js";
import type { StopRecord } from "../state/model.js";
import { type WorkerContext, factsOf } from "./types.js";
import { FactIds, type QuoteBody } from "../facts/emitters.js";

/** The poller: called with the armed stops, resolves with how many quotes it published. */
export function createQuotePoller(ctx: WorkerContext): (armed: StopRecord[]) => Promise<number> {
  const { state, clock } = ctx;
  const cfg = ctx.config.synthetic_stop;
  const log = ctx.log.child({ module: "stops" });
  const lastPoll = new Map<string, number>();
  /** Asks for a quote of each symbol with an armed stop and no recent mark; publishes the answers to QUOTES. */
  return async function poll(armed: StopRecord[]): Promise<number> {
    const now = clock.now();
    const due = new Set<string>();
    for (const s of armed) {
      const mark = state.marks.get(s.symbol);
      const crypto = state.instruments.get(s.symbol)?.asset_class === "crypto";
      const every = (crypto ? cfg.poll_interval_s : cfg.poll_interval_equities_s) * 1000;
      if (!markFresh(mark, now, every) && now - (lastPoll.get(s.symbol) ?? 0) >= every) due.add(s.symbol);
    }
    let published = 0;
    await Promise.all(
      [...due].map(async (symbol) => {
        lastPoll.set(symbol, now);
        let raw: Record<string, unknown>;
        try {
          raw = (await ctx.nc.request(Subjects.mdQuote(symbol), "{}", { timeout: 2000 })).json();
        } catch {
          return; // no quote service for it: nothing to publish
        }
        const q = QuoteSchema.safeParse(raw);
        if (!q.success || q.data.symbol !== symbol) return;
        const mark = state.marks.get(symbol);
        if (mark && mark.ts >= q.data.timestamp) return; // not newer than the mark in force
        const body: Record<string, unknown> = {};
        for (const k of ["symbol", "bid", "ask", "bid_size", "ask_size", "venue", "timestamp"])
          if (raw[k] !== undefined) body[k] = raw[k];
        try {
          // the mark everywhere (every engine, replays); the stop fires when it is applied
          await factsOf(ctx).polledQuote(body as QuoteBody, FactIds.polledQuote(symbol, q.data.timestamp));
          published++;
        } catch (err) {
          log.error({ err, symbol }, "polled quote publish failed");
        }
      }),
    );
    return published;
  };
}
