/**
 * An exact decimal: `units / 10^scale`, with `units` a bigint. Addition, subtraction, multiplication
 * and comparison are exact (the scale grows as needed: a product's scale is the sum of its factors');
 * division and rounding are half-even at a given number of places, deterministically.
 *
 * Why not big.js (which this replaced): big.js keeps a digit array per value, and on the quote path
 * (every quote revalues every book that holds the symbol) its allocation and digit loops cost ~5×
 * what V8's bigint arithmetic does (bench/results: 75 µs per quote with 10 holders before, see the
 * README). The API is the subset of big.js the engine used, with the same semantics, and a property
 * test checks it against big.js as an oracle.
 */

const POW10: bigint[] = [1n];
function pow10(n: number): bigint {
  for (let i = POW10.length; i <= n; i++) POW10.push(POW10[i - 1]! * 10n);
  return POW10[n]!;
}
pow10(64);

/** Rounding modes, numbered as big.js numbers them. */
export const Rounding = { Down: 0, HalfUp: 1, HalfEven: 2, Up: 3 } as const;
export type Rounding = (typeof Rounding)[keyof typeof Rounding];

const NUMBER_RE = /^(-?)(\d+)(?:\.(\d+))?$/;

export type DecLike = Dec | number | string;

export class DecimalError extends RangeError {
  readonly code = "DECIMAL_INVALID";
  constructor(message: string) {
    super(message);
    this.name = "DecimalError";
  }
}

/** Rounds units/divisor to an integer (truncating division, then the mode decides the remainder). */
function roundDiv(n: bigint, d: bigint, rm: Rounding): bigint {
  if (d < 0n) {
    n = -n;
    d = -d;
  }
  const q = n / d;
  const r = n % d;
  if (r === 0n) return q;
  const sign = n < 0n ? -1n : 1n;
  const r2 = (r < 0n ? -r : r) * 2n;
  let away: boolean;
  switch (rm) {
    case Rounding.Down:
      away = false;
      break;
    case Rounding.Up:
      away = true;
      break;
    case Rounding.HalfUp:
      away = r2 >= d;
      break;
    default:
      away = r2 > d || (r2 === d && (q & 1n) === 1n);
  }
  return away ? q + sign : q;
}

/**
 * The exact value's text without trailing zeros (toFixed()): the fraction's trailing zeros are cut
 * from the digit string, with no bigint division per zero (the snapshot and the digest write every
 * figure this way).
 */
function exactText(units: bigint, scale: number): string {
  if (units === 0n) return "0";
  const neg = units < 0n;
  let digits = (neg ? -units : units).toString();
  let places = scale;
  let end = digits.length;
  while (places > 0 && digits.charCodeAt(end - 1) === 48) {
    end--;
    places--;
  }
  if (end !== digits.length) digits = digits.slice(0, end);
  if (places === 0) return neg ? `-${digits}` : digits;
  if (digits.length <= places) digits = "0".repeat(places - digits.length + 1) + digits;
  const text = `${digits.slice(0, digits.length - places)}.${digits.slice(digits.length - places)}`;
  return neg ? `-${text}` : text;
}

export class Dec {
  /** The value is units / 10^scale; scale ≥ 0. */
  constructor(
    readonly units: bigint,
    readonly scale: number,
  ) {}

  static of(v: DecLike): Dec {
    if (v instanceof Dec) return v;
    if (typeof v === "number") {
      if (!Number.isSafeInteger(v)) throw new DecimalError(`not an exact integer: ${v}`);
      return new Dec(BigInt(v), 0);
    }
    const m = NUMBER_RE.exec(v);
    if (!m) throw new DecimalError(`not a decimal string: ${v}`);
    const frac = m[3] ?? "";
    const units = BigInt(m[2]! + frac);
    return new Dec(m[1] ? -units : units, frac.length);
  }

  /** 1 or -1, as big.js's `s` (zero is positive). */
  get s(): 1 | -1 {
    return this.units < 0n ? -1 : 1;
  }

