/** Runs the CLI in-process (`main(argv)`) with stdout and stderr captured. */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, vi } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { main } from "../../src/cli/main.js";
import type { Engine } from "../../src/engine/index.js";
import { Bus, applied, envelope, startTestEngine } from "./engine.js";
import { connectTest, startTestNats, waitFor } from "./nats.js";

export interface Run {
  code: number;
  out: string;
  err: string;
}

export async function run(args: string[]): Promise<Run> {
  let out = "";
  let err = "";
  const capture =
    (into: (s: string) => void) =>
    (chunk: string | Uint8Array, ...rest: unknown[]): boolean => {
      into(typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
      const cb = rest.find((r) => typeof r === "function") as (() => void) | undefined;
      cb?.();
      return true;
    };
  const so = vi.spyOn(process.stdout, "write").mockImplementation(capture((s) => (out += s)));
  const se = vi.spyOn(process.stderr, "write").mockImplementation(capture((s) => (err += s)));
  try {
    const code = await main(args);
    return { code, out, err };
  } finally {
    so.mockRestore();
    se.mockRestore();
  }
}

/** One line on stderr (`mts-risk: …`), the given exit code, no stack frames. */
export function expectOneLineError(r: Run, code: number): void {
  expect(r.code).toBe(code);
  expect(r.err).toMatch(/^mts-risk: [^\n]+\n$/);
  expect(r.err).not.toMatch(/\bat .*\(.*:\d+:\d+\)/);
}

/**
 * For a file of CLI tests against a live engine: a nats-server, an engine with fund alpha's
 * envelope applied, a connection and a work directory, set up before the file's tests and torn
 * down after them (`beforeAll`/`afterAll` registered where it is called). `g`: the global flags
 * that point the CLI at them.
 */
export interface CliWithEngine {
  server: NatsServerHandle;
  engine: Engine;
  nc: NatsConnection;
  dir: string;
  g: string[];
}

export function cliWithEngine(dirPrefix: string): CliWithEngine {
  const rig = {} as CliWithEngine;
  beforeAll(async () => {
    vi.stubEnv("RISK_LOG__LEVEL", "warn");
    rig.server = await startTestNats();
    rig.engine = await startTestEngine(rig.server.url);
    rig.nc = await connectTest(rig.server.url);
    const seq = await new Bus(rig.nc).envelope(envelope("alpha"));
    await waitFor(() => applied(rig.engine, "RISK_ENVELOPES", seq));
    rig.dir = await mkdtemp(join(tmpdir(), dirPrefix));
    rig.g = ["--nats-url", rig.server.url, "--state-dir", join(rig.dir, "state")];
  });
  afterAll(async () => {
    await rig.nc?.close();
    await rig.engine?.close();
    await rig.server?.stop();
    if (rig.dir) await rm(rig.dir, { recursive: true, force: true });
    vi.unstubAllEnvs();
  });
  return rig;
}
