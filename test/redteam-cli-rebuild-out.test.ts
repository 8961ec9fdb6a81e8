/**
 * Red team, CLI: `rebuild --out` must never overwrite the engine's snapshot. The guard compares
 * the resolved --out with `<state.dir>/snapshot.sqlite` only, but a SQLite snapshot is three files:
 * in WAL mode most of the state lives in `snapshot.sqlite-wal` until a checkpoint. `--out
 * <state.dir>/snapshot.sqlite-wal` (or -shm) makes rebuild delete that file and write a fresh
 * database in its place (the committed state it held is gone); `--out` through a symlink to the
 * state directory names the snapshot itself and is not caught either. Correct: refused with one
 * line (exit 2), the snapshot's files untouched.
 */
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { NatsServerHandle } from "../src/bus/nats-server.js";
import { expectOneLineError, run } from "./support/cli.js";
import { startTestNats } from "./support/nats.js";

describe("mts-risk rebuild --out next to the engine's snapshot", () => {
  let server: NatsServerHandle;
  let dir: string;
  let state: string;
  const files = ["snapshot.sqlite", "snapshot.sqlite-wal", "snapshot.sqlite-shm"];

  beforeAll(async () => {
    vi.stubEnv("RISK_LOG__LEVEL", "error");
    server = await startTestNats();
    dir = await mkdtemp(join(tmpdir(), "mts-rt-rebuild-out-"));
    state = join(dir, "state");
    await mkdir(state, { recursive: true });
    await symlink(state, join(dir, "state-link"));
  });
  afterAll(async () => {
    await server?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
    vi.unstubAllEnvs();
  });

  /** The engine's snapshot files, with content the test can recognise. */
  async function seed(): Promise<void> {
    for (const f of files) await writeFile(join(state, f), `precious ${f}`);
  }
  async function untouched(): Promise<void> {
    for (const f of files) expect(await readFile(join(state, f), "utf8"), f).toBe(`precious ${f}`);
  }

  it("control: --out the snapshot itself is refused", async () => {
    await seed();
    const r = await run([
      "rebuild",
      "--nats-url",
      server.url,
      "--state-dir",
      state,
      "--out",
      join(state, "snapshot.sqlite"),
    ]);
    expectOneLineError(r, 2);
    await untouched();
  });

  for (const f of ["snapshot.sqlite-wal", "snapshot.sqlite-shm"]) {
    it(`--out <state.dir>/${f} is refused and the snapshot's files are untouched`, async () => {
      await seed();
      const r = await run([
        "rebuild",
        "--nats-url",
        server.url,
        "--state-dir",
        state,
        "--out",
        join(state, f),
      ]);
      expectOneLineError(r, 2);
      await untouched();
    });
  }

  it("--out the snapshot through a symlink to the state directory is refused", async () => {
    await seed();
    const out = join(dir, "state-link", "snapshot.sqlite");
    const r = await run(["rebuild", "--nats-url", server.url, "--state-dir", state, "--out", out]);
    expectOneLineError(r, 2);
    await untouched();
  });

  it("--install from a server without the engine's streams is refused: the snapshot is not replaced by an empty one", async () => {
    await seed();
    const r = await run(["rebuild", "--nats-url", server.url, "--state-dir", state, "--install"]);
    expectOneLineError(r, 2);
    expect(r.err).toContain("hold no message");
    await untouched();
  });

  it("--out an existing file that is not SQLite is refused and left as it is", async () => {
    const file = join(dir, "notes.txt");
    await writeFile(file, "keep me");
    const r = await run(["rebuild", "--nats-url", server.url, "--state-dir", state, "--out", file]);
    expectOneLineError(r, 2);
    expect(r.err).toContain("not a SQLite file");
    expect(await readFile(file, "utf8")).toBe("keep me");
  });
});
