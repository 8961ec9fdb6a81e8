/**
 * Red team, CLI: `mts-risk serve` on a state directory a live engine is using. Nothing guards the
 * directory: the second engine starts, reads the same `engine-home` (so, until the live engine's
 * next heartbeat, the live engine looks like its dead predecessor: README "home"), takes over about
 * half the partitions, and both engines then flush their dirty entities and their cursors into the
 * one `snapshot.sqlite`, incrementally and at their own pace. A snapshot whose cursors come from one
 * engine and some entities from the other is not the state at those cursors: a restart replays only
 * after them, so what the older write dropped is lost. Correct: the second `serve` refuses at once
 * (a lock on the state directory), one line on stderr, non-zero exit; the live engine is untouched.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsServerHandle } from "../src/bus/nats-server.js";
import type { Engine } from "../src/engine/index.js";
import { startTestEngine } from "./support/engine.js";
import { startTestNats, waitFor } from "./support/nats.js";

const bin = fileURLToPath(new URL("../bin/mts-risk.js", import.meta.url));

describe("mts-risk serve on a state directory in use", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let dir: string;
  let child: ChildProcess | undefined;

  beforeAll(async () => {
    server = await startTestNats();
    dir = await mkdtemp(join(tmpdir(), "mts-rt-statedir-"));
    engine = await startTestEngine(server.url, { stateDir: dir });
  });
  afterAll(async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((done) => child!.once("exit", done));
      child.kill("SIGKILL");
      await gone;
    }
    await engine?.close();
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Spawns `serve` on `stateDir`; resolves once it exits or logs that it started. */
  async function serve(
    stateDir: string,
  ): Promise<{ started: boolean; exit: number | null | undefined; out: string }> {
    let out = "";
    let exit: number | null | undefined;
    const c = spawn(process.execPath, [bin, "serve", "--nats-url", server.url, "--state-dir", stateDir], {
      env: { ...process.env, RISK_HTTP__PORT: "0", RISK_LOG__LEVEL: "info", NATS_URL: server.url },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child = c;
    c.stdout.on("data", (b: Buffer) => (out += b.toString()));
    c.stderr.on("data", (b: Buffer) => (out += b.toString()));
    c.on("exit", (code) => (exit = code));
    await waitFor(() => exit !== undefined || out.includes("engine started"), {
      timeoutMs: 60_000,
      message: "serve neither exited nor started",
    });
    const started = out.includes("engine started");
    if (exit === undefined) {
      const gone = new Promise((done) => c.once("exit", done));
      c.kill("SIGTERM");
      await gone;
    }
    return { started, exit, out };
  }

  it("control: serve on a directory of its own starts", async () => {
    const own = await mkdtemp(join(tmpdir(), "mts-rt-statedir-own-"));
    try {
      const r = await serve(own);
      expect(r.started, r.out).toBe(true);
    } finally {
      await rm(own, { recursive: true, force: true });
    }
  }, 90_000);

  it("is refused with one line and a non-zero exit; it does not start a second engine", async () => {
    const r = await serve(dir);
    expect(r.started, "a second engine started on the same state directory").toBe(false);
    expect(r.exit).not.toBe(0);
    expect(r.out.split("\n").filter((l) => l.startsWith("mts-risk: "))).toHaveLength(1);
  }, 90_000);
});