  /** This value's units at a scale ≥ its own. */
  private at(scale: number): bigint {
    return scale === this.scale ? this.units : this.units * pow10(scale - this.scale);
  }

  plus(other: DecLike): Dec {
    const o = Dec.of(other);
    if (o.units === 0n) return this;
    if (this.units === 0n) return o;
    const k = Math.max(this.scale, o.scale);
    return new Dec(this.at(k) + o.at(k), k);
  }

  minus(other: DecLike): Dec {
    const o = Dec.of(other);
    if (o.units === 0n) return this;
    const k = Math.max(this.scale, o.scale);
    return new Dec(this.at(k) - o.at(k), k);
  }

  times(other: DecLike): Dec {
    const o = Dec.of(other);
    if (o.scale === 0 && o.units === 1n) return this;
    return new Dec(this.units * o.units, this.scale + o.scale);
  }

  /** this / other, rounded half-even to `dp` places (18, as big.js's DP was set). */
  div(other: DecLike, dp = 18): Dec {
    const o = Dec.of(other);
    if (o.units === 0n) throw new DecimalError("division by zero");
    // (a / 10^ka) / (b / 10^kb) = a·10^kb / (b·10^ka); at dp places: × 10^dp
    const n = this.units * pow10(o.scale + dp);
    const d = o.units * pow10(this.scale);
    return new Dec(roundDiv(n, d, Rounding.HalfEven), dp);
  }

  cmp(other: DecLike): -1 | 0 | 1 {
    const o = Dec.of(other);
    let a = this.units;
    let b = o.units;
    if (this.scale > o.scale) b *= pow10(this.scale - o.scale);
    else if (this.scale < o.scale) a *= pow10(o.scale - this.scale);
    return a < b ? -1 : a > b ? 1 : 0;
  }

  eq(other: DecLike): boolean {
    return this.cmp(other) === 0;
  }
  gt(other: DecLike): boolean {
    return this.cmp(other) > 0;
  }
  gte(other: DecLike): boolean {
    return this.cmp(other) >= 0;
  }
  lt(other: DecLike): boolean {
    return this.cmp(other) < 0;
  }
  lte(other: DecLike): boolean {
    return this.cmp(other) <= 0;
  }

  abs(): Dec {
    return this.units < 0n ? new Dec(-this.units, this.scale) : this;
  }

  neg(): Dec {
    return this.units === 0n ? this : new Dec(-this.units, this.scale);
  }

  /** Rounded to `dp` places (default 0) by `rm` (default half-even). */
  round(dp = 0, rm: Rounding = Rounding.HalfEven): Dec {
    if (dp >= this.scale) return this;
    return new Dec(roundDiv(this.units, pow10(this.scale - dp), rm), dp);
  }

  /** Without trailing zeros in the fraction: the same value at the smallest scale. */
  normalize(): Dec {
    let u = this.units;
    let k = this.scale;
    if (u === 0n) return k === 0 ? this : new Dec(0n, 0);
    while (k > 0 && u % 10n === 0n) {
      u /= 10n;
      k--;
    }
    return k === this.scale ? this : new Dec(u, k);
  }

  /**
   * Fixed-point text, never an exponent: with `dp`, rounded half-even and padded to exactly `dp`
   * places; without, the exact value with no trailing zeros ("-0" never appears).
   */
  toFixed(dp?: number): string {
    if (dp === undefined) return exactText(this.units, this.scale);
    const d = this.round(dp);
    const places = dp;
    const neg = d.units < 0n;
    let digits = (neg ? -d.units : d.units).toString();
    // pad the fraction to the wanted places (when dp exceeds the value's own scale)
    if (places > d.scale) digits += "0".repeat(places - d.scale);
    if (digits.length <= places) digits = "0".repeat(places - digits.length + 1) + digits;
    const int = digits.slice(0, digits.length - places);
    const text = places > 0 ? `${int}.${digits.slice(digits.length - places)}` : int;
    return neg ? `-${text}` : text;
  }

  toString(): string {
    return this.toFixed();
  }

  toJSON(): string {
    return this.toFixed();
  }
}
