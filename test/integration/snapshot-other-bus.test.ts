/**
 * A state directory whose snapshot was built from another bus (the NATS server rebuilt with an
 * empty store, a state directory copied between environments). Its cursors name other messages:
 * trusted, they skipped the new streams' first messages and the engine approved with an envelope
 * of the old bus (a red-team pass: `alpha@v5` from the old bus on a bus holding `alpha@v1`). The
 * engine sets such a snapshot aside and rebuilds from the streams: by the streams' creation times
 * it remembers (`streams.json`), and, without them, by cursors past the streams' last sequences.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import type { Engine } from "../../src/engine/index.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, startTestEngine } from "../support/engine.js";
import { run } from "../support/cli.js";

describe("a snapshot of another bus", () => {
  const dirs: string[] = [];
  const open: { server?: NatsServerHandle; nc?: NatsConnection; engine?: Engine }[] = [];
  afterAll(async () => {
    for (const o of open) {
      await o.engine?.close();
      await o.nc?.close();
      await o.server?.stop();
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function bus() {
    const server = await startTestNats();
    const nc = await connectTest(server.url);
    const o = { server, nc, bus: new Bus(nc) };
    open.push(o);
    return o;
  }
  /** `versions` envelope versions of alpha (max_order_qty = 10 × version); the last one's sequence. */
  async function envelopes(b: Bus, versions: number): Promise<number> {
    let last = 0;
    for (let v = 1; v <= versions; v++)
      last = await b.envelope(envelope("alpha", { version: v, max_order_qty: String(10 * v) }));
    return last;
  }

  async function engineOn(url: string, stateDir: string) {
    const engine = await startTestEngine(url, { stateDir });
    open.push({ engine });
    return engine;
  }

  for (const remembered of [true, false]) {
    it(`is set aside and the state rebuilt from the streams (${remembered ? "streams.json" : "cursors alone"})`, async () => {
      const stateDir = mkdtempSync(join(tmpdir(), "mts-other-bus-"));
      dirs.push(stateDir);
      const a = await bus();
      const first = await engineOn(a.server.url, stateDir);
      const lastA = await envelopes(a.bus, 5);
      await waitFor(() => applied(first, "RISK_ENVELOPES", lastA));
      await first.close();
      if (!remembered) rmSync(join(stateDir, "streams.json"));

      const b = await bus(); // a fresh server: alpha@v1, max_order_qty 10
      const second = await engineOn(b.server.url, stateDir);
      const lastB = await envelopes(b.bus, 1);
      await waitFor(() => applied(second, "RISK_ENVELOPES", lastB));
      const d = await b.bus.check(order({ quantity: "20", limit_price: "100" }));
      expect(d).toMatchObject({
        approved: false,
        rejection_code: "MAX_ORDER_QTY_EXCEEDED",
        envelope_id: "alpha@v1",
      });
      expect(second.observe.fund("alpha")?.envelope_version).toBe(1);
      // the old snapshot is kept beside, not deleted
      expect(readdirSync(stateDir).some((f) => f.includes(".other-bus-"))).toBe(true);
      expect(existsSync(join(stateDir, "streams.json"))).toBe(true);
    });
  }

  it("a restart on the same bus keeps its snapshot", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "mts-same-bus-"));
    dirs.push(stateDir);
    const a = await bus();
    const first = await engineOn(a.server.url, stateDir);
    const last = await envelopes(a.bus, 3);
    await waitFor(() => applied(first, "RISK_ENVELOPES", last));
    await first.close();
    const again = await engineOn(a.server.url, stateDir);
    await waitFor(() => applied(again, "RISK_ENVELOPES", last));
    expect(readdirSync(stateDir).some((f) => f.includes(".other-bus-"))).toBe(false);
    expect(again.observe.fund("alpha")?.envelope_version).toBe(3);
  });

  it("a snapshot rebuilt from another bus and installed is set aside by the next start", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "mts-installed-bus-"));
    const elsewhere = mkdtempSync(join(tmpdir(), "mts-installed-other-"));
    dirs.push(stateDir, elsewhere);
    const a = await bus();
    const first = await engineOn(a.server.url, stateDir);
    const lastA = await envelopes(a.bus, 3);
    await waitFor(() => applied(first, "RISK_ENVELOPES", lastA));
    await first.close();
    const b = await bus(); // another bus, alpha@v1 only
    const provision = await engineOn(b.server.url, elsewhere);
    const lastB = await envelopes(b.bus, 1);
    await waitFor(() => applied(provision, "RISK_ENVELOPES", lastB));
    await provision.close();

    const r = await run(["rebuild", "--install", "--nats-url", b.server.url, "--state-dir", stateDir]);
    expect(r.code, r.err).toBe(0);
    const again = await engineOn(a.server.url, stateDir);
    await waitFor(() => applied(again, "RISK_ENVELOPES", lastA));
    expect(again.observe.fund("alpha")?.envelope_version).toBe(3);
    expect(readdirSync(stateDir).some((f) => f.includes(".other-bus-"))).toBe(true);
  });
});
