/**
 * Every projection as a row: the stream and subject it folds, the contract schema its body must
 * pass (with the validation fast path where there is one), the subject tokens the body must name,
 * and `apply`, which folds the value into the state and returns the typed change (and any notice).
 * The projector (live and `mts-risk rebuild`) is a loop over this table.
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
  toWire,
} from "../../contract/index.js";
import type { ParsedSubject, StreamName, SubjectKind } from "../../contract/subjects.js";
import { fastParseFill } from "../../contract/fast-fill.js";
import { fastParseQuote } from "../../contract/fast-quote.js";
import type { EngineState } from "../model.js";
import { applyBaseline, applyHalt, applyReconcile, applyResume, applyStop } from "./control.js";
import { applyDecision } from "./decisions.js";
import { applyEnvelope } from "./envelopes.js";
import { applyFill } from "./fills.js";
import { applyInstrument, applyQuote } from "./market.js";
import { applyOrderEvent } from "./orders.js";

/** Something the live engine should tell the world about (published as an alert when live). */
export interface Notice {
  kind: string; // alert kind
  fund: string;
  message: string;
  details?: Record<string, string>;
}

/** What changed in the state, as the projection that applied a message reports it (to the workers). */
export type Change =
  | { kind: "fill"; fund: string; symbol: string; seq?: number }
  | { kind: "quote"; symbol: string }
  | { kind: "order"; fund: string; orderId: string; event: string }
  | { kind: "control"; fund: string; what: string; seq: number }
  | { kind: "envelope"; fund: string };

/** What applying one message did. */
export interface Outcome {
  change?: Change | undefined;
  notice?: Notice | undefined;
}

export interface ApplyContext<K extends SubjectKind> {
  /** The subject, parsed; undefined when it does not name every token its kind has. */
  subject: Extract<ParsedSubject, { kind: K }> | undefined;
  /** The body as received (a JSON object), for the fields kept verbatim (timestamps as written). */
  raw: Record<string, unknown>;
  seq: number;
  /** When the stream stored the message (epoch ms), if known. */
  storedMs: number | undefined;
}

export interface Projection<K extends SubjectKind = SubjectKind, S extends z.ZodTypeAny = z.ZodTypeAny> {
  stream: StreamName;
  /** The subject kind (parseSubject) this projection folds. */
  kind: K;
  /** The NATS subject pattern it folds (documentation; the catalog's stream subjects cover it). */
  pattern: string;
  schema: S;
  /** A validation fast path (undefined: take the schema's path). */
  fast?: (raw: Record<string, unknown>) => z.output<S> | undefined;
  /** Prefix of a validation failure's reason. */
  invalid?: string;
  /**
   * The subject's tokens must equal the body's values (a publisher cannot write another's
   * subject): the first body value its token differs from (`differs` in order), or undefined.
   */
  mismatch(subject: Extract<ParsedSubject, { kind: K }> | undefined, value: z.output<S>): string | undefined;
  /** An early refusal of the subject itself (before the body is parsed). */
  refuse?(subject: Extract<ParsedSubject, { kind: K }> | undefined): string | undefined;
  apply(state: EngineState, value: z.output<S>, ctx: ApplyContext<K>): Outcome;
}

/** `want` when the subject's token is not it (a token the subject lacks is undefined). */
const differs = (token: string | undefined, want: string): string | undefined =>
  token === want ? undefined : want;

/** Keeps each row's types tied together while the table holds them side by side. */
function row<K extends SubjectKind, S extends z.ZodTypeAny>(p: Projection<K, S>): Projection {
  return p as unknown as Projection;
}

const at = (raw: Record<string, unknown>) => raw as { at: string };

