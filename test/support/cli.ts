/** Runs the CLI in-process (`main(argv)`) with stdout and stderr captured. */
import { expect, vi } from "vitest";
import { main } from "../../src/cli/main.js";

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
