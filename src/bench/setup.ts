/** Setting up the bus scenarios' book, and the restart-to-ready measurement at their end. */
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { statSync } from "node:fs";
import { join } from "node:path";
import { Subjects } from "../contract/subjects.js";
import {
  FUNDS,
  SYMBOLS,
  envelope,
  fill,
  fundId,
  holding,
  instrument,
  order,
  openingFill,
  quote,
  symbolId,
} from "./book.js";
import { type EngineProcess, spawnEngine, startupMarks, waitProbeReady, waitStatus } from "./engineproc.js";
import { publishAll } from "./publish.js";
import { progress } from "./util.js";

export async function publishBook(nc: NatsConnection, positions: number) {
  const js = jetstream(nc);
  const t0 = performance.now();
  const now = new Date().toISOString();
  const refdata = await publishAll(js, SYMBOLS, (s) => ({
    subject: Subjects.instrument(symbolId(s)),
    data: JSON.stringify(instrument(s)),
  }));
  const envelopes = await publishAll(js, FUNDS, (f) => ({
    subject: Subjects.envelopeUpdated(fundId(f)),
    data: JSON.stringify(envelope(f)),
  }));
  const quotes = await publishAll(js, SYMBOLS, (s) => ({
    subject: Subjects.quote(symbolId(s)),
    data: JSON.stringify(quote(s, now)),
  }));
  const fills = await publishAll(
    js,
    positions,
    (i) => {
      const body = openingFill(i);
      return {
        subject: Subjects.fill(String(body.fund_id), String(body.symbol)),
        data: JSON.stringify(body),
        msgID: String(body.fill_id),
      };
    },
    { label: "opening fills" },
  );
  return {
    cursors: { ...refdata.last_seq, ...envelopes.last_seq, ...quotes.last_seq, ...fills.last_seq },
    counts: {
      funds: FUNDS,
      symbols: SYMBOLS,
      open_positions: positions,
      opening_fills_per_s: fills.per_s,
      publish_s: +((performance.now() - t0) / 1000).toFixed(1),
    },
  };
}

/** Stop the engine (it flushes its snapshot), publish a tail of fills, start it, time until ready. */
export async function restartToReady(
  cfg: { workDir: string; cpuProfileDir?: string | undefined },
  nc: NatsConnection,
  engine: EngineProcess,
  url: string,
  stateDir: string,
): Promise<{ engine: EngineProcess; report: Record<string, unknown> }> {
  const stopped = performance.now();
  await engine.child.stop();
  const stopMs = Math.round(performance.now() - stopped);
  const snapshotBytes = statSync(join(stateDir, "snapshot.sqlite")).size;
  const TAIL = 1000;
  const js = jetstream(nc);
  const tail = await publishAll(js, TAIL, (i) => {
    const f = i % FUNDS;
    const body = fill(10_000_000 + i, f, holding(f, i % 200), "BUY", "1", "100.5");
    return {
      subject: Subjects.fill(String(body.fund_id), String(body.symbol)),
      data: JSON.stringify(body),
      msgID: String(body.fill_id),
    };
  });
  const next = spawnEngine({
    url,
    stateDir,
    logFile: join(cfg.workDir, "engine-restart.log"),
    cpuProfileDir: cfg.cpuProfileDir,
  });
  const readyMs = await waitProbeReady(nc, next, Subjects.check);
  const status = await waitStatus(nc, next, { cursors: tail.last_seq });
  return {
    engine: next,
    report: {
      ready_ms: readyMs,
      tail_events: TAIL,
      snapshot_mb: +(snapshotBytes / 2 ** 20).toFixed(1),
      stop_ms: stopMs,
      marks_ms: startupMarks(next),
      ready_confirmed_by_status: status.ready === true,
    },
  };
}

/**
 * `count` checks as fast as the target answers them (a window of requests in flight, closed loop):
 * decisions for the restart figure, which needs a snapshot holding ≥ 400 k of them. At most
 * `maxSeconds` (240 by default), so a slow engine cannot blow the full run's budget.
 */
export async function topUp(
  nc: NatsConnection,
  subject: string,
  count: number,
  o: { window?: number; maxSeconds?: number } = {},
): Promise<{ answered: number; failed: number; seconds: number; per_s: number; cut_short: boolean }> {
  const t0 = performance.now();
  const window = o.window ?? 256;
  const until = t0 + (o.maxSeconds ?? 240) * 1000;
  let cutShort = false;
  let next = 0;
  let answered = 0;
  let failed = 0;
  const prefix = `topup-${Date.now().toString(36)}`;
  const lane = async (): Promise<void> => {
    while (next < count) {
      if (performance.now() > until) {
        cutShort = true; // the budget of a full run: the restart row then says how many it had
        return;
      }
      const i = next++;
      try {
        await nc.request(subject, JSON.stringify(order(prefix, i)), { timeout: 10_000 });
        answered++;
      } catch {
        failed++;
      }
      if (i > 0 && i % 100_000 === 0) progress(`top-up: ${i} of ${count}`);
    }
  };
  await Promise.all(Array.from({ length: window }, lane));
  const seconds = (performance.now() - t0) / 1000;
  return {
    answered,
    failed,
    seconds: +seconds.toFixed(1),
    per_s: Math.round(answered / seconds),
    cut_short: cutShort,
  };
}
