/** What the benchmark ran on: CPU, cores, memory, Node, nats-server, the commit, the load before. */
import { execFileSync } from "node:child_process";
import { cpus, loadavg, release, totalmem, type as osType } from "node:os";
import { findNatsServer } from "../bus/nats-server.js";

function run(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return "";
  }
}

export interface Machine {
  cpu_model: string;
  cores: number;
  memory_gb: number;
  os: string;
  node: string;
  nats_server: string;
  commit: string;
  load_average_at_start: number[];
}

export function machine(): Machine {
  const bin = findNatsServer();
  const dirty = run("git", ["status", "--porcelain", "--untracked-files=no"]) !== "";
  return {
    cpu_model: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    memory_gb: +(totalmem() / 2 ** 30).toFixed(1),
    os: `${osType()} ${release()}`,
    node: process.version,
    nats_server: bin ? run(bin, ["--version"]).replace(/^nats-server:\s*/, "") : "not found",
    commit: `${run("git", ["rev-parse", "--short", "HEAD"]) || "unknown"}${dirty ? " (with uncommitted changes)" : ""}`,
    load_average_at_start: loadavg().map((x) => +x.toFixed(2)),
  };
}
