/** Subject names and the stream catalog (CONTRACT.md "Subjects"): the one place they are defined. */

export const PREFIX = "mts.v1";
export const QUEUE_GROUP = "riskengine";

export const Subjects = {
  check: `${PREFIX}.risk.check`,
  checkPartitioned: `${PREFIX}.risk.check.*`,
  checkFund: (fund: string) => `${PREFIX}.risk.check.${fund}`,
  envelopeGet: `${PREFIX}.risk.envelope.get`,
  envelopeUpdated: (fund: string) => `${PREFIX}.risk.envelope.updated.${fund}`,
  status: `${PREFIX}.risk.status`,
  instrument: (symbol: string) => `${PREFIX}.refdata.instrument.${symbol}`,
  quote: (symbol: string) => `${PREFIX}.quote.${symbol}`,
  fill: (fund: string, symbol: string) => `${PREFIX}.fill.${fund}.${symbol}`,
  orderEvent: (event: string, fund: string) => `${PREFIX}.oms.order.${event}.${fund}`,
  orderSubmit: (fund: string) => `${PREFIX}.oms.order.submit.${fund}`,
  cancelAll: (fund: string) => `${PREFIX}.oms.cancel_all.${fund}`,
  halt: (fund: string) => `${PREFIX}.risk.halt.${fund}`,
  resume: (fund: string) => `${PREFIX}.risk.resume.${fund}`,
  decision: (fund: string) => `${PREFIX}.risk.decision.${fund}`,
  pnlBaseline: (fund: string) => `${PREFIX}.risk.pnl.baseline.${fund}`,
  alert: (kind: string, fund: string) => `${PREFIX}.risk.alert.${kind}.${fund}`,
  stop: (event: string, fund: string) => `${PREFIX}.risk.stop.${event}.${fund}`,
  brokerPositions: (broker: string) => `${PREFIX}.broker.positions.${broker}`,
  croVeto: `${PREFIX}.llm.cro.veto`,
  mdQuote: (symbol: string) => `${PREFIX}.md.quote.${symbol}`,
  dlq: (stream: string) => `${PREFIX}.risk.dlq.${stream}`,
  /** Reconciliation lock state (RISK_CONTROL): event ∈ lock, unlock. */
  reconcile: (event: "lock" | "unlock", fund: string) => `${PREFIX}.risk.reconcile.${event}.${fund}`,
} as const;

/**
 * A subject of the contract, by what it names. Tokens are taken by position (`mts.v1.<...>`); a
 * subject with more tokens than its kind names still parses (the body is then compared with the
 * tokens it does name, as the projections always did).
 */
export type ParsedSubject =
  | { kind: "check"; fund: string | undefined }
  | { kind: "fill"; fund: string; symbol: string }
  | { kind: "quote"; symbol: string }
  | { kind: "md_quote"; symbol: string }
  | { kind: "instrument"; symbol: string }
  | { kind: "envelope"; fund: string }
  | { kind: "order_event"; event: string; fund: string }
  | { kind: "order_submit"; fund: string }
  | { kind: "cancel_all"; fund: string }
  | { kind: "halt"; fund: string }
  | { kind: "resume"; fund: string }
  | { kind: "pnl_baseline"; fund: string }
  | { kind: "stop"; event: string; fund: string }
  | { kind: "reconcile"; event: string; fund: string }
  | { kind: "alert"; alert: string; fund: string }
  | { kind: "decision"; fund: string }
  | { kind: "dlq"; stream: string };

export type SubjectKind = ParsedSubject["kind"];

const CHECK_PREFIX = `${PREFIX}.risk.check.`;

/**
 * The fund token of mts.v1.risk.check.<fund_id> (undefined on mts.v1.risk.check), without
 * splitting the subject: it is parsed once per request.
 */
export function checkFundOf(subject: string): string | undefined {
  return subject.length > CHECK_PREFIX.length && subject.startsWith(CHECK_PREFIX)
    ? subject.slice(CHECK_PREFIX.length)
    : undefined;
}

