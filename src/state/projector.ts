/**
 * Folds one stream message into the state: decode, validate, apply, advance the cursor — a loop
 * over the table of projections (projections/table.ts), used live and by `mts-risk rebuild`.
 * Deterministic and free of I/O; a message that cannot be applied is reported, never thrown.
 */
import type { z } from "zod";
import { DecisionRecordSchema, type StreamName, firstIssue } from "../contract/index.js";
import { type ParsedSubject, type SubjectKind, Subjects, parseSubject } from "../contract/subjects.js";
import type { DecisionRecord } from "../contract/records.js";
import { type EngineState } from "./model.js";
import { applyDecision } from "./projections/decisions.js";
import { refuseQuote } from "./projections/market.js";
import {
  ALERT_CHANGE,
  CONTROL_KEYWORD,
  type Change,
  type Notice,
  PROJECTIONS,
  PROJECTION_BY_KIND,
  type Projection,
} from "./projections/table.js";

export type { Change, Notice };

export type ProjectResult =
  | { ok: true; notice?: Notice | undefined; change?: Change | undefined }
  | { ok: false; reason: string; fund: string };

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

const failed = (raw: unknown, reason: string): ProjectResult => ({ ok: false, reason, fund: fundOf(raw) });

function fundOf(raw: unknown): string {
  const f = (raw as { fund_id?: unknown } | null)?.fund_id;
  return typeof f === "string" ? f : "_";
}

/** Streams folded by one projection: it takes their subjects that do not parse as its own. */
const ONLY_BY_STREAM = new Map<string, Projection>();
for (const p of PROJECTIONS) {
  const n = PROJECTIONS.filter((q) => q.stream === p.stream).length;
  if (n === 1) ONLY_BY_STREAM.set(p.stream, p);
}

const byKind = (stream: StreamName, kind: SubjectKind): Projection | undefined =>
  PROJECTION_BY_KIND.get(stream)?.get(kind);

export function project(
  state: EngineState,
  stream: StreamName,
  subject: string,
  data: Uint8Array,
  seq: number,
  /** When the stream stored the message (epoch ms), if known: bounds a quote's rank (applyQuote). */
  storedMs?: number,
  /**
   * The message's `Mts-Batch` header when the caller read the headers (null: the message has
   * none); undefined when it did not. A JSON array on a decision subject is a group commit only
   * with a `Mts-Batch` equal to its length (`0` for a fence, CONTRACT.md "Subjects").
   */
  batchHeader?: string | null,
): ProjectResult {
  const prev = state.cursors.get(stream) ?? 0;
  if (seq <= prev) return { ok: true }; // already applied (replay is idempotent on sequence)
  state.cursors.set(stream, seq);
  const text = td.decode(data);
  if (stream === "RISK_DECISIONS" && subject.startsWith(DECISION_PREFIX))
    state.decisionSeq.set(subject.slice(DECISION_PREFIX.length), seq);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { ok: false, reason: "not JSON", fund: "_" };
  }
  if (stream === "RISK_DECISIONS" && Array.isArray(raw)) {
    if (batchHeader !== undefined && (batchHeader === null || Number(batchHeader) !== raw.length))
      return {
        ok: false,
        reason: `a JSON array of ${raw.length} without a matching Mts-Batch header (${batchHeader ?? "none"})`,
        fund: "_",
      };
    return applyBatch(state, subject, raw);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return { ok: false, reason: "not a JSON object", fund: "_" };
  }
  return fold(state, stream, subject, raw as Record<string, unknown>, seq, storedMs);
}

/** Finds the row of the table for a message and folds it in. */
function fold(
  state: EngineState,
  stream: StreamName,
  subject: string,
  raw: Record<string, unknown>,
  seq: number,
  storedMs: number | undefined,
): ProjectResult {
  let parsed: ParsedSubject | undefined = parseSubject(subject);
  let p = parsed ? byKind(stream, parsed.kind) : undefined;
  if (!p) {
    // a subject of the stream missing a token its kind names (the body is then found not to match)
    const kind = stream === "RISK_CONTROL" ? CONTROL_KEYWORD[subject.split(".")[3] ?? ""] : undefined;
    if (parsed?.kind === "alert" || kind === "alert") {
      return { ok: true, change: ALERT_CHANGE(subject.slice(subject.lastIndexOf(".") + 1), seq) };
    }
    p = kind ? byKind(stream, kind) : ONLY_BY_STREAM.get(stream);
    if (!p) return { ok: true }; // nothing the engine folds
    parsed = undefined;
  }
  const refused = p.refuse?.(parsed);
  if (refused) return failed(raw, refused);
  let value: unknown = p.fast?.(raw);
  if (value === undefined) {
    const r = parse(p.schema, raw);
    if (!r.ok) {
      if (parsed?.kind === "quote") refuseQuote(state, parsed.symbol, raw, r.reason, storedMs);
      return failed(raw, `${p.invalid ?? ""}${r.reason}`);
    }
    value = r.value;
  }
  const want = p.mismatch(parsed, value);
  if (want !== undefined) return failed(raw, `subject ${subject} does not match the body (${want})`);
  const out = p.apply(state, value, { subject: parsed, raw, seq, storedMs });
  return { ok: true, notice: out.notice, change: out.change };
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
    if (subject !== Subjects.decision(p.value.fund_id))
      return {
        ok: false,
        reason: `subject ${subject} does not match the body (${p.value.fund_id})`,
        fund: p.value.fund_id,
      };
    records.push(p.value);
  }
  for (const r of records) applyDecision(state, r);
  return { ok: true };
}
