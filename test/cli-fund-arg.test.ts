/**
 * The fund argument of the operator commands: `_` is the journal's "no fund" token (CONTRACT.md
 * "Encoding"), so halting or resuming it is refused (exit 2, one line, nothing published on
 * RISK_CONTROL) as `envelope set _` already is; `envelope get|history` refuse a fund id that is not
 * one (a subject wildcard) as bad input (exit 2) before asking anything.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../src/bus/nats-server.js";
import type { Engine } from "../src/engine/index.js";
import { expectOneLineError, run } from "./support/cli.js";
import { Bus, applied, envelope, readStream, startTestEngine } from "./support/engine.js";
import { connectTest, startTestNats, waitFor } from "./support/nats.js";

describe("mts-risk: the fund argument", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let dir: string;
  let g: string[];

  beforeAll(async () => {
    vi.stubEnv("RISK_LOG__LEVEL", "warn");
    server = await startTestNats();
    engine = await startTestEngine(server.url);
    nc = await connectTest(server.url);
    const seq = await new Bus(nc).envelope(envelope("alpha"));
    await waitFor(() => applied(engine, "RISK_ENVELOPES", seq));
    dir = await mkdtemp(join(tmpdir(), "mts-cli-fund-"));
    g = ["--nats-url", server.url, "--state-dir", join(dir, "state")];
  });
  afterAll(async () => {
    await nc?.close();
    await engine?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    vi.unstubAllEnvs();
  });

  it("halt _ and resume _ are refused (exit 2, one line) and publish nothing", async () => {
    for (const args of [
      ["halt", "_", "--reason", "test"],
      ["halt", "_", "--reason", "test", "--kill"],
      ["resume", "_", "--operator", "ops", "--reason", "test"],
    ]) {
      const r = await run([...args, ...g]);
      expectOneLineError(r, 2);
      expect(r.err).toContain("reserved");
    }
    const ctl = await readStream(nc, "RISK_CONTROL");
    expect(ctl.filter((m) => /\.(halt|resume)\._$/.test(m.subject))).toEqual([]);
    const intents = await readStream(nc, "OMS_INTENTS");
    expect(intents.filter((m) => m.subject.endsWith("._"))).toEqual([]);
  });

  it("envelope get|history refuse a fund id that is not one (exit 2, one line)", async () => {
    for (const args of [
      ["envelope", "get", "a.*"],
      ["envelope", "history", "a.>"],
      ["envelope", "history", "*"],
      ["envelope", "get", "_"],
    ]) {
      const r = await run([...args, ...g]);
      expectOneLineError(r, 2);
    }
    const ok = await run(["envelope", "get", "alpha", ...g]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.out)).toMatchObject({ fund_id: "alpha", version: 1 });
  });
});
