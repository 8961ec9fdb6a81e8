/**
 * warn_at_pct through the bus: one limit_warning each time a measure crosses its share upward. A
 * measure that an approved order took above its share, that fell back when the OMS cancelled the
 * order, and that the next approved order takes above again, has crossed upward twice.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, readStream, startTestEngine } from "../support/engine.js";

const F = "warn2";

describe("limit_warning on every upward crossing", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { flags: { "synthetic_stop.enabled": false } });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    const seq = await bus.envelope(envelope(F, { warn_at_pct: "0.8", max_gross_exposure_pct: "1" }));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  const warnings = async () =>
    (
      await readStream<{ details: Record<string, string> }>(
        nc,
        "RISK_CONTROL",
        Subjects.alert("limit_warning", F),
      )
    ).map((a) => `${a.data.details["measure"]}:${a.data.details["value"]}`);

  it("warns again when an approval takes gross above its share after a cancel took it back below", async () => {
    // gross limit 1 × NAV 1 000 000; share 0.8: 800 000
    const first = order({ fund_id: F, symbol: "WRN", quantity: "9000", limit_price: "100" }); // 900 000
    expect((await bus.check(first)).approved).toBe(true);
    await waitFor(async () => (await warnings()).length === 1);
    const ev = await bus.orderEvent("cancelled", F, String(first["order_id"]));
    await waitFor(() => applied(engine, "OMS_ORDERS", ev));
    expect(engine.observe.order(F, String(first["order_id"]))?.reserved).toBe("0");
    const second = order({ fund_id: F, symbol: "WRN", quantity: "8500", limit_price: "100" }); // 850 000
    expect((await bus.check(second)).approved).toBe(true);
    await waitFor(async () => (await warnings()).length === 2, { message: "no second limit_warning" });
    expect(await warnings()).toEqual(["gross:900000", "gross:850000"]);
  });
});