/** Parses a subject of the contract (undefined: not one, or a token it names is missing). */
export function parseSubject(subject: string): ParsedSubject | undefined {
  if (subject === Subjects.check || subject.startsWith(CHECK_PREFIX))
    return { kind: "check", fund: checkFundOf(subject) };
  if (!subject.startsWith("mts.v1.")) return undefined;
  const t = subject.split(".");
  const a = t[2];
  const b = t[3];
  const c = t[4];
  const d = t[5];
  switch (a) {
    case "fill":
      return b && c ? { kind: "fill", fund: b, symbol: c } : undefined;
    case "quote":
      return b ? { kind: "quote", symbol: b } : undefined;
    case "md":
      return b === "quote" && c ? { kind: "md_quote", symbol: c } : undefined;
    case "refdata":
      return b === "instrument" && c ? { kind: "instrument", symbol: c } : undefined;
    case "oms":
      if (b === "order") {
        if (c === "submit") return d ? { kind: "order_submit", fund: d } : undefined;
        return c && d ? { kind: "order_event", event: c, fund: d } : undefined;
      }
      return b === "cancel_all" && c ? { kind: "cancel_all", fund: c } : undefined;
    case "risk":
      return parseRisk(t, b, c, d);
    default:
      return undefined;
  }
}

function parseRisk(
  t: string[],
  b: string | undefined,
  c: string | undefined,
  d: string | undefined,
): ParsedSubject | undefined {
  switch (b) {
    case "envelope":
      return c === "updated" && d ? { kind: "envelope", fund: d } : undefined;
    case "halt":
      return c ? { kind: "halt", fund: c } : undefined;
    case "resume":
      return c ? { kind: "resume", fund: c } : undefined;
    case "decision":
      return c !== undefined ? { kind: "decision", fund: c } : undefined;
    case "pnl":
      return c === "baseline" && d ? { kind: "pnl_baseline", fund: d } : undefined;
    case "stop":
      return c && d ? { kind: "stop", event: c, fund: d } : undefined;
    case "reconcile":
      return c && d ? { kind: "reconcile", event: c, fund: d } : undefined;
    case "alert":
      return c && d ? { kind: "alert", alert: c, fund: d } : undefined;
    case "dlq":
      return c ? { kind: "dlq", stream: c } : undefined;
    default:
      return undefined;
  }
}

/** The fund token used on subjects for a decision whose request had no usable fund_id. */
export const NO_FUND = "_";

export const StreamName = {
  FILLS: "FILLS",
  QUOTES: "QUOTES",
  REFDATA: "REFDATA",
  RISK_ENVELOPES: "RISK_ENVELOPES",
  OMS_ORDERS: "OMS_ORDERS",
  OMS_INTENTS: "OMS_INTENTS",
  RISK_CONTROL: "RISK_CONTROL",
  RISK_DECISIONS: "RISK_DECISIONS",
  RISK_DLQ: "RISK_DLQ",
} as const;
export type StreamName = (typeof StreamName)[keyof typeof StreamName];

/** Streams whose messages the engine folds into its state, in replay order. */
export const CONSUMED_STREAMS: readonly StreamName[] = [
  "REFDATA",
  "RISK_ENVELOPES",
  "RISK_CONTROL",
  "FILLS",
  "OMS_ORDERS",
  "RISK_DECISIONS",
  "QUOTES",
];

/** Streams the engine owns: it may update their config; the others it only creates when missing. */
export const OWNED_STREAMS: ReadonlySet<StreamName> = new Set([
  "RISK_ENVELOPES",
  "RISK_CONTROL",
  "RISK_DECISIONS",
  "RISK_DLQ",
  "OMS_INTENTS",
]);

const NS = 1_000_000_000;
const HOUR = 3600 * NS;
const DAY = 24 * HOUR;

export interface StreamSpec {
  name: StreamName;
  subjects: string[];
  /** Retention in words, for the catalog other teams read. */
  retention: string;
  max_age_ns: number; // 0 = unlimited
  max_msgs_per_subject: number; // -1 = unlimited
  duplicate_window_ns: number;
  payload: string;
}

export interface CatalogOptions {
  envelopeVersionsKept: number;
  fillsDedupeWindowS: number;
  decisionsMaxAgeS: number;
}

