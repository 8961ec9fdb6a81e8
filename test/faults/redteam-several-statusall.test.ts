/**
 * Red team, several engines: `mts-risk status --all` (CONTRACT.md "Several engines": "EngineStatus
 * adds "owned" ... and `mts-risk status --all` lists every engine with what it owns and its lag").
 * Expected: one entry per live engine, owned summing to every partition, a numeric lag each; after
 * a kill -9 and the takeover, the survivors only, still owning every partition between them.
 */
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { waitFor } from "../support/nats.js";
import { run } from "../support/cli.js";
import { PARTITIONS, SeveralEngines } from "./several-support.js";

interface Listed {
  engines: { instance: string; ready: boolean; owned: number; partitions: number[]; lag: number }[];
}

describe("red team: several engines, status --all", () => {
  let h: SeveralEngines;
  beforeEach(async () => {
    h = await SeveralEngines.start();
  });
  afterEach(async () => {
    await h?.stop();
  });

  const statusAll = async (): Promise<Listed> => {
    const r = await run(["status", "--all", "--nats-url", h.server.url, "--timeout", "1000"]);
    expect(r.code, r.err).toBe(0);
    return JSON.parse(r.out) as Listed;
  };

  it("lists every engine, what it owns and its lag; the survivors after a kill -9", async () => {
    const [a, b, c] = await h.startEngines(3);
    const first = await statusAll();
    expect(first.engines).toHaveLength(3);
    expect(first.engines.reduce((s, e) => s + e.owned, 0)).toBe(PARTITIONS);
    const all = first.engines.flatMap((e) => e.partitions).sort((x, y) => x - y);
    expect(all).toEqual(Array.from({ length: PARTITIONS }, (_, i) => i));
    for (const e of first.engines) {
      expect(e.ready).toBe(true);
      expect(typeof e.lag).toBe("number");
      expect(e.partitions).toHaveLength(e.owned);
    }
    await b!.kill9();
    const after = await waitFor(
      async () => {
        const s = await statusAll();
        return s.engines.length === 2 && s.engines.reduce((n, e) => n + e.owned, 0) === PARTITIONS
          ? s
          : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200, message: "the survivors own every partition" },
    );
    const instances = after!.engines.map((e) => e.instance);
    expect(instances.some((i) => i.endsWith(`-${a!.pid}`))).toBe(true);
    expect(instances.some((i) => i.endsWith(`-${c!.pid}`))).toBe(true);
  }, 90_000);
});
