/**
 * Red team s30g: "operators replay the streams to rebuild state and get the same state back", and
 * a restart from the SQLite snapshot gives the same state and the same future decisions.
 *
 * A random history over every consumed stream is driven through a live engine in process
 * (redteam-s30g-support.ts: decider + projector, its decisions journaled and read back, some
 * messages held back while a check is decided, the periodic sweep on clock moves). Then three
 * states are compared: the live one, a rebuild from the same logs with the streams in another order
 * (one after another the rebuild's way, or a random merge as an engine starting on an empty
 * directory folds them), and the live state flushed in the background to a snapshot and loaded.
 * Compared: the digest lines, and the decisions each gives to the same probe orders (sized near the
 * limits, retries of earlier keys, reused order ids) at the same clock.
 *
 * Exclusions (README "Known limits"): the logs are unbounded (no per-subject limit), and no fill or
 * OMS event reaches an order record after the live engine may have forgotten it (a TTL after it was
 * last touched): "an order record the live engine forgot ... meets a late fill or accepted
 * differently from a rebuild". The whole run spans less than the idempotency window.
 */
import { afterAll, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import fc from "fast-check";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CONSUMED_STREAMS, Subjects, type StreamName } from "../../src/contract/subjects.js";
import { canonicalJson, toWire } from "../../src/contract/wire.js";
import {
  type EngineState,
  type Snapshot,
  type StateSettings,
  createState,
  foldTheRebuildWay,
  openSnapshot,
  revalueDeferred,
  sweepIdempotency,
  sweepReservations,
} from "../../src/state/index.js";
import { canonicalLines } from "../../src/state/digest.js";
import { manualClock } from "../../src/time/clock.js";
import {
  LiveSim,
  applySteps,
  decideOn,
  deciderFor,
  isoOf,
  randomMerge,
  sequential,
} from "./redteam-s30g-support.js";

const START = Date.parse("2026-11-23T14:30:00.000Z"); // a Monday, mid-session
const TTL = 60_000;
const FUNDS = ["g1", "g2"] as const;
const SYMBOLS = ["AAPL", "MSFT", "ESZ6"] as const;
const REFDATA: Record<string, Record<string, unknown>> = {
  AAPL: { symbol: "AAPL", asset_class: "equity", sector: "tech", shortable: true, adv: "100000" },
  MSFT: { symbol: "MSFT", asset_class: "equity", sector: "tech", shortable: false },
  ESZ6: { symbol: "ESZ6", asset_class: "future", multiplier: "50", shortable: true },
};

const dir = mkdtempSync(join(tmpdir(), "riskengine-s30g-"));
let snapN = 0;
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------
// actions

const fundArb = fc.constantFrom(...FUNDS);
const symArb = fc.constantFrom(...SYMBOLS);
const sideArb = fc.constantFrom("BUY", "SELL");
const qtyArb = fc.constantFrom("1", "5", "10", "40", "99", "100", "101", "250");
const pxArb = fc.constantFrom("99.5", "100", "100.25", "101", "2");