export const PROJECTIONS: readonly Projection[] = [
  row({
    stream: "FILLS",
    kind: "fill",
    pattern: "mts.v1.fill.<fund_id>.<symbol>",
    schema: FillSchema,
    fast: fastParseFill,
    mismatch: (s, v) => differs(s?.fund, v.fund_id) ?? differs(s?.symbol, v.symbol),
    apply(state, v, ctx) {
      const change: Change = { kind: "fill", fund: v.fund_id, symbol: v.symbol, seq: ctx.seq };
      if (applyFill(state, v, ctx.storedMs) !== "duplicate") return { change };
      return {
        change,
        notice: { kind: "duplicate_fill", fund: v.fund_id, message: `fill ${v.fill_id} seen twice; ignored` },
      };
    },
  }),
  row({
    stream: "QUOTES",
    kind: "quote",
    pattern: "mts.v1.quote.<symbol>",
    schema: QuoteSchema,
    fast: fastParseQuote,
    mismatch: (s, v) => differs(s?.symbol, v.symbol),
    apply(state, v, ctx) {
      applyQuote(state, v, ctx.storedMs);
      return { change: { kind: "quote", symbol: v.symbol } };
    },
  }),
  row({
    stream: "REFDATA",
    kind: "instrument",
    pattern: "mts.v1.refdata.instrument.<symbol>",
    schema: InstrumentSchema,
    mismatch: (s, v) => differs(s?.symbol, v.symbol),
    apply(state, v) {
      applyInstrument(state, v);
      return {};
    },
  }),
  row({
    stream: "RISK_ENVELOPES",
    kind: "envelope",
    pattern: "mts.v1.risk.envelope.updated.<fund_id>",
    schema: EnvelopeSchema,
    invalid: "envelope rejected whole: ",
    mismatch: (s, v) => differs(s?.fund, v.fund_id),
    apply(state, v) {
      const change: Change = { kind: "envelope", fund: v.fund_id };
      // keep the validated form (unknown fields dropped), never the message as received
      const out = applyEnvelope(state, v, toWire(v));
      if (out.applied) return { change };
      return {
        change,
        notice: {
          kind: "envelope",
          fund: v.fund_id,
          message: `envelope ${v.fund_id}@v${v.version} ignored: version ${out.current} is in force`,
          details: { version: String(v.version), current_version: String(out.current) },
        },
      };
    },
  }),
  row({
    stream: "OMS_ORDERS",
    kind: "order_event",
    pattern: "mts.v1.oms.order.<accepted|cancelled|rejected|expired|done>.<fund_id>",
    schema: OrderEventSchema,
    mismatch: (s, v) => differs(s?.event, v.event) ?? differs(s?.fund, v.fund_id),
    apply(state, v) {
      applyOrderEvent(state, v);
      return { change: { kind: "order", fund: v.fund_id, orderId: v.order_id, event: v.event } };
    },
  }),
  row({
    stream: "RISK_DECISIONS",
    kind: "decision",
    pattern: "mts.v1.risk.decision.<fund_id>",
    schema: DecisionRecordSchema,
    mismatch: (s, v) => differs(s?.fund, v.fund_id),
    apply(state, v) {
      applyDecision(state, v);
      return {};
    },
  }),
  row({
    stream: "RISK_CONTROL",
    kind: "halt",
    pattern: "mts.v1.risk.halt.<fund_id>",
    schema: HaltSchema,
    mismatch: (s, v) => differs(s?.fund, v.fund_id),
    apply(state, v, ctx) {
      applyHalt(state, v, at(ctx.raw), ctx.seq, ctx.storedMs);
      return { change: control("halt", v.fund_id, ctx.seq) };
    },
  }),
  row({
    stream: "RISK_CONTROL",
    kind: "resume",
    pattern: "mts.v1.risk.resume.<fund_id>",
    schema: ResumeSchema,
    mismatch: (s, v) => differs(s?.fund, v.fund_id),
    apply(state, v, ctx) {
      const change = control("resume", v.fund_id, ctx.seq);
      if (applyResume(state, v, at(ctx.raw), ctx.seq) > 0) return { change };
      return {
        change,
        notice: { kind: "resume", fund: v.fund_id, message: "resume with no active halt; nothing lifted" },
      };
    },
  }),
  row({
    stream: "RISK_CONTROL",
    kind: "reconcile",
    pattern: "mts.v1.risk.reconcile.<lock|unlock>.<fund_id>",
    schema: ReconcileEventSchema,
    mismatch: (s, v) => differs(s?.fund, v.fund_id),
    apply(state, v, ctx) {
      applyReconcile(state, v, at(ctx.raw));
      return { change: control("reconcile", v.fund_id, ctx.seq) };
    },
  }),
  row({
    stream: "RISK_CONTROL",
    kind: "pnl_baseline",
    pattern: "mts.v1.risk.pnl.baseline.<fund_id>",
    schema: PnlBaselineSchema,
    mismatch: (s, v) => differs(s?.fund, v.fund_id),
    apply(state, v, ctx) {
      applyBaseline(state, v, ctx.raw as { starts_at: string });
      return { change: control("pnl", v.fund_id, ctx.seq) };
    },
  }),
  row({
    stream: "RISK_CONTROL",
    kind: "stop",
    pattern: "mts.v1.risk.stop.<armed|triggered|cleared>.<fund_id>",
    schema: StopSchema,
    refuse: (s) =>
      s?.event === "armed" || s?.event === "triggered" || s?.event === "cleared"
        ? undefined
        : `unknown stop event ${s?.event ?? ""}`,
    mismatch: (s, v) => differs(s?.fund, v.fund_id),
    apply(state, v, ctx) {
      applyStop(state, ctx.subject!.event as "armed" | "triggered" | "cleared", v, at(ctx.raw));
      return { change: control("stop", v.fund_id, ctx.seq) };
    },
  }),
];

function control(what: string, fund: string, seq: number): Change {
  return { kind: "control", what, fund, seq };
}

/** Alerts carry no state: the change is the subject's. */
export const ALERT_CHANGE = (fund: string, seq: number): Change => control("alert", fund, seq);

/** The RISK_CONTROL kinds by their keyword (the subject's 4th token), for subjects missing a token. */
export const CONTROL_KEYWORD: Readonly<Record<string, SubjectKind>> = {
  halt: "halt",
  resume: "resume",
  reconcile: "reconcile",
  pnl: "pnl_baseline",
  stop: "stop",
  alert: "alert",
};

/** The table by stream, then subject kind (the projector's lookup: no key joined per message). */
export const PROJECTION_BY_KIND: ReadonlyMap<StreamName, ReadonlyMap<SubjectKind, Projection>> = (() => {
  const out = new Map<StreamName, Map<SubjectKind, Projection>>();
  for (const p of PROJECTIONS) {
    let m = out.get(p.stream);
    if (!m) out.set(p.stream, (m = new Map<SubjectKind, Projection>()));
    m.set(p.kind, p);
  }
  return out;
})();
