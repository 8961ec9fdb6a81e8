/**
 * Folds one stream message into the state: decode, validate, apply, advance the cursor.
 * Deterministic and free of I/O; a message that cannot be applied is reported, never thrown.
 */
import type { z } from "zod";
import {
  DecisionRecordSchema,
  EnvelopeSchema,
  FillSchema,
  HaltSchema,
  InstrumentSchema,
  OrderEventSchema,
  PnlBaselineSchema,
  QuoteSchema,
  ReconcileEventSchema,
  ResumeSchema,
  StopSchema,
  type StreamName,
  firstIssue,
  toWire,
} from "../contract/index.js";
import { Subjects } from "../contract/subjects.js";
import { fastParseFill } from "../contract/fast-fill.js";
import { fastParseQuote } from "../contract/fast-quote.js";
import type { DecisionRecord } from "../contract/records.js";
import { type EngineState } from "./model.js";
import { applyBaseline, applyHalt, applyReconcile, applyResume, applyStop } from "./projections/control.js";
import { applyDecision } from "./projections/decisions.js";
import { applyEnvelope } from "./projections/envelopes.js";
import { applyFill } from "./projections/fills.js";
import { applyInstrument, applyQuote } from "./projections/market.js";
import { applyOrderEvent } from "./projections/orders.js";

/** Something the live engine should tell the world about (published as an alert when live). */
export interface Notice {
  kind: string; // alert kind
  fund: string;
  message: string;
  details?: Record<string, string>;
}

export type ProjectResult =
  { ok: true; notice?: Notice | undefined } | { ok: false; reason: string; fund: string };

const td = new TextDecoder();

function parse<S extends z.ZodTypeAny>(
  schema: S,
  raw: unknown,
): { ok: true; value: z.output<S> } | { ok: false; reason: string } {
  const r = schema.safeParse(raw);
  if (r.success) return { ok: true, value: r.data };
  const i = firstIssue(r.error);
  return { ok: false, reason: `${i.path || "(root)"}: ${i.message}` };
}

/** The body must describe what its subject names: a publisher allowed on one fund's subjects cannot write another's. */
function mismatch(
  subject: string,
  want: Record<number, string | undefined>,
): { ok: false; reason: string } | undefined {
  const t = subject.split(".");
  for (const [i, v] of Object.entries(want)) {
    if (v !== undefined && t[Number(i)] !== v) {
      return { ok: false, reason: `subject ${subject} does not match the body (${v})` };
    }
  }
  return undefined;
}

function fundOf(raw: unknown): string {
  const f = (raw as { fund_id?: unknown } | null)?.fund_id;
  return typeof f === "string" ? f : "_";
}

export function project(
  state: EngineState,
  stream: StreamName,
  subject: string,
  data: Uint8Array,
  seq: number,
  /** When the stream stored the message (epoch ms), if known: bounds a quote's rank (applyQuote). */
  storedMs?: number,
): ProjectResult {
  const prev = state.cursors.get(stream) ?? 0;
  if (seq <= prev) return { ok: true }; // already applied (replay is idempotent on sequence)
  state.cursors.set(stream, seq);
  const text = td.decode(data);
  if (stream === "RISK_DECISIONS") {
    if (subject.startsWith(DECISION_PREFIX))
      state.decisionSeq.set(subject.slice(DECISION_PREFIX.length), seq);
    if (state.journaled.size > 0) {
      // The engine's own record (or batch), byte for byte as it journaled it: parsing these bytes
      // would give back these very records (the writer is toWire), so apply them without parsing.
      const own = state.journaled.get(text);
      const first = Array.isArray(own) ? own[0] : own;
      if (own && (first === undefined || subject === Subjects.decision(first.fund_id))) {
        state.journaled.delete(text);
        for (const r of Array.isArray(own) ? own : [own]) applyDecision(state, r);
        return { ok: true };
      }
    }
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, reason: "not JSON", fund: "_" };
  }
  if (stream === "RISK_DECISIONS" && Array.isArray(raw)) return applyBatch(state, subject, raw);
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return { ok: false, reason: "not a JSON object", fund: "_" };
  }
  const r = dispatch(state, stream, subject, raw as Record<string, unknown>, seq, storedMs);
  if (!r.ok) return { ok: false, reason: r.reason, fund: fundOf(raw) };
  return r;
}

const DECISION_PREFIX = Subjects.decision("");

/**
 * A group commit (`Mts-Batch: <n>`): a JSON array of decision records of the subject's fund, in
 * decision order; an empty one is an ownership fence. Applied whole, or not at all when any record
 * is invalid.
 */
function applyBatch(state: EngineState, subject: string, raw: unknown[]): ProjectResult {
  const records: DecisionRecord[] = [];
  for (const [i, item] of raw.entries()) {
    const p = parse(DecisionRecordSchema, item);
    if (!p.ok) return { ok: false, reason: `batch record ${i}: ${p.reason}`, fund: fundOf(item) };
    const bad = mismatch(subject, { 4: p.value.fund_id });
    if (bad) return { ok: false, reason: bad.reason, fund: p.value.fund_id };
    records.push(p.value);
  }
  for (const r of records) applyDecision(state, r);
  return { ok: true };
}