const actionArb = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant("envelope" as const),
      fund: fundArb,
      /** 0: the next version; 1: an older version again (stale, ignored) */
      stale: fc.constantFrom(0, 0, 0, 1),
      capital: fc.constantFrom("100000", "200000", "50000"),
      posPct: fc.constantFrom(undefined, "0.1", "0.2"),
      grossPct: fc.constantFrom(undefined, "0.3", "1"),
      maxOpen: fc.constantFrom(undefined, 2, 4),
      velocity: fc.boolean(),
      dupMs: fc.constantFrom(undefined, 2000),
      quoteAge: fc.constantFrom(undefined, 30_000),
      shorting: fc.boolean(),
      stopPct: fc.constantFrom(undefined, "0.05"),
      hold: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ k: fc.constant("refdata" as const), symbol: symArb, hold: fc.boolean() }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("quote" as const),
      symbol: symArb,
      px: pxArb,
      /** two-sided, crossed, zero bid, zero ask, old timestamp, far future timestamp */
      shape: fc.constantFrom("two", "two", "two", "crossed", "bid0", "ask0", "old", "future"),
      hold: fc.boolean(),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({
      k: fc.constant("check" as const),
      fund: fundArb,
      symbol: symArb,
      side: sideArb,
      qty: qtyArb,
      px: pxArb,
      /** 0 fresh; 1 retry of an earlier request; 2 conflicting reuse of a key; 3 earlier order id, new key; 4 the order id a fill already named */
      kind: fc.constantFrom(0, 0, 0, 0, 1, 2, 3, 4),
      pick: fc.nat(),
      broker: fc.constantFrom("paper", "ibkr"),
      /** the journal's read-back comes later (the decision record held back) */
      holdJournal: fc.constantFrom(false, false, false, true),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("batch" as const),
      fund: fundArb,
      orders: fc.array(fc.record({ symbol: symArb, side: sideArb, qty: qtyArb, px: pxArb }), {
        minLength: 1,
        maxLength: 3,
      }),
      holdJournal: fc.boolean(),
    }),
  },
  /** the snapshot flushed in the background here (once: the first one counts) */
  { weight: 1, arbitrary: fc.record({ k: fc.constant("snap" as const) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant("fill" as const),
      pick: fc.nat(),
      /** 0: an approved order; 1: an order not decided yet; 2: external; 3: duplicate of an earlier fill */
      kind: fc.constantFrom(0, 0, 0, 1, 2, 3),
      frac: fc.constantFrom("1", "0.5", "0.2"),
      px: pxArb,
      hold: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("event" as const),
      pick: fc.nat(),
      event: fc.constantFrom("accepted", "accepted", "cancelled", "rejected", "done", "expired"),
      withFilled: fc.boolean(),
      hold: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      k: fc.constant("control" as const),
      fund: fundArb,
      halt: fc.boolean(),
      severity: fc.constantFrom("MANUAL", "KILL_SWITCH"),
      hold: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      k: fc.constant("clock" as const),
      ms: fc.constantFrom(1, 250, 1000, 5000, TTL - 1, TTL, TTL + 1, 2 * TTL + 7),
      sweep: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("deliver" as const), reverse: fc.boolean() }) },
);
type Action = typeof actionArb extends fc.Arbitrary<infer T> ? T : never;

interface Known {
  fund: string;
  orderId: string;
  symbol: string;
  side: string;
  qty: string;
  /** When a message last named this order id (decision, fill, event). */
  touched: number;
  approved: boolean;
}

interface Run {
  live: LiveSim;
  sent: Record<string, unknown>[];
  known: Known[];
  /** The live engine's own snapshot, flushed in the background now and then (one write at a time). */
  snap: Snapshot;
  snapPath: string;
  pending?: Promise<unknown> | undefined;
  /** A copy of the snapshot as a part-way flush left it (the restart from it folds the tail). */
  midPath?: string | undefined;
}

/** Copies the live snapshot's committed content (VACUUM INTO: WAL included) for a restart from it. */
function copyOfSnapshot(run: Run): void {
  if (run.midPath !== undefined) return;
  const to = join(dir, `mid-${++snapN}.db`);
  const db = new Database(run.snapPath, { readonly: true });
  try {
    db.exec(`VACUUM INTO '${to}'`);
  } finally {
    db.close();
  }
  run.midPath = to;
}

