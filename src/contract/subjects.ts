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