export const DEFAULT_CATALOG_OPTIONS: CatalogOptions = {
  envelopeVersionsKept: 100,
  fillsDedupeWindowS: 86_400,
  decisionsMaxAgeS: 7 * 86_400,
};

export function streamCatalog(o: CatalogOptions = DEFAULT_CATALOG_OPTIONS): StreamSpec[] {
  return [
    {
      name: "FILLS",
      subjects: [`${PREFIX}.fill.>`],
      payload: "Fill",
      retention: `all fills kept (positions are folded from inception); dedupe on Nats-Msg-Id = fill_id for ${o.fillsDedupeWindowS}s`,
      max_age_ns: 0,
      max_msgs_per_subject: -1,
      duplicate_window_ns: o.fillsDedupeWindowS * NS,
    },
    {
      name: "QUOTES",
      subjects: [`${PREFIX}.quote.>`],
      payload: "Quote",
      retention: "last 10 per symbol, at most 1 h old",
      max_age_ns: HOUR,
      max_msgs_per_subject: 10,
      duplicate_window_ns: 60 * NS,
    },
    {
      name: "REFDATA",
      subjects: [`${PREFIX}.refdata.instrument.>`],
      payload: "Instrument",
      retention: "last value per symbol",
      max_age_ns: 0,
      max_msgs_per_subject: 1,
      duplicate_window_ns: 120 * NS,
    },
    {
      name: "RISK_ENVELOPES",
      subjects: [`${PREFIX}.risk.envelope.updated.>`],
      payload: "RiskEnvelope",
      retention: `last ${o.envelopeVersionsKept} versions per fund`,
      max_age_ns: 0,
      max_msgs_per_subject: o.envelopeVersionsKept,
      duplicate_window_ns: 120 * NS,
    },
    {
      name: "OMS_ORDERS",
      subjects: ["accepted", "cancelled", "rejected", "expired", "done"].map(
        (e) => `${PREFIX}.oms.order.${e}.>`,
      ),
      payload: "OrderEvent",
      retention: `${o.decisionsMaxAgeS}s (covers the reservation TTL)`,
      max_age_ns: o.decisionsMaxAgeS * NS,
      max_msgs_per_subject: -1,
      duplicate_window_ns: 120 * NS,
    },
    {
      name: "OMS_INTENTS",
      subjects: [`${PREFIX}.oms.order.submit.>`, `${PREFIX}.oms.cancel_all.>`],
      payload: "Order | CancelAll",
      retention: `${o.decisionsMaxAgeS}s; dedupe on Nats-Msg-Id = idempotency key`,
      max_age_ns: o.decisionsMaxAgeS * NS,
      max_msgs_per_subject: -1,
      duplicate_window_ns: DAY,
    },
    {
      name: "RISK_CONTROL",
      subjects: [
        `${PREFIX}.risk.halt.>`,
        `${PREFIX}.risk.resume.>`,
        `${PREFIX}.risk.pnl.baseline.>`,
        `${PREFIX}.risk.alert.>`,
        `${PREFIX}.risk.stop.>`,
        `${PREFIX}.risk.reconcile.>`,
      ],
      payload: "Halt | Resume | PnlBaseline | Alert | Stop | ReconcileState",
      retention: "last 1000 per subject, no age limit (a halt must outlive any rebuild)",
      max_age_ns: 0,
      max_msgs_per_subject: 1000,
      duplicate_window_ns: 120 * NS,
    },
    {
      name: "RISK_DECISIONS",
      subjects: [`${PREFIX}.risk.decision.>`],
      payload: "DecisionRecord",
      retention: `${o.decisionsMaxAgeS}s (covers the idempotency window and reservation TTL); dedupe on decision id`,
      max_age_ns: o.decisionsMaxAgeS * NS,
      max_msgs_per_subject: -1,
      duplicate_window_ns: 120 * NS,
    },
    {
      name: "RISK_DLQ",
      subjects: [`${PREFIX}.risk.dlq.>`],
      payload: "DeadLetter",
      retention: "30 days",
      max_age_ns: 30 * DAY,
      max_msgs_per_subject: -1,
      duplicate_window_ns: 120 * NS,
    },
  ];
}
