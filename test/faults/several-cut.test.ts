/**
 * A network cut of one engine (CONTRACT.md "Several engines"): its NATS connection is dropped while
 * its process lives (a TCP proxy between it and nats-server, severed and restored). It behaves like
 * the pause (SIGSTOP) case: another engine takes its funds over within `ownership.takeover_s`, and
 * once the link is back, racing orders against headroom N get exactly N approvals in total, none of
 * them from the cut-off engine for the funds it lost.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { jetstream } from "@nats-io/jetstream";
import { partitionOf } from "../../src/ownership/partition.js";
import { waitFor } from "../support/nats.js";
import { type TcpProxy, startTcpProxy } from "../support/tcp-proxy.js";
import { readDecisions } from "./support.js";
import { PARTITIONS, SeveralEngines, TAKEOVER_MS, isProcess } from "./several-support.js";

describe("several engines: a network cut of the owner", () => {
  let h: SeveralEngines;
  let proxy: TcpProxy;
  beforeEach(async () => {
    h = await SeveralEngines.start();
    proxy = await startTcpProxy(h.server.url);
  });
  afterEach(async () => {
    await proxy?.close();
    await h?.stop();
  });

  it("the cut-off owner approves nothing for the funds it lost once the link is back; exactly N in total", async () => {
    // engine 0 reaches the bus only through the proxy; engine 1 directly
    const cut = h.engine(proxy.url);
    const other = h.engine();
    cut.start();
    other.start();
    await h.ready(cut);
    await h.ready(other);
    await h.spread(2);
    // a fund the engine behind the proxy owns
    const funds = Array.from({ length: 200 }, (_, i) => `c${i}`);
    const mine = new Set((await h.views()).find((v) => isProcess(v, cut))!.partitions);
    const fund = funds.find((f) => mine.has(partitionOf(f, PARTITIONS)))!;
    expect(fund).toBeDefined();
    await h.publishEnvelope(fund, { max_position_pct: "0.10" });
    const { engine: owner, view: ownerView } = await h.ownerOf(fund);
    expect(owner).toBe(cut);

    // the cut: the process lives, its connection is dropped and every reconnect refused
    const connectionsBefore = proxy.connections;
    const cutAt = Date.now();
    proxy.sever();
    const took = await waitFor(
      async () => {
        const v = await h.views();
        const o = v.find((x) => isProcess(x, other));
        return !v.some((x) => isProcess(x, cut)) && o?.owned === PARTITIONS ? Date.now() - cutAt : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 50, message: "the other engine owns every partition" },
    );
    expect(took).toBeLessThanOrEqual(TAKEOVER_MS + 1000); // the poll's own period and a loaded machine
    expect(cut.running).toBe(true);

    // the link is back: race at once, while the cut-off engine reconnects and learns what it lost
    proxy.restore();
    const r = await h.race(fund, 1000);
    expect(r.approved).toBe(100);
    expect(r.decisions.filter((d) => !d.approved).map((d) => d.rejection_code)).toEqual(
      Array.from({ length: 900 }, () => "MAX_POSITION_EXCEEDED"),
    );

    // it did reconnect (through the proxy) and serves again, without its lost funds back at once
    await waitFor(async () => (await h.views()).some((v) => isProcess(v, cut) && v.ready), {
      timeoutMs: 30_000,
      intervalMs: 100,
      message: "the cut-off engine is back and ready",
    });
    expect(proxy.connections).toBeGreaterThan(connectionsBefore);
    expect(cut.running).toBe(true);

    const records = await readDecisions(jetstream(h.nc), h.jsm);
    const approvals = records.filter((x) => x.fund_id === fund && x.decision.approved);
    expect(new Set(approvals.map((x) => x.idempotency_key)).size).toBe(100);
    expect(approvals).toHaveLength(100);
    expect(approvals.filter((x) => x.instance === ownerView.instance)).toEqual([]);
  }, 180_000);
});