async function drive(actions: readonly Action[], settings: Partial<StateSettings>): Promise<Run> {
  const live = new LiveSim(START, settings);
  const snapPath = join(dir, `snap-${++snapN}.db`);
  const run: Run = { live, sent: [], known: [], snap: openSnapshot(snapPath), snapPath };
  const versions = new Map<string, number>();
  const { sent, known } = run;
  const fills: { subject: string; body: Record<string, unknown> }[] = [];
  const preFilled: Known[] = []; // fills naming an order id before its decision
  let n = 0;
  const now = () => live.clock.now();
  // no late message for an order record the live engine forgot (documented exclusion); one held
  // back that reaches it after it was forgotten excludes the run (LiveSim.lateAfterForget)
  const alive = (k: Known) => live.holds(k.fund, k.orderId);
  const pick = <T>(xs: readonly T[], i: number): T | undefined => (xs.length ? xs[i % xs.length] : undefined);
  const touch = (orderId: string) => {
    for (const k of known) if (k.orderId === orderId) k.touched = now();
  };

  // both funds start with an envelope and the refdata of AAPL (the rest arrives later, or never)
  for (const f of FUNDS) {
    versions.set(f, 1);
    live.publish("RISK_ENVELOPES", Subjects.envelopeUpdated(f), {
      fund_id: f,
      version: 1,
      capital: "100000",
      allowed_brokers: ["paper", "ibkr"],
      allowed_order_types: ["LIMIT", "MARKET"],
      max_position_pct: "0.1",
    });
  }
  live.publish("REFDATA", Subjects.instrument("AAPL"), REFDATA["AAPL"]);

  for (const a of actions) {
    switch (a.k) {
      case "envelope": {
        const cur = versions.get(a.fund) ?? 0;
        const version = a.stale && cur > 1 ? cur - 1 : cur + 1;
        versions.set(a.fund, Math.max(cur, version));
        live.publish(
          "RISK_ENVELOPES",
          Subjects.envelopeUpdated(a.fund),
          {
            fund_id: a.fund,
            version,
            capital: a.capital,
            allowed_brokers: ["paper", "ibkr"],
            allowed_order_types: ["LIMIT", "MARKET"],
            enable_shorting: a.shorting,
            ...(a.posPct === undefined ? {} : { max_position_pct: a.posPct }),
            ...(a.grossPct === undefined ? {} : { max_gross_exposure_pct: a.grossPct }),
            ...(a.maxOpen === undefined ? {} : { max_open_orders: a.maxOpen }),
            ...(a.velocity ? { velocity: { window_s: 10, max_orders: 4 } } : {}),
            ...(a.dupMs === undefined ? {} : { duplicate_window_ms: a.dupMs }),
            ...(a.quoteAge === undefined ? {} : { max_quote_age_ms: a.quoteAge }),
            ...(a.stopPct === undefined ? {} : { synthetic_stop_pct: a.stopPct }),
          },
          a.hold,
        );
        break;
      }
      case "refdata":
        live.publish("REFDATA", Subjects.instrument(a.symbol), REFDATA[a.symbol], a.hold);
        break;
      case "quote": {
        const px = Number(a.px);
        let bid = (px - 0.01).toFixed(2);
        let ask = (px + 0.01).toFixed(2);
        let ts = now();
        if (a.shape === "crossed") [bid, ask] = [ask, bid];
        if (a.shape === "bid0") bid = "0";
        if (a.shape === "ask0") ask = "0";
        if (a.shape === "old") ts -= 20_000;
        if (a.shape === "future") ts += 3_600_000;
        live.publish(
          "QUOTES",
          Subjects.quote(a.symbol),
          { symbol: a.symbol, bid, ask, timestamp: isoOf(ts) },
          a.hold,
        );
        break;
      }
      case "check": {
        const i = n++;
        const prev = pick(sent, a.pick);
        let raw: Record<string, unknown> = {
          order_id: `o-${i}`,
          idempotency_key: `k-${i}`,
          fund_id: a.fund,
          broker: a.broker,
          symbol: a.symbol,
          side: a.side,
          order_type: "LIMIT",
          quantity: a.qty,
          limit_price: a.px,
          created_at: isoOf(now()),
        };
        // an earlier order id whose record the live engine forgot excludes the run (LiveSim.reuse)
        const reusable = true;
        if (a.kind === 1 && prev && reusable) raw = prev;
        if (a.kind === 2 && prev && reusable)
          raw = { ...prev, quantity: a.qty === prev["quantity"] ? "3" : a.qty };
        if (a.kind === 3 && prev && reusable) raw = { ...raw, order_id: prev["order_id"] };
        const pre = preFilled.find((k) => alive(k));
        if (a.kind === 4 && pre) {
          raw = { ...raw, order_id: pre.orderId, fund_id: pre.fund, symbol: pre.symbol, side: pre.side };
          preFilled.splice(preFilled.indexOf(pre), 1);
        }
        sent.push(raw);
        const d = live.check(raw, a.holdJournal);
        const orderId = String(raw["order_id"]);
        touch(orderId);
        if (!known.some((k) => k.orderId === orderId))
          known.push({
            fund: String(raw["fund_id"]),
            orderId,
            symbol: String(raw["symbol"]),
            side: String(raw["side"]),
            qty: String(raw["quantity"]),
            touched: now(),
            approved: d.approved,
          });
        else if (d.approved) for (const k of known) if (k.orderId === orderId) k.approved = true;
        break;
      }
      case "fill": {
        let subject: string;
        let body: Record<string, unknown>;
        const id = `f-${fills.length}`;
        const base = { fees: "0.01", timestamp: isoOf(now()) };
        if (a.kind === 3 && fills.length > 0) {
          const f = fills[a.pick % fills.length]!;
          const target = known.find((k) => k.orderId === f.body["order_id"]);
          if (target && !alive(target)) break;
          subject = f.subject;
          body = f.body;
          if (target) touch(target.orderId);
        } else if (a.kind === 1) {
          // the order id of the next check (kind 4 decides it), filled before its decision
          const fund = FUNDS[a.pick % 2]!;
          const symbol = SYMBOLS[a.pick % 3]!;
          const side = a.pick % 4 < 2 ? "BUY" : "SELL";
          const k: Known = {
            fund,
            orderId: `pre-${id}`,
            symbol,
            side,
            qty: "10",
            touched: now(),
            approved: false,
          };
          preFilled.push(k);
          known.push(k);
          subject = Subjects.fill(fund, symbol);
          body = {
            fill_id: id,
            order_id: k.orderId,
            fund_id: fund,
            broker: "paper",
            symbol,
            side,
            quantity: "5",
            price: a.px,
            ...base,
          };
        } else {
          const live_ = known.filter((k) => k.approved && alive(k));
          const target = a.kind === 0 ? pick(live_, a.pick) : undefined;
          const fund = target?.fund ?? FUNDS[a.pick % 2]!;
          const symbol = target?.symbol ?? SYMBOLS[a.pick % 3]!;
          const side = target?.side ?? (a.pick % 2 ? "BUY" : "SELL");
          const q = target ? (Number(target.qty) * Number(a.frac)).toString() : "3";
          subject = Subjects.fill(fund, symbol);
          body = {
            fill_id: id,
            order_id: target?.orderId ?? `ext-${id}`,
            fund_id: fund,
            broker: a.pick % 3 ? "paper" : "ibkr",
            symbol,
            side,
            quantity: q,
            price: a.px,
            ...base,
          };
          if (target) touch(target.orderId);
        }
        fills.push({ subject, body });
        live.publish("FILLS", subject, body, a.hold);
        break;
      }
      case "event": {
        const target = pick(
          known.filter((k) => alive(k)),
          a.pick,
        );
        if (!target) break;
        touch(target.orderId);
        live.publish(
          "OMS_ORDERS",
          Subjects.orderEvent(a.event, target.fund),
          {
            order_id: target.orderId,
            fund_id: target.fund,
            event: a.event,
            at: isoOf(now()),
            ...(a.withFilled && a.event !== "accepted" ? { filled_quantity: "1" } : {}),
          },
          a.hold,
        );
        break;
      }
      case "control":
        live.publish(
          "RISK_CONTROL",
          a.halt ? Subjects.halt(a.fund) : Subjects.resume(a.fund),
          a.halt
            ? { fund_id: a.fund, severity: a.severity, reason: "s30g", at: isoOf(now()), by: "operator" }
            : { fund_id: a.fund, operator: "op", reason: "s30g", at: isoOf(now()) },
          a.hold,
        );
        break;
      case "clock":
        live.clock.advance(a.ms);
        if (a.sweep) live.sweep();
        break;
      case "batch": {
        const raws = a.orders.map((o) => {
          const i = n++;
          return {
            order_id: `o-${i}`,
            idempotency_key: `k-${i}`,
            fund_id: a.fund,
            broker: "paper",
            symbol: o.symbol,
            side: o.side,
            order_type: "LIMIT",
            quantity: o.qty,
            limit_price: o.px,
            created_at: isoOf(now()),
          };
        });
        const ds = live.checkBatch(a.fund, raws, a.holdJournal);
        raws.forEach((raw, j) => {
          sent.push(raw);
          known.push({
            fund: a.fund,
            orderId: raw.order_id,
            symbol: raw.symbol,
            side: raw.side,
            qty: raw.quantity,
            touched: now(),
            approved: ds[j]!.approved,
          });
        });
        break;
      }
      case "snap":
        // the flusher: one background write at a time; the state moves on while it is written
        if (run.pending) {
          await run.pending;
          copyOfSnapshot(run);
        }
        run.pending = run.snap.flushInBackground(live.state);
        break;
      case "deliver":
        live.deliver(a.reverse ? [...CONSUMED_STREAMS].reverse() : CONSUMED_STREAMS, true);
        break;
    }
  }
  live.deliver(CONSUMED_STREAMS, true); // the engine catches up with everything published
  return run;
}

