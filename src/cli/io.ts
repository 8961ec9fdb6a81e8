/** Input files (JSON or YAML) and output (JSON on stdout) of the CLI commands. */
import { readFileSync } from "node:fs";
import { extname } from "node:path";
import { InvalidArgumentError } from "commander";
import { yaml } from "../config/yaml.js";
import { CliError, firstLine } from "./common.js";

/**
 * A JSON or YAML file (YAML unless the name ends in .json). In YAML, plain (unquoted) non-integer
 * numbers keep their text, so `max_position_pct: 0.10` becomes the decimal string "0.10".
 */
export function readDataFile(file: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(
      `${file}: ${code === "ENOENT" ? "not found" : `cannot read (${code ?? firstLine(err)})`}`,
    );
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // a byte-order mark (Windows editors)
  if (extname(file).toLowerCase() === ".json") {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new CliError(`${file}: invalid JSON: ${firstLine(err)}`, 2, { cause: err });
    }
  }
  const { parseDocument, visit } = yaml();
  const doc = parseDocument(text);
  const problem = doc.errors[0];
  if (problem) throw new CliError(`${file}: invalid YAML: ${firstLine(problem)}`, 2, { cause: problem });
  visit(doc, {
    Scalar(_key, node) {
      const n = node.value;
      if (typeof n === "number" && !Number.isSafeInteger(n) && node.type === "PLAIN" && node.source) {
        node.value = node.source;
      }
    },
  });
  return doc.toJS() as unknown;
}

/** Pretty JSON (2 spaces) on stdout. */
export function printJson(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);
}

/** One JSON value per line on stdout. */
export function printLine(v: unknown): void {
  process.stdout.write(`${JSON.stringify(v)}\n`);
}

/** Node's longest timer (2^31 − 1 ms): a longer one fires at once (TimeoutOverflowWarning). */
const MAX_TIMER_MS = 2_147_483_647;

/** Commander argument parser: a timeout in ms, a positive integer a timer can hold. */
export function timeoutMs(value: string): number {
  const n = positiveInt(value);
  if (n > MAX_TIMER_MS) throw new InvalidArgumentError(`must be at most ${MAX_TIMER_MS}`);
  return n;
}

/** Commander argument parser: a positive integer. */
export function positiveInt(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n <= 0) {
    throw new InvalidArgumentError("must be a positive integer");
  }
  return n;
}
