/** After a reconnect (src/engine/reconnect.ts): re-measure, reopen every consumer, then catch up; retried; superseded. */
import { describe, expect, it } from "vitest";
import type { StreamName } from "../../src/contract/subjects.js";
import { createReconnect, watchStatus } from "../../src/engine/reconnect.js";
import { silentLogger } from "../../src/obs/log.js";

const STREAMS: StreamName[] = ["FILLS", "QUOTES"];

function world(o: { failRemeasure?: number; failReopen?: Partial<Record<string, number>> } = {}) {
  const calls: string[] = [];
  const fails = { remeasure: o.failRemeasure ?? 0, ...o.failReopen } as Record<string, number>;
  let closing = false;
  const pauses: number[] = [];
  const step = (what: string) => {
    calls.push(what);
    if ((fails[what] ?? 0) > 0) {
      fails[what]!--;
      return Promise.reject(new Error(`${what} failed`));
    }
    return Promise.resolve();
  };
  const r = createReconnect({
    follower: { remeasure: () => step("remeasure"), reopen: (s) => step(s) },
    streams: STREAMS,
    closing: () => closing,
    catchUp: () => {
      calls.push("catchUp");
      return Promise.resolve();
    },
    log: silentLogger,
    pause: (ms) => {
      pauses.push(ms);
      return Promise.resolve();
    },
  });
  return { r, calls, pauses, close: () => (closing = true) };
}

describe("reconnect", () => {
  it("given a reconnect, it re-measures, reopens every stream's consumer, then catches up", async () => {
    const w = world();
    await w.r.reconnected();
    expect(w.calls).toEqual(["remeasure", "FILLS", "QUOTES", "catchUp"]);
  });

  it("when a step fails it is retried, backing off 100 ms an attempt up to 1 s, until it succeeds", async () => {
    const w = world({ failRemeasure: 12, failReopen: { QUOTES: 1 } });
    await w.r.reconnected();
    expect(w.calls.filter((c) => c === "remeasure").length).toBe(13);
    expect(w.calls.filter((c) => c === "QUOTES").length).toBe(2);
    expect(w.calls.at(-1)).toBe("catchUp");
    expect(w.pauses.slice(0, 12)).toEqual([100, 200, 300, 400, 500, 600, 700, 800, 900, 1000, 1000, 1000]);
  });

  it("a later reconnect supersedes an earlier one still retrying: only the later catches up", async () => {
    const w = world({ failRemeasure: 3 });
    const first = w.r.reconnected(); // fails its first attempt, then pauses
    const second = w.r.reconnected();
    await Promise.all([first, second]);
    expect(w.calls.filter((c) => c === "catchUp").length).toBe(1);
  });

  it("when the engine closes, a reconnect still retrying gives up without catching up", async () => {
    const w = world({ failRemeasure: 1 });
    const p = w.r.reconnected();
    w.close();
    await p;
    expect(w.calls).toEqual(["remeasure"]);
  });
});

describe("status watch", () => {
  async function* events(...types: string[]) {
    for (const type of types) yield await Promise.resolve({ type });
  }

  it("reports disconnects and reconnects, ignores other events, and stops once closing", async () => {
    const seen: string[] = [];
    let closing = false;
    await watchStatus(events("disconnect", "pingTimer", "reconnect", "disconnect", "reconnect"), {
      closing: () => closing,
      disconnected: () => {
        seen.push("down");
        closing = seen.length === 3; // the engine starts closing after the second disconnect
      },
      reconnected: () => seen.push("up"),
    });
    expect(seen).toEqual(["down", "up", "down"]);
  });
});
