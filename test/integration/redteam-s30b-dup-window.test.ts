/**
 * Red-team s30b: duplicate_window_ms across envelope versions. CONTRACT.md "Semantics": an order
 * with the same symbol, side, order type, quantity, limit and stop price as another order of the
 * fund decided within the window under a different idempotency_key is DUPLICATE_ORDER. The engine
 * keeps an order's duplicate key only while a window it has seen for the fund asks for it (README,
 * "Decisions where the spec is silent": a window set or widened by a new version reaches back only
 * as far as the windows before it). Guarded here: a window narrowed or removed by a new version.
 */
import { describe, expect, it } from "vitest";
import { envelope } from "../support/engine.js";
import { exposureBench } from "../support/exposure.js";

describe("red-team s30b: duplicate_window_ms across envelope versions", () => {
  const t = exposureBench();

  it("regression guard: a window narrowed by a new version lets the same order go after it", async () => {
    const F = "s30b-dup-narrow";
    await t.setup(F, { duplicate_window_ms: 60_000 });
    const o = { fund_id: F, symbol: "DWN1", quantity: "10", limit_price: "5" };
    expect(await t.check(o)).toBe("approved");
    t.clock.advance(2_000);
    expect(await t.check(o)).toBe("velocity/DUPLICATE_ORDER");
    await t.until(
      "RISK_ENVELOPES",
      await t.bus.envelope(envelope(F, { version: 2, duplicate_window_ms: 1_000 })),
    );
    // the approved one was decided 2 000 ms ago, the window is 1 000 ms now (a DUPLICATE_ORDER
    // rejection does not restart the window: the engine's documented choice)
    expect(await t.check(o)).toBe("approved");
  });

  it("regression guard: a version removing the window ends duplicate checks at once", async () => {
    const F = "s30b-dup-remove";
    await t.setup(F, { duplicate_window_ms: 60_000 });
    const o = { fund_id: F, symbol: "DWR1", quantity: "10", limit_price: "5" };
    expect(await t.check(o)).toBe("approved");
    await t.until("RISK_ENVELOPES", await t.bus.envelope(envelope(F, { version: 2 })));
    expect(await t.check(o)).toBe("approved");
  });
});
