/**
 * The engine's configuration schema (ENGINE.md "Configuration").
 *
 * Every key has a default; every level is strict (unknown keys are rejected).
 * Sections are declared one by one so that the loader can validate a single
 * key against its own schema and name it in the error.
 */
import { z } from "zod";

const positiveSeconds = (fallback: number) => z.number().positive().default(fallback);
const positiveInt = (fallback: number) => z.number().int().positive().default(fallback);

export const LogLevel = {
  fatal: "fatal",
  error: "error",
  warn: "warn",
  info: "info",
  debug: "debug",
  trace: "trace",
  silent: "silent",
} as const;
export type LogLevel = (typeof LogLevel)[keyof typeof LogLevel];

export const OnDrift = { alert: "alert", lock: "lock", adopt: "adopt" } as const;
export type OnDrift = (typeof OnDrift)[keyof typeof OnDrift];

const nats = z.strictObject({
  url: z.string().min(1).default("nats://127.0.0.1:4222"),
  queue_group: z.string().min(1).default("riskengine"),
  /** Credentials; optional (a server without auth needs none). */
  user: z.string().min(1).optional(),
  pass: z.string().min(1).optional(),
  /**
   * Inbox prefix for this connection's replies and consumer deliveries (nats.js `inboxPrefix`);
   * unset = `_INBOX`. With deploy/nats-secure.conf each role has its own (`_INBOX_engine`,
   * `_INBOX_operator`, ...) and may subscribe to nothing else under an inbox.
   */
  inbox_prefix: z
    .string()
    .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/, "tokens of letters, digits, _ and - separated by dots")
    .optional(),
  /** JetStream replicas for the streams the engine owns. */
  replicas: z.number().int().min(1).max(5).default(1),
});

const state = z.strictObject({
  /** Where the SQLite snapshot lives. */
  dir: z.string().min(1).default("./var/state"),
  flush_interval_ms: positiveInt(200),
  /**
   * The snapshot writer commits at most once per this many ms: the captures taken every
   * flush_interval_ms meanwhile go in one transaction (0: each as it comes).
   */
  commit_interval_ms: z.number().int().min(0).default(1000),
});

const envelope = z.strictObject({
  versions_kept: positiveInt(100),
});

const idempotency = z.strictObject({
  window_s: positiveInt(86400),
});

const reservations = z.strictObject({
  /** An approved order not heard of again is released after this long. */
  ttl_s: positiveInt(86400),
});

const synthetic_stop = z.strictObject({
  enabled: z.boolean().default(true),
  /** Crypto, when a symbol has no quote stream. */
  poll_interval_s: positiveSeconds(5),
  poll_interval_equities_s: positiveSeconds(60),
  /** A closing order with no OMS event (accepted, fill, terminal) this long after its trigger is alerted. */
  closing_order_alert_s: positiveSeconds(30),
  /**
   * A closing order the OMS reports `done` without `filled_quantity` while FILLS shows less than
   * its quantity: the stop waits this long for fills still in flight before it takes the rest as
   * unfilled (FILLS and OMS_ORDERS are not ordered; another closing order sooner could flip it).
   */
  fills_grace_s: positiveSeconds(5),
  /**
   * After a closing order ends with nothing filled (OMS rejection, or the check's), the re-armed
   * stop fires again no sooner than this, doubling with each consecutive failure...
   */
  retry_backoff_s: positiveSeconds(1),
  /** ...up to this. */
  retry_backoff_max_s: positiveSeconds(60),
});

const position_arm_sweeper = z.strictObject({
  interval_s: positiveSeconds(30),
});

const broker_exit_reconciler = z.strictObject({
  enabled: z.boolean().default(true),
  interval_s: positiveSeconds(120),
  /** Alert on this many discrepancies or more (1: any). */
  alert_threshold: z.number().int().nonnegative().default(1),
  on_drift: z.enum([OnDrift.alert, OnDrift.lock, OnDrift.adopt]).default(OnDrift.alert),
  timeout_s: positiveSeconds(5),
  /**
   * `adopt` acts only on a drift seen with the same quantities in this many consecutive passes
   * (a fill in flight or one glitched broker answer must not rewrite a position); `lock` acts at once.
   */
  confirm_passes: z.number().int().positive().default(2),
});