function dispatch(
  state: EngineState,
  stream: StreamName,
  subject: string,
  raw: Record<string, unknown>,
  seq: number,
  storedMs: number | undefined,
): ProjectResult | { ok: false; reason: string } {
  switch (stream) {
    case "FILLS": {
      const fast = fastParseFill(raw);
      const p = fast ? { ok: true as const, value: fast } : parse(FillSchema, raw);
      if (!p.ok) return p;
      const bad = mismatch(subject, { 3: p.value.fund_id, 4: p.value.symbol });
      if (bad) return bad;
      const out = applyFill(state, p.value);
      return out === "duplicate"
        ? {
            ok: true,
            notice: {
              kind: "duplicate_fill",
              fund: p.value.fund_id,
              message: `fill ${p.value.fill_id} seen twice; ignored`,
            },
          }
        : { ok: true };
    }
    case "QUOTES": {
      const fast = fastParseQuote(raw);
      const p = fast ? { ok: true as const, value: fast } : parse(QuoteSchema, raw);
      if (!p.ok) return p;
      const bad = mismatch(subject, { 3: p.value.symbol });
      if (bad) return bad;
      applyQuote(state, p.value, storedMs);
      return { ok: true };
    }
    case "REFDATA": {
      const p = parse(InstrumentSchema, raw);
      if (!p.ok) return p;
      const bad = mismatch(subject, { 4: p.value.symbol });
      if (bad) return bad;
      applyInstrument(state, p.value);
      return { ok: true };
    }
    case "RISK_ENVELOPES": {
      const p = parse(EnvelopeSchema, raw);
      if (!p.ok) return { ok: false, reason: `envelope rejected whole: ${p.reason}` };
      const bad = mismatch(subject, { 5: p.value.fund_id });
      if (bad) return bad;
      // keep the validated form (unknown fields dropped), never the message as received
      const out = applyEnvelope(state, p.value, toWire(p.value));
      if (out.applied) return { ok: true };
      return {
        ok: true,
        notice: {
          kind: "envelope",
          fund: p.value.fund_id,
          message: `envelope ${p.value.fund_id}@v${p.value.version} ignored: version ${out.current} is in force`,
          details: { version: String(p.value.version), current_version: String(out.current) },
        },
      };
    }
    case "OMS_ORDERS": {
      const p = parse(OrderEventSchema, raw);
      if (!p.ok) return p;
      const bad = mismatch(subject, { 4: p.value.event, 5: p.value.fund_id });
      if (bad) return bad;
      applyOrderEvent(state, p.value);
      return { ok: true };
    }
    case "RISK_DECISIONS": {
      const p = parse(DecisionRecordSchema, raw);
      if (!p.ok) return p;
      const bad = mismatch(subject, { 4: p.value.fund_id });
      if (bad) return bad;
      applyDecision(state, p.value);
      return { ok: true };
    }
    case "RISK_CONTROL":
      return dispatchControl(state, subject, raw, seq);
    default:
      return { ok: true };
  }
}

function dispatchControl(
  state: EngineState,
  subject: string,
  raw: Record<string, unknown>,
  seq: number,
): ProjectResult | { ok: false; reason: string } {
  const kind = subject.split(".")[3]; // mts.v1.risk.<kind>....
  switch (kind) {
    case "halt": {
      const p = parse(HaltSchema, raw);
      if (!p.ok) return p;
      const bad = mismatch(subject, { 4: p.value.fund_id });
      if (bad) return bad;
      applyHalt(state, p.value, raw as { at: string }, seq);
      return { ok: true };
    }
    case "resume": {
      const p = parse(ResumeSchema, raw);
      if (!p.ok) return p;
      const bad = mismatch(subject, { 4: p.value.fund_id });
      if (bad) return bad;
      const lifted = applyResume(state, p.value, raw as { at: string }, seq);
      if (lifted > 0) return { ok: true };
      return {
        ok: true,
        notice: {
          kind: "resume",
          fund: p.value.fund_id,
          message: "resume with no active halt; nothing lifted",
        },
      };
    }
    case "reconcile": {
      const p = parse(ReconcileEventSchema, raw);
      if (!p.ok) return p;
      const bad = mismatch(subject, { 5: p.value.fund_id });
      if (bad) return bad;
      applyReconcile(state, p.value, raw as { at: string });
      return { ok: true };
    }
    case "pnl": {
      const p = parse(PnlBaselineSchema, raw);
      if (!p.ok) return p;
      const bad = mismatch(subject, { 5: p.value.fund_id });
      if (bad) return bad;
      applyBaseline(state, p.value, raw as { starts_at: string });
      return { ok: true };
    }
    case "stop": {
      const event = subject.split(".")[4];
      if (event !== "armed" && event !== "triggered" && event !== "cleared") {
        return { ok: false, reason: `unknown stop event ${event ?? ""}` };
      }
      const p = parse(StopSchema, raw);
      if (!p.ok) return p;
      const bad = mismatch(subject, { 5: p.value.fund_id });
      if (bad) return bad;
      applyStop(state, event, p.value, raw as { at: string });
      return { ok: true };
    }
    default:
      return { ok: true }; // alerts carry no state
  }
}
