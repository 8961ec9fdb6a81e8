/**
 * One engine a state directory: its snapshot, its cursors and its `engine-home` belong to one
 * process. A second engine started on the same directory (a copy-pasted unit file, an operator's
 * second `serve`) would take the first one for its dead predecessor (several.ts) and both would
 * write the one snapshot, each its own cursors. `engine.lock` holds the pid of the engine using the
 * directory; a lock whose process is gone (kill -9, a crash) is stale and taken over.
 */
import { mkdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export class StateDirInUseError extends Error {
  readonly code = "STATE_DIR_IN_USE";
  constructor(message: string) {
    super(message);
    this.name = "StateDirInUseError";
  }
}

export interface StateDirLock {
  release(): void;
}

/** Directories held by engines of this process (real paths). */
const held = new Set<string>();

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

export function lockStateDir(dir: string): StateDirLock {
  mkdirSync(dir, { recursive: true });
  const real = realpathSync(dir);
  const file = join(real, "engine.lock");
  if (held.has(real)) {
    throw new StateDirInUseError(`state directory ${dir} is in use by another engine of this process`);
  }
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: "wx" });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt > 0) throw err;
      let pid = NaN;
      try {
        pid = Number(readFileSync(file, "utf8").trim());
      } catch {
        // removed meanwhile: try again
      }
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new StateDirInUseError(
          `state directory ${dir} is in use by the engine of pid ${pid} (${file}; remove it if that process is not an engine)`,
        );
      }
      rmSync(file, { force: true }); // stale: its engine is gone
    }
  }
  held.add(real);
  return {
    release() {
      if (!held.delete(real)) return;
      try {
        if (readFileSync(file, "utf8").trim() === String(process.pid)) rmSync(file, { force: true });
      } catch {
        // already gone
      }
    },
  };
}
