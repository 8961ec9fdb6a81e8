/**
 * `JSON.parse` for an order, with the two refusals plain `JSON.parse` does not make (CONTRACT.md
 * "Encoding": a JSON number is accepted only where it is an exactly representable integer; a value
 * exactly at a limit passes, one smallest unit above it fails):
 *
 *  - a number whose text is not an integer but which `JSON.parse` rounds to one
 *    (`100.0000000000000001` reads as 100, as a Java `BigDecimal` written as a JSON number would) is
 *    handed to the schema as a non-integer, so it is `SCHEMA_INVALID` at its field like `100.5`,
 *    never judged as 100. A number whose text is exactly an integer (`100.0`, `1e2`) stays the
 *    integer it is;
 *  - a name given twice in one object (`"quantity":"1000000", …, "quantity":"1"`) is refused (the
 *    fields the engine reads, see `known`):
 *    `JSON.parse` keeps the last value, other parsers keep the first, so the OMS and the engine
 *    could read two different orders from one body.
 *
 * One pass over the text finds both (numbers outside strings; names counted per object); the
 * body is then parsed by `JSON.parse` as before. The rare body with a rounded number is parsed
 * again with that number's text replaced by a non-integer of the same integer part.
 */

export class JsonDuplicateKeyError extends Error {
  readonly code = "JSON_DUPLICATE_KEY";
  constructor(readonly path: string) {
    super(path ? `${path}: given twice in one object` : "a name is given twice in one object");
    this.name = "JsonDuplicateKeyError";
  }
}

const QUOTE = 34;
const BACKSLASH = 92;
const COLON = 58;
const OPEN_BRACE = 123;

const isNumberStart = (c: number) => c === 45 || (c >= 48 && c <= 57); // '-' or a digit
const isNumberChar = (c: number) =>
  (c >= 48 && c <= 57) || c === 45 || c === 43 || c === 46 || c === 101 || c === 69; // 0-9 - + . e E
const isSpace = (c: number) => c === 32 || c === 9 || c === 10 || c === 13;

/** The end (exclusive) of the string literal starting at the quote at `i`. */
function stringEnd(text: string, i: number): number {
  const n = text.length;
  for (let j = i + 1; j < n; j++) {
    const c = text.charCodeAt(j);
    if (c === BACKSLASH) j++;
    else if (c === QUOTE) return j + 1;
  }
  return n;
}

/**
 * Whether the number literal `t` (valid JSON) is exactly the safe integer `v`. Only literals with
 * a fraction or an exponent get here (a plain integer literal is what it reads as, or not safe).
 */
function isExactly(t: string, v: number): boolean {
  let s = t;
  const neg = s.charCodeAt(0) === 45;
  if (neg) s = s.slice(1);
  let exp = 0;
  const e = s.search(/[eE]/);
  if (e >= 0) {
    exp = Number(s.slice(e + 1));
    s = s.slice(0, e);
  }
  const dot = s.indexOf(".");
  let digits = s;
  if (dot >= 0) {
    digits = s.slice(0, dot) + s.slice(dot + 1);
    exp -= s.length - dot - 1;
  }
  // value = digits × 10^exp
  let units = BigInt(digits);
  if (neg) units = -units;
  if (exp >= 0) return exp <= 400 && units * 10n ** BigInt(exp) === BigInt(v);
  if (-exp > digits.length + 1) return units === 0n && v === 0;
  const p = 10n ** BigInt(-exp);
  return units % p === 0n && units / p === BigInt(v);
}

/** Names in every object of a parsed value (iterative: a body may nest arrays thousands deep). */
function keyCount(v: unknown): number {
  let n = 0;
  const stack: unknown[] = [v];
  while (stack.length > 0) {
    const x = stack.pop();
    if (x === null || typeof x !== "object") continue;
    if (Array.isArray(x)) {
      for (const y of x) if (y !== null && typeof y === "object") stack.push(y);
      continue;
    }
    for (const k in x) {
      n++;
      const y = (x as Record<string, unknown>)[k];
      if (y !== null && typeof y === "object") stack.push(y);
    }
  }
  return n;
}

/** The names given twice among the top-level object's own names, in the order met. */
function duplicatesTopLevel(text: string): string[] {
  const seen = new Set<string>();
  const twice: string[] = [];
  let depth = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (depth === 1) {
        let j = end;
        while (j < n && isSpace(text.charCodeAt(j))) j++;
        if (text.charCodeAt(j) === COLON) {
          const name = JSON.parse(text.slice(i, end)) as string;
          if (seen.has(name)) twice.push(name);
          seen.add(name);
        }
      }
      i = end - 1;
    } else if (c === OPEN_BRACE || c === 91) depth++;
    else if (c === 125 || c === 93) depth--;
  }
  return twice;
}

/**
 * Parses an order's JSON text. Throws SyntaxError for text that is not JSON (as `JSON.parse`) and
 * JsonDuplicateKeyError for a name given twice in one object: with `known`, only for a top-level
 * name in it (the fields the engine reads, all scalars). A name given twice anywhere else is in a
 * field the engine ignores (CONTRACT.md: "Unknown fields are ignored") or inside a known field
 * that is then not a scalar (SCHEMA_INVALID at that field anyway): `JSON.parse`'s reading stands.
 */
export function parseOrderJson(text: string, known?: ReadonlySet<string>): unknown {
  const n = text.length;
  let names = 0;
  let rounded: { start: number; end: number }[] | undefined;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      let j = end;
      while (j < n && isSpace(text.charCodeAt(j))) j++;
      if (text.charCodeAt(j) === COLON) names++;
      i = end - 1;
    } else if (isNumberStart(c)) {
      let j = i + 1;
      let plain = true;
      while (j < n && isNumberChar(text.charCodeAt(j))) {
        const d = text.charCodeAt(j);
        if (d < 48 || d > 57) plain = false;
        j++;
      }
      if (!plain) {
        const t = text.slice(i, j);
        const v = Number(t);
        if (Number.isSafeInteger(v) && !isExactly(t, v)) (rounded ??= []).push({ start: i, end: j });
      }
      i = j - 1;
    }
  }
  const value: unknown = JSON.parse(text);
  if (keyCount(value) !== names) {
    const twice = duplicatesTopLevel(text);
    if (!known) throw new JsonDuplicateKeyError(twice[0] ?? "");
    const name = twice.find((k) => known.has(k));
    if (name !== undefined) throw new JsonDuplicateKeyError(name);
  }
  if (!rounded) return value;
  // each rounded number becomes its integer part and a half: not an integer, so the schema refuses
  // it at its field exactly as it refuses any other non-integer JSON number
  let out = "";
  let from = 0;
  for (const r of rounded) {
    const v = Number(text.slice(r.start, r.end));
    out += `${text.slice(from, r.start)}${v}.5`;
    from = r.end;
  }
  return JSON.parse(out + text.slice(from));
}