const kill_switch = z.strictObject({
  verify_s: positiveSeconds(30),
});

const cro_veto = z.strictObject({
  enabled: z.boolean().default(false),
  timeout_s: positiveSeconds(5.0),
  confidence_threshold: z.number().min(0).max(1).default(0.85),
});

const engine = z.strictObject({
  /** "" means: derive from hostname and pid at run time. */
  instance: z.string().default(""),
  max_staleness_s: positiveSeconds(10),
  /**
   * 0 (the default): an ordered consumer delivers each quote as it is stored, so a check sent after
   * a quote's acknowledgement is judged at it (bar a race of microseconds). > 0: a busy quote
   * stream is read in pulls at most this many ms apart (one socket read for many quotes, less CPU
   * on an idle engine), and a check may be judged at a mark up to that much older than the newest
   * stored quote (README, "Decisions where the spec is silent").
   */
  quote_pace_ms: z.number().int().min(0).max(1000).default(0),
});

/**
 * The operations HTTP listener (/metrics, /healthz, /readyz, the dashboard). Port 0 picks a free
 * port (logged). When the port is taken (several engines on one machine with the same default
 * configuration), the engine logs an error and serves checks without HTTP unless `required`.
 */
const http = z.strictObject({
  enabled: z.boolean().default(true),
  host: z.string().min(1).default("127.0.0.1"),
  port: z.number().int().min(0).max(65535).default(9464),
  required: z.boolean().default(false),
});

const ownership = z.strictObject({
  /** A dead, cut-off or paused owner's funds are owned by another engine within this time. */
  takeover_s: positiveSeconds(5),
  /** Funds are hashed into this many partitions; each partition has one owner at a time. */
  partitions: z.number().int().min(1).max(4096).default(64),
});

const log = z.strictObject({
  level: z
    .enum([
      LogLevel.fatal,
      LogLevel.error,
      LogLevel.warn,
      LogLevel.info,
      LogLevel.debug,
      LogLevel.trace,
      LogLevel.silent,
    ])
    .default(LogLevel.info),
});

/** Each section's schema, by section name (in the order of the YAML file). */
export const CONFIG_SECTIONS = {
  nats,
  state,
  envelope,
  idempotency,
  reservations,
  synthetic_stop,
  position_arm_sweeper,
  broker_exit_reconciler,
  kill_switch,
  cro_veto,
  engine,
  http,
  ownership,
  log,
} as const;
export type ConfigSection = keyof typeof CONFIG_SECTIONS;

// `.prefault({})` (not `.default({})`): a missing section is parsed as `{}`,
// so its keys get their own defaults (zod v4's `.default` short-circuits).
export const ConfigSchema = z.strictObject({
  nats: nats.prefault({}),
  state: state.prefault({}),
  envelope: envelope.prefault({}),
  idempotency: idempotency.prefault({}),
  reservations: reservations.prefault({}),
  synthetic_stop: synthetic_stop.prefault({}),
  position_arm_sweeper: position_arm_sweeper.prefault({}),
  broker_exit_reconciler: broker_exit_reconciler.prefault({}),
  kill_switch: kill_switch.prefault({}),
  cro_veto: cro_veto.prefault({}),
  engine: engine.prefault({}),
  http: http.prefault({}),
  ownership: ownership.prefault({}),
  log: log.prefault({}),
});

export type Config = z.output<typeof ConfigSchema>;
export type SynthStopConfig = Config["synthetic_stop"];
export type ConfigInput = z.input<typeof ConfigSchema>;

/** Every key as "section.key", in schema order. */
export const CONFIG_KEYS: readonly string[] = Object.entries(CONFIG_SECTIONS).flatMap(([section, schema]) =>
  Object.keys(schema.shape).map((key) => `${section}.${key}`),
);

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object") {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** The configuration with nothing set (frozen). */
export const DEFAULTS: Config = deepFreeze(ConfigSchema.parse({}));
