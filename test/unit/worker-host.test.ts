/**
 * The worker host (src/workers/host.ts) ticks its workers on the injected timers, by name; a fired
 * tick resolves after the tick's async work and then after what was in flight (`settled`). And the
 * tests' steppable timers (test/support/timers.ts): real timers a test can also fire now.
 */
import { describe, expect, it } from "vitest";
import { createInFlight } from "../../src/bus/in-flight.js";
import { silentLogger } from "../../src/obs/log.js";
import type { Timers } from "../../src/time/timers.js";
import { createWorkerHost, tickName } from "../../src/workers/host.js";
import type { Worker } from "../../src/workers/types.js";
import { NothingToFireError, steppableTimers } from "../support/timers.js";

/** Base timers that never run on their own: only `fire` runs a registration. */
const idle: Timers = { every: () => () => undefined };

function deferred() {
  let resolve!: () => void;
  const p = new Promise<void>((r) => (resolve = r));
  return { p, resolve };
}

describe("worker host on injected timers", () => {
  it("registers one timer per ticking worker, under worker:<name>, only once live, and cancels them on stop", () => {
    const seen: { ms: number; name: string | undefined; unref: boolean | undefined }[] = [];
    let live = 0;
    const timers: Timers = {
      every(ms, _fn, o) {
        seen.push({ ms, name: o?.name, unref: o?.unref });
        live++;
        return () => live--;
      },
    };
    const workers: Worker[] = [
      { name: "a", intervalMs: 1000, tick: () => undefined },
      { name: "b", tick: () => undefined }, // no interval: no timer
      { name: "c", intervalMs: 5000 }, // no tick: no timer
    ];
    const host = createWorkerHost(workers, silentLogger, timers);
    expect(seen).toEqual([]);
    host.ready();
    host.ready(); // a second ready (a reconnect) adds no timer
    expect(seen).toEqual([{ ms: 1000, name: tickName("a"), unref: true }]);
    expect(live).toBe(1);
    host.stop();
    expect(live).toBe(0);
  });

  it("a fired tick resolves after the tick's async work and after what it published was acknowledged", async () => {
    const timers = steppableTimers(idle);
    const inFlight = createInFlight();
    const work = deferred();
    const ack = deferred();
    const order: string[] = [];
    const worker: Worker = {
      name: "w",
      intervalMs: 1000,
      async tick() {
        order.push("tick");
        void inFlight.track(ack.p.then(() => void order.push("acknowledged")));
        await work.p;
        order.push("work done");
      },
    };
    const host = createWorkerHost([worker], silentLogger, timers, () => inFlight.settled());
    host.ready();
    let fired = false;
    const f = timers.tick("w").then(() => (fired = true));
    await new Promise((r) => setImmediate(r));
    expect(fired).toBe(false);
    work.resolve();
    await new Promise((r) => setImmediate(r));
    expect(fired).toBe(false); // the publish is not acknowledged yet
    ack.resolve();
    await f;
    expect(order).toEqual(["tick", "work done", "acknowledged"]);
    host.stop();
  });

  it("a failing tick is logged, not thrown: the fired tick still resolves", async () => {
    const timers = steppableTimers(idle);
    const host = createWorkerHost(
      [
        {
          name: "sync",
          intervalMs: 1000,
          tick: () => {
            throw new Error("boom");
          },
        },
        { name: "async", intervalMs: 1000, tick: () => Promise.reject(new Error("boom")) },
      ],
      silentLogger,
      timers,
    );
    host.ready();
    await expect(timers.tick("sync")).resolves.toBeUndefined();
    await expect(timers.tick("async")).resolves.toBeUndefined();
    host.stop();
  });

  it("firing a name nothing registered (or a cancelled one) throws NothingToFireError", async () => {
    const timers = steppableTimers(idle);
    const host = createWorkerHost(
      [{ name: "w", intervalMs: 1000, tick: () => undefined }],
      silentLogger,
      timers,
    );
    await expect(timers.tick("w")).rejects.toBeInstanceOf(NothingToFireError); // not live yet
    host.ready();
    expect(timers.names()).toEqual([tickName("w")]);
    await timers.tick("w");
    host.stop();
    await expect(timers.tick("w")).rejects.toThrow(/no timer named worker:w/);
  });

  it("steppable timers also run on the base timers", async () => {
    const timers = steppableTimers(); // Node's
    let n = 0;
    const done = deferred();
    const cancel = timers.every(
      5,
      () => {
        if (++n === 2) done.resolve();
      },
      { name: "x", unref: true },
    );
    await done.p;
    cancel();
    expect(n).toBeGreaterThanOrEqual(2);
  });
});
