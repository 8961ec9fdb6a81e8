/** One engine a state directory: engine.lock, its holders and stale locks. */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { StateDirInUseError, identityOf, lockStateDir } from "../../src/engine/state-lock.js";

describe("state directory lock", () => {
  const dirs: string[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), "mts-lock-"));
    dirs.push(d);
    return d;
  };
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it("a second holder in this process is refused; after a release the directory is free", () => {
    const d = dir();
    const a = lockStateDir(d);
    expect(() => lockStateDir(d)).toThrow(StateDirInUseError);
    a.release();
    expect(existsSync(join(d, "engine.lock"))).toBe(false);
    lockStateDir(d).release();
  });

  it("an old handle released again (a second close, an abort) does not drop a newer holder's lock", () => {
    const d = dir();
    const a = lockStateDir(d);
    a.release();
    const b = lockStateDir(d);
    a.release();
    expect(existsSync(join(d, "engine.lock"))).toBe(true);
    expect(() => lockStateDir(d)).toThrow(StateDirInUseError);
    b.release();
  });

  it("a live process that holds it is refused; a dead one's lock, or a reused pid's, is taken over", async () => {
    const d = dir();
    // a live process that holds nothing: it lives until its stdin closes (killed below)
    const child = spawn(process.execPath, ["-e", "process.stdin.resume()"], {
      stdio: ["pipe", "ignore", "ignore"],
    });
    try {
      await new Promise((r) => child.once("spawn", r));
      const pid = child.pid!;
      const file = join(d, "engine.lock");
      writeFileSync(file, JSON.stringify({ pid, identity: identityOf(pid), token: "x" }));
      expect(() => lockStateDir(d)).toThrow(/in use by the engine of pid/);
      // the same pid, started at another time (a pid reused after a crash and a reboot): stale
      writeFileSync(file, JSON.stringify({ pid, identity: "another-boot:1", token: "x" }));
      const l = lockStateDir(d);
      expect((JSON.parse(readFileSync(file, "utf8")) as { pid: number }).pid).toBe(process.pid);
      l.release();
    } finally {
      child.kill("SIGKILL");
    }
    // a pid that no longer exists
    writeFileSync(join(d, "engine.lock"), "999999999\n");
    lockStateDir(d).release();
  });
});
