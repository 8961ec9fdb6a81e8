/**
 * Several engines: an approval whose journal write is fenced because its fund moved to another
 * engine while it was decided (a planned handover that outran a slow journal) certainly did not
 * land. It is undone here and the check routed again, so the OMS gets the new owner's answer instead
 * of STATE_NOT_READY; routed again once at most, and answered STATE_NOT_READY if it still routes
 * here (never decided a second time on the state the fence proved stale).
 * Real nats-server, real journal, forwarder and check service; the "new owner" is a responder on
 * its own subject, and the fence is this engine's `mayWrite` turning false as the write is queued.
 */
import { jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJsPublisher } from "../../src/bus/js-publisher.js";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { Subjects } from "../../src/contract/subjects.js";
import { silentLogger } from "../../src/obs/log.js";
import type { Route } from "../../src/ownership/manager.js";
import { createCheckService } from "../../src/service/check.js";
import { createForwarder } from "../../src/service/forward.js";
import { createFundJournal } from "../../src/service/fund-journal.js";
import { key2 } from "../../src/state/model.js";
import { connectTest, startTestNats } from "../support/nats.js";
import { FUND, Feed, NOW_ISO, rawOrder, testDecider } from "../unit/fixtures.js";

const te = new TextEncoder();
const td = new TextDecoder();
const NEW_OWNER = "test.engine.new-owner.check";

describe("check service: an approval fenced by a handover", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: "RISK_DECISIONS", subjects: ["mts.v1.risk.decision.>"] });
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  /** One engine whose fund moves away (its writes fenced) as its first approval is journaled. */
  function engine(o: { routeAfterFence: Route }) {
    const feed = new Feed();
    feed.envelope();
    const state = feed.state;
    const decider = testDecider(feed);
    let owned = true;
    const publisher = createJsPublisher(nc, { timeoutMs: 2000 });
    const journal = createFundJournal({ publisher, state, mayWrite: () => owned });
    const forwarder = createForwarder({
      nc,
      instance: "old-owner",
      holdMs: 3000,
      router: {
        route: (fund) => (fund === undefined || owned ? { kind: "local" } : o.routeAfterFence),
        changed: () => new Promise(() => undefined),
      },
    });
    const decided: string[] = [];
    const service = createCheckService({
      nc,
      decider,
      state,
      log: silentLogger,
      journal,
      forwarder,
      instanceSubject: "test.engine.old-owner.check",
      clock: () => NOW_ISO,
      // the handover: the fund moves as the decision's write is queued
      onDecision: (e) => {
        decided.push(`${e.decision.approved}`);
        owned = false;
      },
    });
    service.listen();
    return { state, decided, service, publisher };
  }

  const check = async (order: Record<string, unknown>) =>
    JSON.parse(
      td.decode(
        (await nc.request(Subjects.check, te.encode(JSON.stringify(order)), { timeout: 10_000 })).data,
      ),
    ) as Record<string, unknown>;

  it("is undone and answered by the new owner, not STATE_NOT_READY", async () => {
    const received: string[] = [];
    const owner = nc.subscribe(NEW_OWNER, {
      callback: (_err, m) => {
        const order = JSON.parse(td.decode(m.data)) as { order_id: string };
        received.push(order.order_id);
        m.respond(
          te.encode(JSON.stringify({ order_id: order.order_id, approved: true, reason: "new owner" })),
        );
      },
    });
    const e = engine({ routeAfterFence: { kind: "remote", subject: NEW_OWNER, owner: "new-owner" } });
    try {
      const order = rawOrder();
      const d = await check(order);
      expect(d).toMatchObject({ order_id: order["order_id"], approved: true, reason: "new owner" });
      expect(received).toEqual([order["order_id"]]);
      expect(e.decided).toEqual(["true"]); // decided here once, then handed over
      // nothing of the fenced approval is left here: no idempotency record, nothing reserved
      expect(e.state.idem.get(key2(FUND, String(order["idempotency_key"])))).toBeUndefined();
      const rec = e.state.orders.hot(key2(FUND, String(order["order_id"])));
      expect(rec?.approved.toString() ?? "0").toBe("0");
    } finally {
      await e.service.stop();
      e.publisher.close();
      await owner.drain();
    }
  });

  it("is answered STATE_NOT_READY when still routed here after the fence (not decided again, no loop)", async () => {
    const e = engine({ routeAfterFence: { kind: "local" } });
    try {
      const order = rawOrder();
      const d = await check(order);
      expect(d).toMatchObject({
        order_id: order["order_id"],
        approved: false,
        rejection_code: "STATE_NOT_READY",
        reason: "decision journal unavailable",
      });
      // not decided a second time on the state the fence proved stale (it would count twice)
      expect(e.decided).toEqual(["true"]);
    } finally {
      await e.service.stop();
      e.publisher.close();
    }
  });
});
