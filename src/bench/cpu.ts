/** CPU time a process has used so far (user + system), from /proc on Linux; undefined elsewhere. */
import { readFileSync } from "node:fs";

const TICK_MS = 10; // USER_HZ is 100 on every Linux configuration Node supports

export function cpuMs(pid: number | undefined): number | undefined {
  if (pid === undefined || process.platform !== "linux") return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // fields after the command name (which may contain spaces) start at ") "
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return Number.isFinite(utime + stime) ? (utime + stime) * TICK_MS : undefined;
  } catch {
    return undefined;
  }
}

/** CPU milliseconds each named process used while `fn` ran. */
export async function measureCpu<T>(
  pids: Record<string, number | undefined>,
  fn: () => Promise<T>,
): Promise<{ result: T; cpu_ms: Record<string, number> }> {
  const before = Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMs(pid)]));
  const result = await fn();
  const cpu: Record<string, number> = {};
  for (const [k, pid] of Object.entries(pids)) {
    const a = before[k];
    const b = cpuMs(pid);
    if (a !== undefined && b !== undefined) cpu[k] = b - a;
  }
  return { result, cpu_ms: cpu };
}
