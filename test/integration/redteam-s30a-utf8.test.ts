/**
 * Red-team pass (stop 30a) on strict UTF-8 protobuf decoding (src/contract/codec.ts strictReader):
 * valid non-ASCII free-text fields (`order_id`, `idempotency_key`, `time_in_force`) must still
 * pass, and JSON and protobuf must remain one contract (CONTRACT.md "Encoding": "Protobuf and JSON
 * are one contract"), so a retry of the same order in the other encoding replays it. One
 * nats-server, one engine on a manual clock.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { headers as natsHeaders, type NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { decodeDecisionProto, encodeOrderProto } from "../../src/contract/codec.js";
import type { RiskDecision } from "../../src/contract/schemas.js";
import { Subjects } from "../../src/contract/subjects.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats } from "../support/nats.js";
import { Bus, Feeder, NOW, envelope, order, startTestEngine } from "../support/engine.js";

const outcome = (d: RiskDecision) => (d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`);

describe("red-team s30a: non-ASCII strings over protobuf and JSON", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  let feed: Feeder;
  const clock = manualClock(NOW);
  const F = "s30u";

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    feed = new Feeder(bus, () => engine, clock);
    await feed.envelope(envelope(F));
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  async function pb(body: Uint8Array): Promise<RiskDecision> {
    const h = natsHeaders();
    h.set("Content-Type", "application/x-protobuf");
    const m = await nc.request(Subjects.check, body, { timeout: 5000, headers: h });
    return decodeDecisionProto(m.data);
  }

  it("non-ASCII ids (2-, 3- and 4-byte UTF-8, a leading U+FEFF) are approved over protobuf and replay over JSON", async () => {
    const ids = ["ордер-1", "注文-２", "ord-😀-3", "\uFEFFord-4", "ord\u0000nul-5"];
    for (const [i, id] of ids.entries()) {
      const o = order({
        fund_id: F,
        symbol: "UTA",
        quantity: "1",
        order_id: id,
        idempotency_key: `κλειδί-${i}-${id}`,
        time_in_force: "Jusqu'à annulation",
      });
      const d = await pb(encodeOrderProto(o));
      expect(`${JSON.stringify(id)} ${outcome(d)} ${d.order_id === id}`).toBe(
        `${JSON.stringify(id)} approved true`,
      );
      // the same order in the other encoding is the same order
      const j = await bus.check(o);
      expect(`${JSON.stringify(id)} ${outcome(j)} ${j.details["replayed"]} ${j.order_id === id}`).toBe(
        `${JSON.stringify(id)} approved true true`,
      );
      // and again over protobuf
      const p = await pb(encodeOrderProto(o));
      expect(`${outcome(p)} ${p.details["replayed"]}`).toBe("approved true");
    }
  });

  it("a JSON order first, then its protobuf retry, replays (non-ASCII key)", async () => {
    const o = order({ fund_id: F, symbol: "UTB", quantity: "2", idempotency_key: "clé-ü-€-𝄞" });
    expect(outcome(await bus.check(o))).toBe("approved");
    const p = await pb(encodeOrderProto(o));
    expect(`${outcome(p)} ${p.details["replayed"]}`).toBe("approved true");
  });

  it("an order_id whose protobuf bytes are not UTF-8 is SCHEMA_INVALID, never read as another id", async () => {
    const o = order({ fund_id: F, symbol: "UTC", quantity: "1", order_id: "bad-é" });
    const bytes = encodeOrderProto(o);
    const at = bytes.findIndex((b, i) => b === 0xc3 && bytes[i + 1] === 0xa9);
    expect(at).toBeGreaterThan(0);
    const broken = Uint8Array.from(bytes);
    broken[at] = 0xff;
    broken[at + 1] = 0xfe;
    const d = await pb(broken);
    expect(outcome(d)).toBe("schema/SCHEMA_INVALID");
  });
});