// ---------------------------------------------------------------------------------------------
// the three states

function rebuildWay(run: Run, order: readonly StreamName[], now: number): EngineState {
  const s = createState(run.live.settings);
  foldTheRebuildWay(s);
  applySteps(s, sequential(run.live.logs, order));
  sweepReservations(s, now);
  sweepIdempotency(s, now);
  revalueDeferred(s);
  return s;
}

/** An engine started on an empty state directory: the follower's merge, then ready (sweep). */
function emptyDirStart(run: Run, choices: readonly number[], now: number): EngineState {
  const s = createState(run.live.settings);
  applySteps(s, randomMerge(run.live.logs, choices));
  sweepReservations(s, now);
  sweepIdempotency(s, now);
  return s;
}

/**
 * The live state flushed in the background to its snapshot (after the part-way write, whose copy
 * is taken first) and loaded as a restarted engine loads it, on a second connection: the live state
 * keeps reading its cold records through its own. Open during the probes (records on disk).
 */
async function restartFromSnapshot(
  run: Run,
  now: number,
): Promise<{ state: EngineState; close: () => void }> {
  if (run.pending) {
    await run.pending;
    copyOfSnapshot(run);
  }
  await run.snap.flushInBackground(run.live.state);
  const snap = openSnapshot(run.snapPath);
  const state = snap.load(run.live.settings);
  sweepReservations(state, now); // becomeReady
  return { state, close: () => snap.close() };
}

