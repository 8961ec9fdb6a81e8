/**
 * warn_at_pct: one limit_warning per upward crossing per measure, at the boundary (exactly at the
 * share: no warning; one smallest unit above: a warning), re-armed when back at or below it.
 * The alerter is the engine's Alerter interface recording what it is asked to publish (the bus
 * path is covered by the integration test).
 */
import { describe, it, expect } from "vitest";
import type { Alerter } from "../../src/engine/alerts.js";
import { createLimitWarnings } from "../../src/workers/limit-warnings.js";
import type { WorkerContext } from "../../src/workers/types.js";
import { manualClock } from "../../src/time/clock.js";
import { FUND, Feed, NOW } from "./fixtures.js";

const UNIT = "0.000000000000000001";

interface Sent {
  kind: string;
  fund: string;
  details: Record<string, string>;
}

function setup(over: Record<string, unknown>) {
  const feed = new Feed().envelope({ warn_at_pct: "0.8", ...over });
  const sent: Sent[] = [];
  const alerter: Alerter = {
    alert: (kind, fund, _message, details) => void sent.push({ kind, fund, details: details ?? {} }),
    deadLetter: () => undefined,
    count: () => ({ alerts: sent.length, deadLetters: 0 }),
  };
  const w = createLimitWarnings({
    state: feed.state,
    alerter,
    clock: manualClock(NOW),
  } as unknown as WorkerContext);
  let n = 0;
  const fill = (qty: string) => {
    feed.fill("AAPL", qty, "100");
    w.onChange!({ kind: "fill", fund: FUND, symbol: "AAPL", seq: ++n });
  };
  return { feed, sent, w, fill };
}

describe("warn_at_pct", () => {
  it("given gross exactly at 80% of its limit, when a fill lands there, then no warning; one unit more warns once with the figures", () => {
    const { sent, fill } = setup({ max_gross_exposure_pct: "1" }); // NAV 1 000 000: limit 1 000 000
    fill("8000"); // 800 000: exactly the share
    expect(sent).toEqual([]);
    fill(UNIT);
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({
      kind: "limit_warning",
      fund: FUND,
      details: {
        measure: "gross",
        scope: "fund",
        value: "800000.0000000000000001",
        limit: "1000000",
        share: "0.8",
      },
    });
    fill("100");
    expect(sent).toHaveLength(1); // still above: once per crossing
  });

  it("given a measure above its share, when it falls back to the share and crosses again, then it warns again", () => {
    const { sent, fill } = setup({ max_gross_exposure_pct: "1" });
    fill("8001");
    expect(sent).toHaveLength(1);
    fill("-1"); // back to exactly 800 000: re-armed
    fill("1");
    expect(sent).toHaveLength(2);
  });

  it("given position, sector and asset-class limits, when a fill crosses them, then each measure warns on its own", () => {
    const { feed, sent, fill } = setup({
      max_position_pct: "0.1",
      max_sector_pct: "0.2",
      max_asset_class_pct: { equity: "0.5" },
      max_net_exposure_pct: "1",
    });
    feed.instrument({ symbol: "AAPL", asset_class: "equity", sector: "tech" });
    fill("900"); // 90 000: position 90% of 100 000; sector 45% of 200 000; class 18%; net 9%
    expect(sent.map((s) => `${s.details["measure"]}:${s.details["scope"]}`)).toEqual(["position:AAPL"]);
    fill("700"); // 160 000: sector 80% exactly: nothing new
    expect(sent).toHaveLength(1);
    fill(UNIT);
    expect(sent.map((s) => `${s.details["measure"]}:${s.details["scope"]}`)).toEqual([
      "position:AAPL",
      "sector:tech",
    ]);
  });

  it("given an approved decision whose reservation takes the position over the share, when it is reported, then it warns", () => {
    const { feed, sent, w } = setup({ max_position_pct: "0.1" });
    feed.reserve("o1", "AAPL", "BUY", "801", "100"); // 80 100 of 100 000
    w.afterDecision(FUND, "AAPL", "d1");
    expect(sent.map((s) => s.details["measure"])).toEqual(["position"]);
  });

  it("given no warn_at_pct, when a measure is over any share, then nothing is published", () => {
    const feed = new Feed().envelope({ max_gross_exposure_pct: "1" });
    const sent: unknown[] = [];
    const alerter = { alert: () => void sent.push(1) } as unknown as Alerter;
    const w = createLimitWarnings({
      state: feed.state,
      alerter,
      clock: manualClock(NOW),
    } as unknown as WorkerContext);
    feed.fill("AAPL", "9999", "100");
    w.onChange!({ kind: "fill", fund: FUND, symbol: "AAPL", seq: 1 });
    expect(sent).toEqual([]);
  });
});
