/** Ownership wiring of the engine (src/engine/owning.ts): when it joins the queue group and starts answering. */
import { describe, expect, it } from "vitest";
import { ownedFunds, waitSettled, waitSynced } from "../../src/engine/owning.js";

/** A monotonic clock the pauses move: no real waiting. */
function monotonic() {
  let t = 1000;
  return {
    now: () => t,
    pause: (ms: number) => {
      t += ms;
      return Promise.resolve();
    },
    elapsed: () => t - 1000,
  };
}

describe("engine ownership wiring", () => {
  it("given the registry reads the view after a while, it waits for it", async () => {
    const m = monotonic();
    let polls = 0;
    const synced = await waitSynced({ synced: () => ++polls > 4 }, { boundMs: 10_000, ...m });
    expect(synced).toBe(true);
    expect(m.elapsed()).toBe(20); // 4 pauses of 5 ms
  });

  it("given a registry that never syncs, it stops waiting at the bound", async () => {
    const m = monotonic();
    expect(await waitSynced({ synced: () => false }, { boundMs: 10_000, ...m })).toBe(false);
    expect(m.elapsed()).toBe(10_000);
  });

  it("waits until ownership settles, woken by a change", async () => {
    const m = monotonic();
    let settled = false;
    let changes = 0;
    const ok = await waitSettled(
      {
        settled: () => settled,
        changed: () => {
          settled = ++changes === 3;
          return Promise.resolve();
        },
      },
      { boundMs: 7000, closing: () => false, ...m },
    );
    expect(ok).toBe(true);
    expect(changes).toBe(3);
  });

  it("stops waiting for ownership at the bound, or as soon as the engine closes", async () => {
    const never = { settled: () => false, changed: () => new Promise<void>(() => undefined) };
    const m = monotonic();
    expect(await waitSettled(never, { boundMs: 7000, closing: () => false, ...m })).toBe(false);
    expect(m.elapsed()).toBe(7000);
    const c = monotonic();
    let closing = false;
    const p = waitSettled(never, {
      boundMs: 7000,
      closing: () => closing,
      now: c.now,
      pause: (ms) => {
        closing = true;
        return c.pause(ms);
      },
    });
    expect(await p).toBe(false);
    expect(c.elapsed()).toBe(50);
  });

  it("counts the funds with an envelope whose partition this engine holds", () => {
    const funds = [
      { id: "a", envelope: {} },
      { id: "b", envelope: {} },
      { id: "c" },
      { id: "d", envelope: {} },
    ];
    expect(ownedFunds(funds, (f) => f !== "b")).toBe(2);
  });
});
