/** Child processes of the benchmark: spawn a Node script, read its lines, stop it, never leak it. */
import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync } from "node:fs";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of live) c.kill("SIGKILL");
});

export interface NodeChild {
  readonly proc: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGTERM (or `signal`), then SIGKILL after `graceMs`; resolves when it has exited. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  nodeArgs?: string[];
  env?: NodeJS.ProcessEnv;
  onStdout?: (line: string) => void;
  onStderr?: (line: string) => void;
  /** Append stdout and stderr to this file instead (onStdout/onStderr are then ignored). */
  logFile?: string;
}

export function scriptPath(rel: string): string {
  return fileURLToPath(new URL(rel, import.meta.url));
}

export function spawnNode(script: string, args: string[], o: SpawnOptions = {}): NodeChild {
  const argv = [...(o.nodeArgs ?? []), script, ...args];
  let fd: number | undefined;
  if (o.logFile) fd = openSync(o.logFile, "a");
  const proc = spawn(process.execPath, argv, {
    env: o.env ?? process.env,
    stdio: fd !== undefined ? ["ignore", fd, fd] : ["ignore", "pipe", "pipe"],
  });
  if (fd !== undefined) closeSync(fd);
  live.add(proc);
  if (proc.stdout) {
    const rl = createInterface({ input: proc.stdout });
    rl.on("line", (l) => o.onStdout?.(l));
  }
  if (proc.stderr) {
    const rl = createInterface({ input: proc.stderr });
    rl.on("line", (l) => (o.onStderr ? o.onStderr(l) : process.stderr.write(`${l}\n`)));
  }
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((done) => {
    proc.once("exit", (code, signal) => {
      live.delete(proc);
      done({ code, signal });
    });
    proc.once("error", () => {
      live.delete(proc);
      done({ code: -1, signal: null });
    });
  });
  let gone = false;
  void exited.then(() => (gone = true));
  return {
    proc,
    exited,
    async stop(signal = "SIGTERM", graceMs = 15_000) {
      if (gone) return;
      proc.kill(signal);
      const t = setTimeout(() => proc.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

/** Spawn, wait for a stdout line matching `ready`, return the child. */
export async function spawnReady(
  script: string,
  args: string[],
  ready: RegExp,
  o: SpawnOptions & { timeoutMs?: number } = {},
): Promise<NodeChild> {
  let seen: () => void = () => undefined;
  const up = new Promise<void>((done) => (seen = done));
  const child = spawnNode(script, args, {
    ...o,
    onStdout: (l) => {
      if (ready.test(l)) seen();
      o.onStdout?.(l);
    },
  });
  const timeout = o.timeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  const outcome = await Promise.race([
    up.then(() => "up" as const),
    child.exited.then(() => "exited" as const),
    new Promise<"timeout">((done) => (timer = setTimeout(() => done("timeout"), timeout))),
  ]);
  clearTimeout(timer);
  if (outcome !== "up") {
    await child.stop("SIGKILL");
    throw new Error(`${script} ${outcome === "exited" ? "exited" : "timed out"} before it was ready`);
  }
  return child;
}

/** Run a script to completion; its last stdout line is its JSON result. */
export async function runJson<T>(script: string, args: string[], o: SpawnOptions = {}): Promise<T> {
  const out: string[] = [];
  const err: string[] = [];
  const child = spawnNode(script, args, {
    ...o,
    onStdout: (l) => out.push(l),
    onStderr: (l) => {
      err.push(l);
      if (err.length > 50) err.shift();
      if (o.onStderr) o.onStderr(l);
      else process.stderr.write(`${l}\n`);
    },
  });
  const { code, signal } = await child.exited;
  const last = out.filter((l) => l.trim() !== "").pop();
  if (code !== 0 || last === undefined) {
    throw new Error(
      `${script} ${args.join(" ")} failed (${signal ?? `exit ${code}`}):\n${err.slice(-15).join("\n")}`,
    );
  }
  try {
    return JSON.parse(out.join("\n")) as T; // one (possibly pretty-printed) JSON document
  } catch {
    return JSON.parse(last) as T; // else the last line
  }
}
