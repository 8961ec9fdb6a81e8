/**
 * QUOTES keeps the last quote of each symbol (one message per subject: a file-backed stream keeping
 * more costs nats-server 2.9 about seven times the CPU, README "QUOTES keeps one quote per
 * symbol"). What a mark needs is still there: the latest quote of each symbol, for a fresh engine.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, NOW, applied, readStream, startTestEngine } from "../support/engine.js";

describe("QUOTES retention", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  const clock = manualClock(NOW);

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it("given three quotes of a symbol, then the stream holds only the last, and an engine started afterwards from an empty state takes its mark from it", async () => {
    let first: Engine | undefined = await startTestEngine(server.url, { clock });
    try {
      for (const [bid, ask] of [
        ["10", "12"],
        ["20", "22"],
        ["30", "32"],
      ] as const) {
        const seq = await bus.quote("LQ1", bid, ask, NOW);
        await waitFor(() => applied(first!, "QUOTES", seq));
      }
      await bus.quote("LQ2", "5", "7", NOW);
      expect(first.observe.mark("LQ1")?.mid).toBe("31");
    } finally {
      await first.close();
      first = undefined;
    }
    const kept = await readStream<{ symbol: string; bid: string }>(nc, "QUOTES");
    expect(kept.map((m) => `${m.data.symbol}:${m.data.bid}`)).toEqual(["LQ1:30", "LQ2:5"]);
    const fresh = await startTestEngine(server.url, { clock });
    try {
      await waitFor(() => fresh.observe.mark("LQ2")?.mid === "6");
      expect(fresh.observe.mark("LQ1")?.mid).toBe("31");
    } finally {
      await fresh.close();
    }
  });
});