/** A restart from the snapshot taken part-way: loaded, the tail after its cursors folded, ready. */
function restartFromMidSnapshot(
  run: Run,
  choices: readonly number[],
  now: number,
): { state: EngineState; close: () => void } | undefined {
  if (run.midPath === undefined) return undefined;
  const snap = openSnapshot(run.midPath);
  const state = snap.load(run.live.settings);
  applySteps(state, randomMerge(run.live.logs, choices)); // the head is skipped by the cursors
  // ready (reservations), then the schedule's first sweep (within a second; the live engine's
  // own idempotency records also outlive their window until its next sweep: README "swept once a second")
  sweepReservations(state, now);
  sweepIdempotency(state, now);
  return { state, close: () => snap.close() };
}

/** Probe orders near the limits (position 10 % of 100 000 at ~100 = 100 units), retries, reused ids. */
function probes(run: Run): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  let i = 0;
  for (const fund of FUNDS)
    for (const symbol of SYMBOLS)
      for (const side of ["BUY", "SELL"])
        for (const qty of ["1", "20", "99", "100", "101"]) {
          out.push({
            order_id: `p-${i}`,
            idempotency_key: `pk-${i++}`,
            fund_id: fund,
            broker: "paper",
            symbol,
            side,
            order_type: "LIMIT",
            quantity: qty,
            limit_price: "100",
          });
        }
  // MARKET orders: valued at the mark in force (out-of-order, crossed, one-sided quotes)
  for (const fund of FUNDS)
    for (const symbol of SYMBOLS)
      for (const side of ["BUY", "SELL"])
        out.push({
          order_id: `p-${i}`,
          idempotency_key: `pk-${i++}`,
          fund_id: fund,
          broker: "ibkr",
          symbol,
          side,
          order_type: "MARKET",
          quantity: "50",
        });
  // retries of every earlier request, and earlier order ids under new keys
  run.sent.forEach((r, j) => {
    out.push(r);
    if (j % 2 === 0) out.push({ ...r, idempotency_key: `pk-re-${j}` });
  });
  return out;
}

/**
 * The probes decided at `now`, then again a TTL later after the periodic sweep (the probes'
 * own reservations lapse, earlier ones with them): the future decisions of this state.
 */
function decisionsOf(state: EngineState, run: Run, now: number): string[] {
  const clock = manualClock(now);
  const decider = deciderFor(state, clock, "probe");
  const one = (raw: Record<string, unknown>) => {
    const e = decideOn(decider, raw);
    const { decision_id: _id, instance: _i, ...rec } = toWire(e.record) as Record<string, unknown>;
    // canonical key order: a replayed answer's details come back in the order they were stored
    return canonicalJson({ decision: e.decision, reservation: rec["reservation"] ?? null });
  };
  const first = probes(run).map(one);
  clock.advance(TTL + 1);
  sweepReservations(state, clock.now());
  sweepIdempotency(state, clock.now());
  // fresh probes again under new ids; retries of the history's requests under new keys
  const later = probes(run).map((raw) => {
    const id = String(raw["order_id"]);
    return {
      ...raw,
      order_id: id.startsWith("p-") ? `later-${id}` : id,
      idempotency_key: `later-${String(raw["idempotency_key"])}`,
    };
  });
  return [...first, ...later.map(one)];
}

