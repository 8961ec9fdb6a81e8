/**
 * Odd input on the bus (found by a red-team pass):
 *  - a quote stamped a year ahead, then a correct one: live, the first ranks at most a second past
 *    when the stream stored it, so the second is the mark; `mts-risk explain` must replay QUOTES
 *    the same way (it used to rank the first at its own timestamp and decide otherwise);
 *  - a check body that is not UTF-8 is "not valid JSON", never decoded with U+FFFD in place of its
 *    bytes (two different orders would read the same, the second answered with the first's
 *    decision).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { setTimeout as delay } from "node:timers/promises";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, readStream, startTestEngine } from "../support/engine.js";
import { run } from "../support/cli.js";

describe("odd input on the bus", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock: { now: () => Date.now() } });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
  }, 30_000);
  afterAll(async () => {
    await nc?.close();
    await engine?.close().catch(() => undefined);
    await server?.stop();
  });

  it("explain ranks a quote stamped ahead as the engine did, and gives the same decision", async () => {
    await bus.instrument({ symbol: "FQ", asset_class: "equity" });
    const e = await bus.envelope(envelope("fq", { price_collar_pct: "0.05" }));
    const year = 365 * 86_400_000;
    await bus.quote("FQ", "50", "50", new Date(Date.now() + year).toISOString()); // a feed a year fast
    await delay(1500); // past the lead a quote may have on the stream's own time
    const q = await bus.quote("FQ", "99.9", "100.1", new Date().toISOString());
    await waitFor(() => applied(engine, "RISK_ENVELOPES", e) && applied(engine, "QUOTES", q));
    const o = order({ fund_id: "fq", symbol: "FQ", quantity: "10", limit_price: "100" });
    expect((await bus.check(o)).approved).toBe(true); // the mark is 100: inside the collar
    await waitFor(async () =>
      (await readStream<{ decision?: { order_id?: string } }>(nc, "RISK_DECISIONS")).some(
        (m) => m.data.decision?.order_id === o["order_id"],
      ),
    );
    const r = await run([
      "--nats-url",
      server.url,
      "explain",
      String(o["order_id"]),
      "--fund",
      "fq",
      "--json",
    ]);
    expect(r.err).toBe("");
    const x = JSON.parse(r.out) as { replay: { same: boolean; differences: unknown[] } };
    expect(x.replay.differences).toEqual([]);
    expect(x.replay.same).toBe(true);
  }, 30_000);

  it("refuses a check body that is not UTF-8 as not valid JSON, whatever bytes it holds", async () => {
    const e = await bus.envelope(envelope("u8"));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", e));
    // Latin-1 "é" / "è" (0xE9 / 0xE8) in the ids: not UTF-8
    const body = (c: number) => {
      const text = `{"order_id":"ord\u0000","idempotency_key":"key\u0000","fund_id":"u8","broker":"paper","symbol":"AAPL","side":"BUY","order_type":"LIMIT","quantity":"100","limit_price":"100"}`;
      const bytes = Buffer.from(text, "latin1");
      for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0) bytes[i] = c;
      return new Uint8Array(bytes);
    };
    for (const c of [0xe9, 0xe8]) {
      const d = await bus.check(body(c));
      expect(d).toMatchObject({ approved: false, rejection_code: "SCHEMA_INVALID" });
      expect(d.reason).toContain("not valid JSON");
    }
    // the same order in UTF-8 is decided as any other
    const ok = await bus.check(new TextEncoder().encode(new TextDecoder("latin1").decode(body(0xe9))));
    expect(ok.approved).toBe(true);
  });
});
