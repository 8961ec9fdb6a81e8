/**
 * Red-team pass: the duplicate index (duplicate_window_ms) after an engine catches up from the
 * streams. The engine folds the consumed streams concurrently ("streams fold independently of how
 * they interleave", src/ingest/follower.ts), but a decision record's `dup_key` is pruned with the
 * window of the envelope in force *when the record is folded*
 * (src/state/projections/decisions.ts, countDuplicate: `pruneDuplicates(fund.dups, at −
 * (fund.envelope?.duplicateWindowMs ?? 0))`). A record folded before its fund's envelope prunes
 * with a window of 0, i.e. deletes the entry it just added: the duplicate is forgotten.
 *
 * Here RISK_ENVELOPES holds many other funds' envelopes ahead of this fund's, so an engine
 * started on an empty state directory (a new instance, a lost disk, a standby) folds the few
 * decision records before it reaches the envelope. The identical order under a new key 1 s later
 * must still be DUPLICATE_ORDER, as it is on the engine that decided the first one.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";

describe("red-team gates: the duplicate index after catching up from the streams", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  const engines: Engine[] = [];
  const clock = manualClock(NOW);

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    for (const e of engines) await e.close().catch(() => undefined);
    await server?.stop();
  });

  const outcome = (d: { approved: boolean; rejecting_gate: string; rejection_code: string }) =>
    d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`;

  async function start(): Promise<Engine> {
    const e = await startTestEngine(server.url, {
      clock,
      stateDir: mkdtempSync(join(tmpdir(), "mts-rt-dup-")),
    });
    engines.push(e);
    await waitFor(() => e.ready(), { message: "engine not ready", timeoutMs: 30000 });
    return e;
  }

  it("an engine started on an empty state dir still sees the duplicate", async () => {
    const F = "dupcatch";
    const e1 = await start();
    // other funds' envelopes, ahead of this fund's on RISK_ENVELOPES
    const pads: Promise<unknown>[] = [];
    for (let i = 0; i < 3000; i++) {
      pads.push(bus.js.publish(Subjects.envelopeUpdated(`pad-${i}`), JSON.stringify(envelope(`pad-${i}`))));
    }
    await Promise.all(pads);
    const seq = await bus.envelope(envelope(F, { duplicate_window_ms: 60000 }));
    await waitFor(() => applied(e1, "RISK_ENVELOPES", seq), { timeoutMs: 30000 });
    const same = { fund_id: F, symbol: "DC", quantity: "10", limit_price: "5" };
    expect(outcome(await bus.check(order(same)))).toBe("approved");
    clock.advance(1000);
    // the deciding engine: a duplicate
    expect(outcome(await bus.check(order(same)))).toBe("velocity/DUPLICATE_ORDER");
    await e1.close();

    await start();
    expect(outcome(await bus.check(order(same)))).toBe("velocity/DUPLICATE_ORDER");
  });
});