function diff(a: string[], b: string[]): string[] {
  const sa = new Set(a);
  const sb = new Set(b);
  return [
    ...a.filter((l) => !sb.has(l)).map((l) => `- ${l}`),
    ...b.filter((l) => !sa.has(l)).map((l) => `+ ${l}`),
  ];
}

function firstDecisionDiff(a: string[], b: string[], run: Run): string | undefined {
  const p = [...probes(run), ...probes(run)];
  for (let i = 0; i < a.length; i++)
    if (a[i] !== b[i]) return `probe ${i} ${JSON.stringify(p[i])}\n live: ${a[i]}\n other: ${b[i]}`;
  return undefined;
}

interface Outcome {
  digests: Record<string, string[]>;
  decisions: Record<string, string[]>;
}

async function outcome(
  actions: readonly Action[],
  settings: Partial<StateSettings>,
  order: readonly StreamName[],
  choices: readonly number[],
  finalMs: number,
): Promise<{ run: Run; o: Outcome }> {
  const run = await drive(actions, settings);
  run.live.clock.advance(finalMs);
  run.live.sweep();
  const now = run.live.clock.now();
  const restarted = await restartFromSnapshot(run, now);
  const mid = restartFromMidSnapshot(run, [...choices].reverse(), now);
  try {
    const states: Record<string, EngineState> = {
      rebuild: rebuildWay(run, order, now),
      emptyDir: emptyDirStart(run, choices, now),
      snapshot: restarted.state,
    };
    if (mid) states["midSnapshot"] = mid.state;
    const o: Outcome = { digests: {}, decisions: {} };
    // digests before any probe (a probe changes the state it is decided on)
    o.digests["live"] = canonicalLines(run.live.state);
    for (const [k, s] of Object.entries(states)) o.digests[k] = canonicalLines(s);
    o.decisions["live"] = decisionsOf(run.live.state, run, now);
    for (const [k, s] of Object.entries(states)) o.decisions[k] = decisionsOf(s, run, now);
    return { run, o };
  } finally {
    restarted.close();
    mid?.close();
    run.snap.close();
  }
}

function report(run: Run, o: Outcome): string {
  const lines: string[] = [];
  for (const k of Object.keys(o.digests).filter((x) => x !== "live")) {
    const d = diff(o.digests["live"]!, o.digests[k]!);
    if (d.length) lines.push(`${k} digest:\n  ${d.join("\n  ")}`);
    const dd = firstDecisionDiff(o.decisions["live"]!, o.decisions[k]!, run);
    if (dd) lines.push(`${k} decision: ${dd}`);
  }
  return lines.join("\n");
}

describe("red team s30g: live engine, rebuild and snapshot restart agree", () => {
  it("given a random live history over every stream, when rebuilt in another stream order and restarted from a snapshot, then digests and probe decisions equal the live engine's", async () => {
    const orderArb = fc.shuffledSubarray([...CONSUMED_STREAMS], {
      minLength: CONSUMED_STREAMS.length,
      maxLength: CONSUMED_STREAMS.length,
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(actionArb, { minLength: 1, maxLength: 40 }),
        orderArb,
        fc.array(fc.nat(), { minLength: 1, maxLength: 32 }),
        fc.constantFrom(0, 1, 1000, TTL - 1, TTL, TTL + 1),
        fc.constantFrom(86_400_000, 3 * TTL),
        /** idempotency records read back kept in memory (0: every one read from disk) */
        fc.constantFrom(undefined, 0, 1),
        /** the key index forced to collide (state/key-index.ts) */
        fc.boolean(),
        async (actions, order, choices, finalMs, idemMs, cache, collide) => {
          const settings: Partial<StateSettings> = {
            reservationTtlMs: TTL,
            idempotencyWindowMs: idemMs,
            ...(cache === undefined ? {} : { idempotencyCacheSize: cache }),
            ...(collide ? { keyFingerprint: (h: number) => h & 1 } : {}),
          };
          const { run, o } = await outcome(actions, settings, order, choices, finalMs);
          if (run.live.lateAfterForget > 0) return; // excluded (documented)
          expect(report(run, o)).toBe("");
        },
      ),
      { seed: 30_7, numRuns: 60, endOnFailure: false },
    );
  }, 60_000);
});

