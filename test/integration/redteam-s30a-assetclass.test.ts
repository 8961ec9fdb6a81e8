/**
 * Red-team pass (stop 30a) on "one asset class per fund book without refdata" (src/gates/schema.ts
 * checkRefdataClass with the book's assetClassHint, set by src/state/projections/reservations.ts
 * applyApproval and never cleared). CONTRACT.md "Messages": "`asset_class` ∈ `equity`, `crypto`,
 * `option`, `future`, `fx`; when absent, the instrument's refdata gives it"; "When the instrument's
 * refdata gives an `asset_class`, an order that states another one is `SCHEMA_INVALID`
 * (`details.path = "asset_class"`)". The contract makes a stated class SCHEMA_INVALID only against
 * refdata; the engine adds (README, stop 29) a refusal against the class an earlier approval of the
 * fund stated, to keep the book's reservations and position under one class. One nats-server,
 * one engine on a manual clock.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { manualClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, Feeder, NOW, applied, envelope, order, startTestEngine } from "../support/engine.js";

type D = {
  approved: boolean;
  rejecting_gate: string;
  rejection_code: string;
  details: Record<string, string>;
};
const outcome = (d: D) => (d.approved ? "approved" : `${d.rejecting_gate}/${d.rejection_code}`);
const withPath = (d: D) => `${outcome(d)} ${d.details["path"] ?? ""}`.trim();

describe("red-team s30a: one asset class per fund book without refdata", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  let feed: Feeder;
  const clock = manualClock(NOW);

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url, { clock });
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    feed = new Feeder(bus, () => engine, clock);
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  const until = (stream: string, seq: number) => waitFor(() => applied(engine, stream, seq));
  const check = (F: string, symbol: string, over: Record<string, unknown>) =>
    bus.check(order({ fund_id: F, symbol, quantity: "10", limit_price: "5", ...over }));

  // ---------------------------------------------------------------- regression guards (pass)

  it("while an equity approval still reserves, an order calling the symbol crypto is refused; refdata then decides", async () => {
    const F = "s30a-live";
    await feed.envelope(envelope(F));
    expect(outcome(await check(F, "ACA", { asset_class: "equity" }))).toBe("approved");
    const d = await check(F, "ACA", { asset_class: "crypto" });
    expect(`${withPath(d)} ${d.details["book_asset_class"]}`).toBe(
      "schema/SCHEMA_INVALID asset_class equity",
    );
    // refdata published later is what the instrument is: crypto passes, equity is refused
    await until("REFDATA", await bus.instrument({ symbol: "ACA", asset_class: "crypto" }));
    expect(outcome(await check(F, "ACA", { asset_class: "crypto" }))).toBe("approved");
    const e = await check(F, "ACA", { asset_class: "equity" });
    expect(`${withPath(e)} ${e.details["refdata_asset_class"]}`).toBe(
      "schema/SCHEMA_INVALID asset_class crypto",
    );
  });

  /**
   * CONTRACT.md: "when absent, the instrument's refdata gives it, and when neither does while the
   * envelope sets allowed_asset_classes, the order is ASSET_CLASS_NOT_ALLOWED": the book's class
   * from an earlier order does not stand in for refdata there.
   */
  it("an order that omits its class, with no refdata, is ASSET_CLASS_NOT_ALLOWED under allowed_asset_classes", async () => {
    const F = "s30a-omit";
    await feed.envelope(envelope(F, { allowed_asset_classes: ["equity"] }));
    expect(outcome(await check(F, "ACB", { asset_class: "equity" }))).toBe("approved");
    expect(outcome(await check(F, "ACB", {}))).toBe("static/ASSET_CLASS_NOT_ALLOWED");
  });

  // ---------------------------------------------------------------- defects (fail now)

  /**
   * The only equity order of the fund in the symbol was cancelled by the OMS: nothing reserves,
   * nothing is held. The OMS now sends the symbol as crypto (it corrected its instrument master;
   * no refdata exists). Per the contract the order states a valid class and no refdata contradicts
   * it: it is judged (approved here, no limits). The engine answers SCHEMA_INVALID at asset_class
   * (`book_asset_class: equity`) and will for ever: the book's hint is set by the first approval
   * and never cleared, though the rationale (reservations and position summed under one class)
   * has nothing left to protect.
   */
  it("after the only equity order is cancelled (nothing reserved or held), a crypto order is judged", async () => {
    const F = "s30a-cancel";
    await feed.envelope(envelope(F));
    const first = order({
      fund_id: F,
      symbol: "ACC",
      quantity: "10",
      limit_price: "5",
      asset_class: "equity",
    });
    expect(outcome(await bus.check(first))).toBe("approved");
    await feed.orderEvent("cancelled", F, String(first["order_id"]));
    expect(withPath(await check(F, "ACC", { asset_class: "crypto" }))).toBe("approved");
  });

  /** Same, with a position opened and closed to flat by fills (the approval fully filled). */
  it("after the position is closed to flat, an order calling the symbol another class is judged", async () => {
    const F = "s30a-flat";
    await feed.envelope(envelope(F));
    const first = order({
      fund_id: F,
      symbol: "ACD",
      quantity: "10",
      limit_price: "5",
      asset_class: "equity",
    });
    expect(outcome(await bus.check(first))).toBe("approved");
    await feed.fill(F, "ACD", "BUY", "10", "5", { order_id: first["order_id"] });
    await feed.fill(F, "ACD", "SELL", "10", "5", { order_id: `ext-close-${F}` });
    expect(withPath(await check(F, "ACD", { asset_class: "future" }))).toBe("approved");
  });
});
