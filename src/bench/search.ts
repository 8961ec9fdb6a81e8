/**
 * The sustainable-rate search (issue 11, "the bench must be able to see the difference"), as pure
 * logic over an injected `measure(target, rate)`, so that it is unit-tested without a bus.
 *
 * A target sustains a rate when, over a step at that rate, failures ≤ maxFailurePct, rejections ≤
 * maxRejectedPct (the book rejects 10 % by design; more means the target rejected for its own
 * reasons, e.g. STALE_MARKET_DATA) and p99 ≤ max(floorMs, relative × the journaled baseline's p99
 * at that same rate, measured in the same step) — and never above saturationMs, whatever the
 * baseline does: a p99 that high is a queue growing, not a rate sustained (without it the journaled
 * baseline, judged against itself, would be bounded by its failures alone).
 *
 * The rate ramps from `from` by ×factor; every target still ramping, and the journaled baseline,
 * is measured at each step (the order of the targets alternating from step to step). A failing
 * step is measured once more before it counts (one neighbour's burst on a shared machine should
 * not end a search). A target failing at `from` steps down (÷factor, to `lowest`) until a rate passes,
 * the baseline measured at each such rate too. Then, per target, bisection (geometric midpoints) between its last passing and
 * first failing rate, the journaled baseline measured at every midpoint too. At and above the
 * baseline's own first failing rate it is not measured again (its p99 there is past the bound, or
 * it fails): the limit there is saturationMs. Beside it, the rate at which the absolute floor
 * (p99 ≤ floorMs) held over the same steps.
 */

export interface StepFigures {
  rate: number;
  p50_ms: number;
  p99_ms: number;
  failure_pct: number;
  rejected_pct: number;
  lag_p99_ms: number;
}

export interface Criterion {
  floorMs: number;
  /** × the journaled baseline's p99 at the same rate. */
  relative: number;
  saturationMs: number;
  maxFailurePct: number;
  maxRejectedPct: number;
}

export const CRITERION: Criterion = {
  floorMs: 5,
  relative: 1.25,
  saturationMs: 100,
  maxFailurePct: 0.1,
  maxRejectedPct: 15,
};

export interface Judged extends StepFigures {
  /** The p99 limit at this rate: max(floor, relative × journaled p99), at most saturationMs. */
  limit_ms: number;
  journal_p99_ms: number;
  pass: boolean;
  /** p99 ≤ floorMs and the failure and rejection bounds: the absolute floor. */
  floor_pass: boolean;
  /** Why it failed ("" when it passed). */
  why: string;
  /** "reference": the journaled baseline measured for another target's descent or bisection only. */
  phase: "ramp" | "retry" | "descend" | "reference" | "bisect";
}

export function p99Limit(journalP99: number, c: Criterion = CRITERION): number {
  return Math.min(c.saturationMs, Math.max(c.floorMs, c.relative * journalP99));
}

export function judge(
  s: StepFigures,
  journalP99: number,
  phase: Judged["phase"],
  c: Criterion = CRITERION,
): Judged {
  const limit = p99Limit(journalP99, c);
  const why: string[] = [];
  if (s.failure_pct > c.maxFailurePct) why.push(`failures ${s.failure_pct} % > ${c.maxFailurePct} %`);
  if (s.rejected_pct > c.maxRejectedPct) why.push(`rejections ${s.rejected_pct} % > ${c.maxRejectedPct} %`);
  const bounded = why.length === 0;
  if (s.p99_ms > limit) why.push(`p99 ${s.p99_ms} ms > ${+limit.toFixed(3)} ms`);
  return {
    ...s,
    limit_ms: +limit.toFixed(3),
    journal_p99_ms: journalP99,
    pass: why.length === 0,
    floor_pass: bounded && s.p99_ms <= c.floorMs,
    why: why.join(", "),
    phase,
  };
}

/** The geometric midpoint of (lo, hi), rounded to `unit`; undefined when the gap is closed. */
export function midpoint(lo: number, hi: number, minRatio = 1.1, unit = 10): number | undefined {
  if (lo <= 0 || hi / lo <= minRatio) return undefined;
  const mid = Math.round(Math.sqrt(lo * hi) / unit) * unit;
  return mid > lo && mid < hi ? mid : undefined;
}

export function nextRate(rate: number, factor: number, unit = 10): number {
  return Math.max(rate + unit, Math.round((rate * factor) / unit) * unit);
}

/** The step below `rate` (÷ factor, rounded to `unit`, at least `unit` lower). */
export function downRate(rate: number, factor: number, unit = 10): number {
  return Math.min(rate - unit, Math.round(rate / factor / unit) * unit);
}

export interface SearchSettings {
  from: number;
  factor: number;
  cap: number;
  /** Bisection steps per target after the ramp. */
  bisect: number;
  /**
   * A target failing at `from` is measured at lower rates (÷ factor a step, not below `lowest`)
   * until one passes, so that its figure is a bracket, not "below the first step".
   */
  lowest?: number;
  criterion?: Criterion;
}

export interface TargetSearch {
  target: string;
  /** The highest rate that passed, with every ramp step below it passing: 0 when the first failed. */
  sustainable_rate: number;
  /** The lowest rate that failed (twice at a ramp step), if any below the cap. */
  first_failing_rate?: number;
  /** The highest ramp or bisection rate at which p99 ≤ floorMs held, every lower step holding too. */
  floor_rate: number;
  stopped_by: string;
  steps: Judged[];
}

export type Measure = (target: string, rate: number) => Promise<StepFigures>;

/**
 * Runs the search for `targets` (which must include `journal`, the reference). `say` is told of
 * every judged step (progress output).
 */
