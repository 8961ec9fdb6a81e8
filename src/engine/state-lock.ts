/**
 * One engine a state directory: its snapshot, its cursors and its `engine-home` belong to one
 * process. A second engine started on the same directory (a copy-pasted unit file, an operator's
 * second `serve`) would take the first one for its dead predecessor (several.ts) and both would
 * write the one snapshot, each its own cursors. `engine.lock` names the process using the
 * directory (pid, its start time and the boot id, so that a pid reused after a crash and a reboot
 * is not taken for the engine) and a token of the holder; a lock whose process is gone is stale and
 * taken over.
 */
import { randomBytes } from "node:crypto";
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

/** Directories held by engines of this process (real path → the holder's token). */
const held = new Map<string, string>();

function readOr(file: string): string | undefined {
  try {
    return readFileSync(file, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** What tells a process from a later one with the same pid: boot id and start time (Linux). */
export function identityOf(pid: number): string {
  const boot = readOr("/proc/sys/kernel/random/boot_id") ?? "";
  const stat = readOr(`/proc/${pid}/stat`);
  const start = stat ? (stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? "") : "";
  return `${boot}:${start}`;
}

function alive(pid: number, identity: string | undefined): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false; // no such process
  }
  // the pid exists: the same process only if it started when the lock's holder did (when known)
  return identity === undefined || identity === "" || identity === identityOf(pid);
}

interface LockFile {
  pid: number;
  identity?: string;
  token?: string;
}

function parse(text: string | undefined): LockFile | undefined {
  if (text === undefined) return undefined;
  try {
    const v = JSON.parse(text) as LockFile;
    if (Number.isInteger(v.pid) && v.pid > 0) return v;
  } catch {
    const pid = Number(text); // a bare pid (an older engine's lock)
    if (Number.isInteger(pid) && pid > 0) return { pid };
  }
  return undefined;
}

export function lockStateDir(dir: string): StateDirLock {
  mkdirSync(dir, { recursive: true });
  const real = realpathSync(dir);
  const file = join(real, "engine.lock");
  if (held.has(real)) {
    throw new StateDirInUseError(`state directory ${dir} is in use by another engine of this process`);
  }
  const token = randomBytes(9).toString("base64url");
  const body = JSON.stringify({ pid: process.pid, identity: identityOf(process.pid), token });
  for (let attempt = 0; ; attempt++) {
    try {
      writeFileSync(file, `${body}\n`, { flag: "wx" });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const cur = parse(readOr(file));
      if (cur && cur.pid !== process.pid && alive(cur.pid, cur.identity)) {
        throw new StateDirInUseError(
          `state directory ${dir} is in use by the engine of pid ${cur.pid} (${file}; remove it if that process is not an engine)`,
        );
      }
      if (attempt > 0)
        throw new StateDirInUseError(`state directory ${dir}: ${file} is being taken by another engine`);
      rmSync(file, { force: true }); // stale: its engine is gone (or this process's, never released)
    }
  }
  held.set(real, token);
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      if (held.get(real) !== token) return; // a later holder's lock: not ours to drop
      held.delete(real);
      if (parse(readOr(file))?.token === token) rmSync(file, { force: true });
    },
  };
}