/**
 * Found by the property above (seed 42, 300 runs), shrunk. With the key index forced to collide it
 * failed before stop 30's fix (src/state/idem-store.ts `owner`: the restarted engine named another
 * reason; see the next describe for the same fault flipping an approval); the same case with the
 * index as is, kept as its control.
 */
describe("red team s30g: shrunk cases", () => {
  const settingsOf = (collide: boolean): Partial<StateSettings> => ({
    reservationTtlMs: TTL,
    idempotencyWindowMs: 3 * TTL,
    ...(collide ? { keyFingerprint: (h: number) => h & 1 } : {}),
  });
  const approvedThenLapsed: Action[] = [
    {
      k: "check",
      fund: "g1",
      symbol: "AAPL",
      side: "BUY",
      qty: "1",
      px: "99.5",
      kind: 0,
      pick: 0,
      broker: "paper",
      holdJournal: false,
    },
    { k: "snap" },
    { k: "clock", ms: TTL, sweep: false },
    { k: "clock", ms: TTL - 1, sweep: false },
  ];
  const order: StreamName[] = [
    "QUOTES",
    "RISK_CONTROL",
    "OMS_ORDERS",
    "FILLS",
    "REFDATA",
    "RISK_DECISIONS",
    "RISK_ENVELOPES",
  ];

  for (const collide of [true, false])
    it(`given an approval whose key's window ended, restarted from a part-way snapshot (key index ${collide ? "forced to collide" : "as is"}), when its key is retried and then its order id under a new key, then the answers equal the live engine's`, async () => {
      const { run, o } = await outcome(approvedThenLapsed, settingsOf(collide), order, [0], TTL + 1);
      expect(run.live.lateAfterForget).toBe(0);
      expect(report(run, o)).toBe("");
    });
});

describe("red team s30g: an order id's owner read from a stale snapshot row (key index collision)", () => {
  it("given an approval whose key and order record were forgotten, restarted from a snapshot written before, when its key is reused for another order and then its order id is sent under a new key, then the restarted engine approves it as the live engine does", async () => {
    const settings: Partial<StateSettings> = {
      reservationTtlMs: TTL,
      idempotencyWindowMs: 3 * TTL,
      keyFingerprint: (h: number) => h & 1, // the index's 28-bit fingerprints colliding, made certain
    };
    const run = await drive(
      [
        {
          k: "check",
          fund: "g1",
          symbol: "AAPL",
          side: "BUY",
          qty: "1",
          px: "99.5",
          kind: 0,
          pick: 0,
          broker: "paper",
          holdJournal: false,
        },
        { k: "snap" },
        { k: "clock", ms: 5 * TTL, sweep: false },
      ],
      settings,
    );
    run.live.sweep();
    const now = run.live.clock.now();
    const restarted = await restartFromSnapshot(run, now);
    const mid = restartFromMidSnapshot(run, [0], now)!;
    try {
      const answers = (state: EngineState) => {
        const decider = deciderFor(state, manualClock(now), "x");
        const base = {
          fund_id: "g1",
          broker: "paper",
          symbol: "AAPL",
          side: "BUY",
          order_type: "LIMIT",
          quantity: "1",
          limit_price: "99.5",
        };
        // an owned order id elsewhere (its fingerprint collides with o-0's)
        const other = decideOn(decider, {
          ...base,
          order_id: "p-other",
          idempotency_key: "k-other",
        }).decision;
        const reused = decideOn(decider, { ...base, order_id: "o-new", idempotency_key: "k-0" }).decision;
        const again = decideOn(decider, { ...base, order_id: "o-0", idempotency_key: "k-fresh" }).decision;
        return [other, reused, again].map((d) => `${d.approved}|${d.rejection_code}|${d.reason}`);
      };
      const live = answers(run.live.state);
      expect(live[2]).toMatch(/^true\|/); // o-0 is free again: both its key and its record were forgotten
      expect(answers(mid.state)).toEqual(live);
    } finally {
      restarted.close();
      mid.close();
      run.snap.close();
    }
  });
});
