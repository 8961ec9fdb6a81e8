/** The engine's readiness state machine (src/engine/readiness.ts): what makes it change, and why not ready. */
import { describe, expect, it } from "vitest";
import type { StreamName } from "../../src/contract/subjects.js";
import { createReadiness, lagOf } from "../../src/engine/readiness.js";

function machine() {
  const world = { stale: false, behind: 7, lag: new Map([["FILLS", 3]]) };
  const r = createReadiness({ stale: () => world.stale, behind: () => world.behind, lag: () => world.lag });
  return { r, world };
}

describe("engine readiness", () => {
  it("given a fresh start, it is catching up (with the backlog) until the follower caught up", () => {
    const { r } = machine();
    expect(r.isReady()).toBe(false);
    expect(r.readiness()).toEqual({ ready: false, reason: "catching_up", detail: { behind: 7 } });
    expect(r.caughtUp()).toBe(true);
    expect(r.isReady()).toBe(true);
    expect(r.readiness()).toEqual({ ready: true });
  });

  it("given ready, when the connection drops it is not ready and must catch up again after the reconnect", () => {
    const { r } = machine();
    r.caughtUp();
    r.disconnected();
    expect(r.connected()).toBe(false);
    expect(r.caught()).toBe(false);
    expect(r.readiness()).toEqual({ ready: false, reason: "nats_disconnected" });
    r.reconnected();
    expect(r.connected()).toBe(true);
    expect(r.isReady()).toBe(false);
    expect(r.readiness().reason).toBe("catching_up");
    r.caughtUp();
    expect(r.isReady()).toBe(true);
  });

  it("given ready, while the state is stale it is not ready, with the lag; fresh again, ready", () => {
    const { r, world } = machine();
    r.caughtUp();
    world.stale = true;
    expect(r.isReady()).toBe(false);
    expect(r.readiness()).toEqual({ ready: false, reason: "stale", detail: { lag: { FILLS: 3 } } });
    world.stale = false;
    expect(r.isReady()).toBe(true);
  });

  it("when closing, it is shutting down for good: a later catch-up does not make it ready", () => {
    const { r } = machine();
    r.caughtUp();
    r.close();
    expect(r.closing()).toBe(true);
    expect(r.readiness()).toEqual({ ready: false, reason: "shutting_down" });
    r.reconnected();
    expect(r.caughtUp()).toBe(false);
    expect(r.isReady()).toBe(false);
  });

  it("reasons come in order: shutting down, then disconnected, then catching up, then stale", () => {
    const { r, world } = machine();
    world.stale = true;
    r.disconnected();
    expect(r.readiness().reason).toBe("nats_disconnected");
    r.reconnected();
    expect(r.readiness().reason).toBe("catching_up");
    r.caughtUp();
    expect(r.readiness().reason).toBe("stale");
    r.disconnected();
    r.close();
    expect(r.readiness().reason).toBe("shutting_down");
  });

  it("lag is what each followed stream holds beyond its cursor, never negative", () => {
    const last = new Map([
      ["FILLS", 10],
      ["QUOTES", 4],
    ]);
    const cursors = new Map([
      ["FILLS", 7],
      ["QUOTES", 9],
    ]);
    const streams: StreamName[] = ["FILLS", "QUOTES", "RISK_DECISIONS"];
    expect(Object.fromEntries(lagOf(last, cursors, streams))).toEqual({
      FILLS: 3,
      QUOTES: 0,
      RISK_DECISIONS: 0,
    });
  });
});
