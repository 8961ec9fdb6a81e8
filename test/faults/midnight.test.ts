/**
 * End to end with the process clock moved (issue 9 case 8): the compiled engine runs under
 * libfaketime (Debian's `faketime`; .ci/run installs it) with its clock started 20 s before a UTC
 * midnight that is also a month (and year) boundary. A crash quote ~50 ms after that midnight,
 * the first event of the new day, is a loss of the new day and month: both halt, and the journaled
 * baselines are the equity as of the boundary, not after the crash.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { existsSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { Subjects } from "../../src/contract/subjects.js";
import { iso } from "../../src/time/clock.js";
import { Bus, envelope, order, readStream } from "../support/engine.js";
import { waitFor } from "../support/nats.js";
import { type Harness, startHarness, waitEngineReady, waitSettled } from "./support.js";

const LIBS = [
  process.env["FAKETIME_LIB"] ?? "",
  "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1",
  "/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1",
  "/usr/lib/faketime/libfaketimeMT.so.1",
  "/usr/local/lib/faketime/libfaketimeMT.so.1",
];
const FAKE_START = Date.parse("2026-12-31T23:59:40.000Z");
const MIDNIGHT = Date.parse("2027-01-01T00:00:00.000Z");
const FUND = "eve";

describe("midnight under a moved process clock (libfaketime)", () => {
  let h: Harness;
  let bus: Bus;
  /** The engine's clock minus ours, measured from its decisions' `decided_at`. */
  let offset = FAKE_START - Date.now();
  const engineNow = () => Date.now() + offset;
  /** Best of a few round trips: a check (NO_ENVELOPE) stamped by the engine's clock. */
  async function measureOffset(): Promise<void> {
    let best = Infinity;
    for (let i = 0; i < 5; i++) {
      const t0 = Date.now();
      const d = await bus.check(order({ fund_id: "clockprobe" }));
      const t1 = Date.now();
      if (t1 - t0 < best) {
        best = t1 - t0;
        offset = Date.parse(d.decided_at) - (t0 + t1) / 2;
      }
    }
  }

  beforeAll(async () => {
    const lib = LIBS.find((p) => p !== "" && existsSync(p));
    if (!lib) throw new Error("libfaketime not found: `apt-get install -y faketime` (or set FAKETIME_LIB)");
    h = await startHarness("midnight");
    bus = new Bus(h.nc);
    h.engine.start({
      LD_PRELOAD: lib,
      FAKETIME: `@${new Date(FAKE_START).toISOString().slice(0, 19).replace("T", " ")}`,
      FAKETIME_DONT_FAKE_MONOTONIC: "1", // timers keep real time; only the wall clock moves
      TZ: "UTC",
    });
    await waitEngineReady(h.nc, h.engine);
    await measureOffset();
  });
  afterAll(async () => {
    await h?.dispose();
  });

  it("a crash 50 ms after midnight halts the new day and month; baselines are the boundary's equity", async () => {
    await bus.envelope(
      envelope(FUND, { daily_loss_halt_pct: "0.03", monthly_loss_halt_pct: "0.10", enable_shorting: false }),
    );
    await bus.fill({
      fund_id: FUND,
      symbol: "NYE",
      quantity: "10000",
      price: "100",
      timestamp: iso(engineNow()),
    });
    await bus.quote("NYE", "99.99", "100.01", iso(engineNow()));
    await waitSettled(h.nc, h.jsm, h.engine);
    const baselines = async () =>
      (
        await readStream<{ period: string; starts_at: string; equity: string }>(
          h.nc,
          "RISK_CONTROL",
          Subjects.pnlBaseline(FUND),
        )
      ).map((m) => `${m.data.period}@${m.data.starts_at}=${m.data.equity}`);
    await waitFor(async () => (await baselines()).length === 3);
    // setup must be done well before the engine's midnight, or the test proves nothing
    await measureOffset();
    expect(MIDNIGHT - engineNow()).toBeGreaterThan(1000);

    await delay(MIDNIGHT + 50 - engineNow());
    await bus.quote("NYE", "84.99", "85.01", iso(engineNow())); // −150 000: 15 %

    const halts = async () =>
      (await readStream<{ severity: string; at: string }>(h.nc, "RISK_CONTROL", Subjects.halt(FUND))).map(
        (m) => m.data,
      );
    await waitFor(async () => (await halts()).length === 2, {
      timeoutMs: 15_000,
      message: "DAILY_LOSS and MONTHLY_LOSS halts",
    });
    const hs = await halts();
    expect(hs.map((x) => x.severity).sort()).toEqual(["DAILY_LOSS", "MONTHLY_LOSS"]);
    // the halts were decided on the engine's (moved) clock, in the new day's first seconds
    for (const x of hs) expect(Date.parse(x.at) - MIDNIGHT).toBeGreaterThanOrEqual(0);
    expect((await baselines()).filter((b) => b.includes("2027-01-01"))).toEqual([
      "day@2027-01-01T00:00:00.000Z=1000000",
      "month@2027-01-01T00:00:00.000Z=1000000",
    ]);
  });
});
