/**
 * Forwarding a check to the engine that owns its fund (src/service/forward.ts), on a real
 * nats-server: an owner whose heartbeat is only late in this engine's view is asked all the same;
 * if nobody listens on its subject, the check is answered not ready at once when no engine could
 * take the fund over, and held for the takeover when one can.
 */
import type { Msg, NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Route } from "../../src/ownership/manager.js";
import { createForwarder } from "../../src/service/forward.js";
import { connectTest, startTestNats } from "../support/nats.js";

const te = new TextEncoder();
const td = new TextDecoder();

describe("forwarding a check to an owner judged dead here", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let n = 0;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  /** An engine's check subject routed by `route`; each answer names who gave it. */
  function engine(route: () => Route) {
    const subject = `test.check.${++n}`;
    let wake: () => void = () => undefined;
    const forwarder = createForwarder({
      nc,
      instance: `engine-${n}`,
      holdMs: 60_000, // longer than the test: an answer came without waiting it out
      router: { route, changed: () => new Promise<void>((r) => (wake = r)) },
    });
    const sub = nc.subscribe(subject, {
      callback: (_err, msg: Msg) => {
        void forwarder.dispatch(msg, "f1", false, {
          local: () => {
            msg.respond(te.encode("local"));
            return Promise.resolve();
          },
          notReady: (why) => msg.respond(te.encode(`not ready: ${why}`)),
        });
      },
    });
    const ask = async () => td.decode((await nc.request(subject, te.encode("{}"), { timeout: 15_000 })).data);
    return { ask, changed: () => wake(), stop: () => sub.drain() };
  }

  it("relays the owner's answer when it does answer", async () => {
    const owner = nc.subscribe("test.owner.alive", {
      callback: (_e, m) => void m.respond(te.encode("owner")),
    });
    const e = engine(() => ({
      kind: "remote",
      subject: "test.owner.alive",
      owner: "a",
      unsure: "unavailable",
    }));
    try {
      expect(await e.ask()).toBe("owner");
    } finally {
      await e.stop();
      await owner.drain();
    }
  });

  it("answers not ready at once when nobody listens and no engine could take the fund", async () => {
    const e = engine(() => ({
      kind: "remote",
      subject: "test.owner.gone",
      owner: "a",
      unsure: "unavailable",
    }));
    try {
      expect(await e.ask()).toBe("not ready: state not ready");
    } finally {
      await e.stop();
    }
  });

  it("stops waiting for an owner that does not answer as soon as another engine holds the fund", async () => {
    // a paused owner: it answers only once the OMS has its answer, or after 2 s (within the 2.5 s a
    // forward waits); a forwarder that kept waiting for it would relay "owner" instead of "local"
    let taken = false;
    let answered = false;
    const owner = nc.subscribe("test.owner.paused", {
      callback: (_e, m) => {
        taken = true; // meanwhile another engine takes the fund: this one owns it now
        const late = Date.now() + 2000;
        const reply = () => {
          if (answered || Date.now() >= late) m.respond(te.encode("owner"));
          else setTimeout(reply, 10);
        };
        reply();
      },
    });
    const e = engine(() =>
      taken
        ? { kind: "local" }
        : { kind: "remote", subject: "test.owner.paused", owner: "a", unsure: "wait" },
    );
    try {
      const answer = await e.ask();
      answered = true;
      expect(answer).toBe("local");
    } finally {
      await e.stop();
      await owner.drain();
    }
  });

  it("holds the check when nobody listens but another engine will take the fund, until it does", async () => {
    let taken = false;
    let tries = 0;
    const e = engine(() => {
      tries++;
      return taken
        ? { kind: "local" }
        : { kind: "remote", subject: "test.owner.gone", owner: "a", unsure: "wait" };
    });
    try {
      const answer = e.ask();
      for (let i = 0; tries < 3; i++) {
        if (i > 1000) throw new Error("the check was not routed again");
        await new Promise((r) => setTimeout(r, 10));
      }
      taken = true; // the takeover: this engine owns the fund now
      e.changed();
      expect(await answer).toBe("local");
    } finally {
      await e.stop();
    }
  });
});