export async function searchRates(
  targets: string[],
  measure: Measure,
  s: SearchSettings,
  say: (target: string, j: Judged) => void = () => undefined,
): Promise<TargetSearch[]> {
  const c = s.criterion ?? CRITERION;
  if (!targets.includes("journal")) throw new Error("the search needs the journaled baseline");
  const st = new Map(
    targets.map((t) => [
      t,
      { lastPass: 0, firstFail: undefined as number | undefined, steps: [] as Judged[] },
    ]),
  );
  /** The journaled baseline's latest measurement at each rate: the reference of that rate. */
  const reference = new Map<number, StepFigures>();
  /** At and above the baseline's first failing rate it is not measured again: the limit is the bound. */
  const beyondJournal = (rate: number): boolean => {
    const fail = st.get("journal")!.firstFail;
    return fail !== undefined && rate >= fail && !reference.has(rate);
  };
  const judged = (t: string, f: StepFigures, phase: Judged["phase"]): Judged => {
    const ref = beyondJournal(f.rate)
      ? Number.POSITIVE_INFINITY
      : (reference.get(f.rate)?.p99_ms ?? f.p99_ms);
    const j = judge(f, ref, phase, c);
    st.get(t)!.steps.push(j);
    say(t, j);
    return j;
  };
  const run = async (t: string, rate: number): Promise<StepFigures> => {
    const f = await measure(t, rate);
    if (t === "journal") reference.set(rate, f);
    return f;
  };
  const settle = (t: string, rate: number, pass: boolean) => {
    const ts = st.get(t)!;
    if (pass) ts.lastPass = rate;
    else ts.firstFail = rate;
  };

  const ramping = new Set(targets);
  let rate = s.from;
  let k = 0;
  while (ramping.size > 0 && rate <= s.cap) {
    const order = k++ % 2 === 0 ? targets : [...targets].reverse();
    // Everyone still ramping, and the journaled baseline (the reference) in its turn.
    const figures = new Map<string, StepFigures>();
    for (const t of order) {
      if (ramping.has(t) || (t === "journal" && !beyondJournal(rate))) figures.set(t, await run(t, rate));
    }
    // Judged against the step's first measurement of the baseline: its own retry comes last.
    const judging = [...figures].sort(([a], [b]) => Number(a === "journal") - Number(b === "journal"));
    for (const [t, f] of judging) {
      if (!ramping.has(t)) continue; // the baseline measured as the reference only
      let pass = judged(t, f, "ramp").pass;
      if (!pass) pass = judged(t, await run(t, rate), "retry").pass;
      settle(t, rate, pass);
      if (!pass) ramping.delete(t);
    }
    // The journal's own record when it only served as the reference.
    const j = figures.get("journal");
    if (j && !st.get("journal")!.steps.some((x) => x.rate === rate)) judged("journal", j, "ramp");
    rate = nextRate(rate, s.factor);
  }

  // Below the first step: down by the same factor until a rate passes (the first failing rate is
  // then the lowest that failed), or the lowest rate fails too (sustainable: 0).
  for (const t of targets) {
    const ts = st.get(t)!;
    const lowest = s.lowest ?? s.from;
    for (let r = downRate(s.from, s.factor); ts.lastPass === 0 && r >= lowest; r = downRate(r, s.factor)) {
      if (t !== "journal" && !reference.has(r)) judged("journal", await run("journal", r), "reference");
      let pass = judged(t, await run(t, r), "descend").pass;
      if (!pass) pass = judged(t, await run(t, r), "retry").pass;
      settle(t, r, pass);
    }
  }

  for (const t of targets) {
    const ts = st.get(t)!;
    for (let i = 0; i < s.bisect && ts.firstFail !== undefined; i++) {
      const mid = midpoint(ts.lastPass, ts.firstFail);
      if (mid === undefined) break;
      if (t !== "journal" && !reference.has(mid) && !beyondJournal(mid)) {
        judged("journal", await run("journal", mid), "reference");
      }
      settle(t, mid, judged(t, await run(t, mid), "bisect").pass);
    }
  }

  return targets.map((t) => {
    const ts = st.get(t)!;
    const last = [...ts.steps].reverse().find((j) => j.rate === ts.firstFail && !j.pass);
    return {
      target: t,
      sustainable_rate: ts.lastPass,
      ...(ts.firstFail !== undefined ? { first_failing_rate: ts.firstFail } : {}),
      floor_rate: floorRate(ts.steps),
      stopped_by: ts.firstFail === undefined ? "cap" : `${ts.firstFail}/s: ${last?.why ?? "?"}`,
      steps: ts.steps,
    };
  });
}

/**
 * The highest rate at which the absolute floor held, every lower measured rate holding it too (a
 * rate measured twice holds when either measurement did: the retry rule of the ramp).
 */
export function floorRate(steps: Judged[]): number {
  const byRate = new Map<number, boolean>();
  for (const s of steps) {
    if (s.phase === "reference") continue; // below its own search: not its figure
    byRate.set(s.rate, (byRate.get(s.rate) ?? false) || s.floor_pass);
  }
  let best = 0;
  for (const [rate, ok] of [...byRate].sort((a, b) => a[0] - b[0])) {
    if (!ok) break;
    best = rate;
  }
  return best;
}

/** Spread of one target's figure between its rounds: (max − min) / mean, in %. */
export function spreadPct(values: number[]): number | undefined {
  if (values.length < 2) return undefined;
  const mean = values.reduce((a, v) => a + v, 0) / values.length;
  if (mean <= 0) return 0;
  return +(((Math.max(...values) - Math.min(...values)) / mean) * 100).toFixed(1);
}
