/**
 * Races: 1 000 concurrent orders against headroom for exactly N approve exactly N, with one engine,
 * and also when the engine stops mid-burst (gracefully or as a crash) and the OMS retries timed-out
 * requests with the same idempotency key.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, startTestEngine } from "../support/engine.js";

const ORDERS = 1000;
const N = 100; // 100 000 of headroom, 1 000 per order

describe("concurrent orders against limited headroom", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let bus: Bus;
  let stateDir: string;
  let engine: Engine | undefined;

  beforeEach(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    stateDir = mkdtempSync(join(tmpdir(), "mts-race-"));
    engine = await startTestEngine(server.url, { stateDir });
    const seq = await bus.envelope(envelope("race", { max_position_pct: "0.10" }));
    await waitFor(() => applied(engine!, "RISK_ENVELOPES", seq));
  });
  afterEach(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  const orders = () =>
    Array.from({ length: ORDERS }, (_, i) =>
      order({
        fund_id: "race",
        order_id: `race-${i}`,
        idempotency_key: `race-key-${i}`,
        quantity: "10",
        limit_price: "100",
      }),
    );

  /** The OMS: send until a decision comes back, retrying with the same key on timeout/no responders. */
  async function sendWithRetry(o: Record<string, unknown>): Promise<RiskDecision> {
    for (let attempt = 0; attempt < 200; attempt++) {
      try {
        const d = await bus.check(o, undefined, 2000);
        if (d.rejection_code !== "STATE_NOT_READY") return d;
      } catch {
        // timeout or no responders while the engine is down: retry with the same key
      }
      await new Promise((r) => setTimeout(r, 25));
    }
    throw new Error(`no decision for ${String(o["order_id"])}`);
  }

  it("approves exactly N with one engine", async () => {
    // the OMS retries a STATE_NOT_READY (a journal write that timed out on a loaded machine) with
    // the same key, as it must: exactly N approvals either way, never more
    const decisions = await Promise.all(orders().map((o) => sendWithRetry(o)));
    expect(decisions.filter((d) => d.approved)).toHaveLength(N);
    expect(
      decisions.filter((d) => !d.approved).every((d) => d.rejection_code === "MAX_POSITION_EXCEEDED"),
    ).toBe(true);
  });

  it.each([["restart", "close"] as const, ["crash", "abort"] as const])(
    "approves exactly N when the engine goes down (%s) mid-burst and the OMS retries",
    async (_name, how) => {
      const list = orders();
      let answered = 0;
      const all = Promise.all(
        list.map((o) =>
          sendWithRetry(o).then((d) => {
            answered++;
            return d;
          }),
        ),
      );
      await waitFor(() => answered >= N / 2, { timeoutMs: 20000, intervalMs: 1 });
      await (how === "close" ? engine!.close() : engine!.abort());
      engine = await startTestEngine(server.url, { stateDir });
      const decisions = await all;
      expect(decisions).toHaveLength(ORDERS);
      expect(decisions.filter((d) => d.approved)).toHaveLength(N);
      // asking again for every key replays the same answers: nothing new is approved
      const again = await Promise.all(list.map((o) => sendWithRetry(o)));
      expect(again.filter((d) => d.approved)).toHaveLength(N);
      expect(again.every((d) => d.details["replayed"] === "true")).toBe(true);
    },
  );
});
