/**
 * The engine: connects, provisions streams, loads the snapshot, follows the streams, serves
 * checks, and flushes the snapshot in batches. `ready` only once caught up with every stream.
 */
import { cursorsPast, otherBus, rememberBus, setAside, streamIdentity } from "./bus-identity.js";
import { lockStateDir } from "./state-lock.js";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { setTimeout as delay } from "node:timers/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Config } from "../config/index.js";
import { CONSUMED_STREAMS, Subjects, streamCatalog } from "../contract/subjects.js";
import { dec } from "../decimal/index.js";
import { connectBus } from "../bus/connect.js";
import { ensureStreams } from "../bus/streams.js";
import { retryTransient } from "../bus/transient.js";
import { createInFlight } from "../bus/in-flight.js";
import {
  DETERMINISTIC_GATES,
  createCroVetoGate,
  createDrawdownGate,
  createPipeline,
  drawdownGate,
  type RiskGate,
} from "../gates/index.js";
import { createFollower, type Follower } from "../ingest/follower.js";
import { createStalenessMonitor } from "../ingest/staleness.js";
import { type Logger, silentLogger } from "../obs/log.js";
import { readVelocity, velocityOnDisk } from "../state/velocity.js";
import { type Activity, createActivity } from "../obs/activity.js";
import { type EngineMetrics, createMetrics } from "../obs/metrics.js";
import {
  createCheckService,
  createDecider,
  createEnvelopeService,
  createStatusService,
  engineStatus,
  fundReport,
  type CheckService,
  type EngineStatus,
} from "../service/index.js";
import {
  type EngineState,
  type Snapshot,
  openSnapshot,
  startHashReader,
  sweepIdempotency,
  sweepReservations,
} from "../state/index.js";
import { type Clock, systemClock } from "../time/clock.js";
import type { ReadBack } from "../facts/decisions.js";
import { type Alerter, createAlerter, parkedUpTo } from "./alerts.js";
import {
  type WorkerContext,
  createDrawdownMonitor,
  createLimitWarnings,
  createKillSwitch,
  createStopsWorker,
  createSweeper,
  createWorkerHost,
} from "../workers/index.js";
import { createReconciler } from "../workers/reconciler.js";
import { iso } from "../time/clock.js";
import { type Several, createSeveral } from "./several.js";
import { type Readiness, createReadiness, lagOf } from "./readiness.js";
import {
  type Timers,
  createFlusher,
  createSchedule,
  createStalenessSampler,
  systemTimers,
} from "./scheduling.js";
import { createReconnect, watchStatus } from "./reconnect.js";
import { ownedFunds, waitSettled, waitSynced } from "./owning.js";
import { type EngineObserver, type ReconciliationView, createObserver } from "./observe.js";

export type { Readiness } from "./readiness.js";

/** Bounds a shutdown step: a bus that does not answer must not keep the process from stopping. */
const bounded = (p: Promise<unknown>, ms: number): Promise<unknown> =>
  Promise.race([p.catch(() => undefined), delay(ms)]);

const DECISION_PREFIX = Subjects.decision("");
/** The follower's JetStream API timeout (stream info, consumer create). */
const FOLLOWER_API_TIMEOUT_MS = 1000;

export interface EngineOptions {
  config: Config;
  clock?: Clock;
  log?: Logger;
  /** Custom gates, run after the built-in deterministic ones (async ones after all sync gates). */
  extraGates?: RiskGate[];
  /** Wait until caught up before resolving (default true). */
  waitReady?: boolean;
  /** The engine's timers (default: Node's). */
  timers?: Timers;
  /** What the owner does with its own acknowledged decisions on read-back (facts/decisions.ts). */
  readBack?: ReadBack | (() => ReadBack);
}

export interface Engine {
  readonly instance: string;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly alerter: Alerter;
  ready(): boolean;
  whenReady(): Promise<void>;
  status(): EngineStatus;
  check: CheckService;
  /** Prometheus registry and the check-path hooks (src/obs/metrics.ts). */
  metrics: EngineMetrics;
  /** Recent rejections and drift per fund (dashboard). */
  activity: Activity;
  /** Ready, or why not (/readyz). */
  readiness(): Readiness;
  /** Read-only, plain-data view of the state (./observe.ts): what tests in the same process may read. */
  observe: EngineObserver;
  /** Writes the snapshot now (after any periodic flush under way). */
  flush(): Promise<void>;
  close(): Promise<void>;
  /** Stop as a crash would: no drain, no final snapshot flush (tests of crash safety). */
  abort(): Promise<void>;
}

export function snapshotPath(config: Config): string {
  return join(config.state.dir, "snapshot.sqlite");
}

export function stateSettings(config: Config) {
  return {
    idempotencyWindowMs: config.idempotency.window_s * 1000,
    reservationTtlMs: config.reservations.ttl_s * 1000,
    envelopeVersionsKept: config.envelope.versions_kept,
    fillDedupeWindowMs: 86_400_000,
  };
}

/** Starts an engine on its state directory, which it holds (state-lock.ts) until close or abort. */
export async function startEngine(o: EngineOptions): Promise<Engine> {
  const lock = lockStateDir(o.config.state.dir);
  let engine: Engine;
  try {
    engine = await startOnLockedDir(o);
  } catch (err) {
    lock.release();
    throw err;
  }
  const close = engine.close.bind(engine);
  const abort = engine.abort.bind(engine);
  return Object.assign(engine, {
    close: () => close().finally(() => lock.release()),
    abort: () => abort().finally(() => lock.release()),
  });
}

async function startOnLockedDir(o: EngineOptions): Promise<Engine> {
  const config = o.config;
  const clock = o.clock ?? systemClock;
  const timers = o.timers ?? systemTimers;
  const log = (o.log ?? silentLogger).child({ module: "engine" });
  const instance = config.engine.instance || `${hostname()}-${process.pid}`;
  const startedAt = clock.now();
  let seq = 0;
  // Unique per start: decision ids are the journal's Nats-Msg-Id, and a reused id would be dropped
  // by the stream's duplicate window.
  const idBase = `${instance}-${randomBytes(6).toString("base64url")}`;
  // a restart: the snapshot's hash lists are read on a worker thread while this one connects,
  // provisions and loads the rest (the load reads a list itself whenever this copy is not usable)
  let hashes = existsSync(snapshotPath(config)) ? startHashReader(snapshotPath(config)) : undefined;
  const nc = await connectBus({
    url: config.nats.url,
    name: `riskengine:${instance}`,
    user: config.nats.user,
    pass: config.nats.pass,
    inboxPrefix: config.nats.inbox_prefix,
  });
  // a cluster still electing its meta leader answers the API check with "no responders"
  const jsm = await retryTransient(() => jetstreamManager(nc), {
    forMs: 60_000,
    onRetry: (err, attempt) =>
      log.warn({ err: String(err), attempt }, "JetStream not available yet; retrying"),
  });
  const js = jetstream(nc);
  const provisioned = await ensureStreams(
    jsm,
    streamCatalog({
      envelopeVersionsKept: config.envelope.versions_kept,
      fillsDedupeWindowS: 86_400,
      decisionsMaxAgeS: Math.max(7 * 86_400, config.idempotency.window_s, config.reservations.ttl_s),
    }),
    config.nats.replicas,
    log,
  );
  log.info({ streams: provisioned }, "streams provisioned");

  // a snapshot of another bus (streams created since, cursors past their ends) is set aside
  const bus = await retryTransient(() => streamIdentity(jsm, CONSUMED_STREAMS), {
    forMs: 60_000,
    onRetry: (err, attempt) =>
      log.warn({ err: String(err), attempt }, "stream info not available yet; retrying"),
  });
  const setAsideBecause = (why: string) => {
    const to = setAside(snapshotPath(config), clock.now());
    log.warn({ why, moved_to: to }, "snapshot is not of this bus: set aside, state rebuilt from the streams");
  };
  const foreign = otherBus(config.state.dir, bus);
  if (foreign && existsSync(snapshotPath(config))) {
    hashes?.close();
    hashes = undefined;
    setAsideBecause(foreign);
  }
  const open = () => openSnapshot(snapshotPath(config), { commitEveryMs: config.state.commit_interval_ms });
  let snapshot: Snapshot = open();
  let state: EngineState;
  try {
    state = snapshot.load(stateSettings(config), hashes);
  } finally {
    hashes?.close();
  }
  const past = cursorsPast(state.cursors, bus);
  if (past) {
    snapshot.close();
    setAsideBecause(past);
    snapshot = open();
    state = snapshot.load(stateSettings(config));
  }
  rememberBus(config.state.dir, bus);
  log.info({ cursors: Object.fromEntries(state.cursors), funds: state.funds.size }, "snapshot loaded");

  const metrics = createMetrics();
  /** What the workers and the alerter publish, until acknowledged: a worker's tick ends after it. */
  const published = createInFlight();
  const activity = createActivity();
  const alerter = createAlerter({
    js,
    clock,
    log,
    parked: await parkedUpTo(jsm),
    onAlert: (kind) => metrics.alert(kind),
    inFlight: published,
  });
  /** Each fund's last reconciliation pass (Engine.observe). */
  const reconciled = new Map<string, ReconciliationView>();
  // eslint-disable-next-line prefer-const -- assigned once the follower exists (it reads fences)
  let several: Several;
  const wctx: WorkerContext = {
    owns: (fund) => several.ownership.active(fund),
    state,
    nc,
    js,
    clock,
    log,
    alerter,
    config,
    publish: (subject, body, msgID) =>
      published.track(js.publish(subject, JSON.stringify(body), msgID ? { msgID } : undefined)),
    // the decider is created below; workers only run once the engine is live
    precheck: (order, ahead) => decider.preview(order, ahead),
    onReconcile(report) {
      for (const f of report.funds) {
        reconciled.set(f.fund, { at: report.at, action: f.action, clean: f.clean, brokers: f.brokers });
        const drifting = f.brokers.filter((b) => b.differences.length > 0);
        activity.drift(f.fund, {
          at: report.at,
          brokers: drifting.map((b) => b.broker),
          symbols: [...new Set(drifting.flatMap((b) => b.differences.map((d) => d.symbol)))],
          action: f.action,
          clean: f.clean,
        });
      }
    },
  };
  const stops = createStopsWorker(wctx);
  const sweeper = createSweeper(wctx, stops);
  const drawdown = createDrawdownMonitor(wctx);
  const warnings = createLimitWarnings(wctx);
  const killSwitch = createKillSwitch(wctx);
  const reconciler = createReconciler(wctx);
  const host = createWorkerHost(
    [
      drawdown,
      warnings,
      stops,
      sweeper,
      killSwitch,
      ...(config.broker_exit_reconciler.enabled ? [reconciler] : []),
    ],
    log,
    timers,
    () => published.settled(),
  );

  // The follower's JetStream API calls time out fast: after a node dies, a 2.9 cluster may place a
  // new consumer on that node, and the create is never answered (the follower retries it).
  const followerJs = jetstream(nc, { timeout: FOLLOWER_API_TIMEOUT_MS });
  const follower: Follower = createFollower({
    js: followerJs,
    jsm: await followerJs.jetstreamManager(),
    state,
    streams: CONSUMED_STREAMS,
    log,
    paced: {
      nc,
      streams: ["QUOTES"],
      paceMs: config.engine.quote_pace_ms,
      inboxPrefix: config.nats.inbox_prefix,
    },
    beforeProject() {
      if (isReady()) host.beforeApply();
    },
    recognise: (stream, m) => several.journal.own.recognise(stream, m.subject, m.seq, m.data),
    onResult(stream, msg, r) {
      if (stream === "RISK_DECISIONS") {
        const fence = msg.headers?.get("Mts-Fence");
        if (fence) several.ownership.noteFence(msg.subject.slice(DECISION_PREFIX.length), fence);
      }
      if (wctx.facts?.tracking()) wctx.facts.readBack(msg.headers?.get("Nats-Msg-Id"));
      if (!r.ok) return alerter.deadLetter(stream, msg, r.reason, r.fund);
      if (!isReady()) return;
      if (r.notice) alerter.alert(r.notice.kind, r.notice.fund, r.notice.message, r.notice.details);
      if (r.change) host.dispatch(r.change);
    },
  });

  const staleness = createStalenessMonitor({
    jsm,
    state,
    streams: CONSUMED_STREAMS,
    boundMs: config.engine.max_staleness_s * 1000,
  });
  /** Messages each stream holds beyond the cursor: latest staleness sample, else the start measure. */
  const lag = (): Map<string, number> =>
    lagOf(staleness.latest() ?? follower.targets(), state.cursors, CONSUMED_STREAMS);
  const readiness = createReadiness({ stale: () => staleness.stale(), behind: () => follower.behind(), lag });
  const isReady = readiness.isReady;

  // the drawdown gate also counts the halts the monitor decided and has not read back yet
  const drawdownNow = createDrawdownGate({
    inFlight: (fund) => {
      drawdown.evaluateDue(fund); // a quote's breach not evaluated yet halts before this check
      return drawdown.inFlight(fund);
    },
  });
  const gates: RiskGate[] = [
    ...DETERMINISTIC_GATES.map((g) => (g === drawdownGate ? drawdownNow : g)),
    ...(o.extraGates ?? []),
  ];
  if (config.cro_veto.enabled) {
    gates.push(
      createCroVetoGate({
        threshold: dec(String(config.cro_veto.confidence_threshold)),
        ask: async (payload) => {
          const m = await nc.request(Subjects.croVeto, JSON.stringify(payload), {
            timeout: config.cro_veto.timeout_s * 1000,
          });
          return m.json();
        },
        onFailOpen: (fund, orderId, why) =>
          alerter.alert("cro", fund, `CRO advisor did not answer for ${orderId} (${why}); order passed`, {
            order_id: orderId,
          }),
      }),
    );
  }
  const decider = createDecider({
    state,
    pipeline: createPipeline(gates),
    clock,
    instance,
    ready: () => isReady(),
    nextId: () => `${idBase}-${++seq}`,
  });
  several = createSeveral({
    nc,
    jsm,
    config,
    instance,
    state,
    clock,
    log,
    ready: () => isReady(),
    announce: (message, details) => alerter.alert("ownership", "_", message, details),
    readBack: o.readBack,
    onGained: () => {
      if (isReady()) host.ready();
    },
  });
  const check = createCheckService({
    nc,
    decider,
    state,
    log,
    queueGroup: config.nats.queue_group,
    // soft limits (warn_at_pct): an approval's reservation may take a measure over its share
    onDecision: (e) => {
      const res = e.record.reservation;
      if (res && !e.replayOf && e.decision.approved && isReady())
        warnings.afterDecision(e.record.fund_id, res.symbol, e.record.decision_id);
    },
    onAnswered(e, outcome, seconds) {
      const d = e.decision;
      if (outcome === "unavailable") metrics.check(outcome, seconds, "engine", "STATE_NOT_READY");
      else metrics.check(outcome, seconds, d.rejecting_gate, d.rejection_code);
      // a fund with an envelope only: the ids an OMS invents (NO_ENVELOPE) must not grow the map
      if (!d.approved && outcome !== "replayed" && state.funds.get(e.record.fund_id)?.envelope) {
        activity.rejected(e.record.fund_id, {
          at_ms: e.record.at_ms,
          order_id: d.order_id,
          gate: d.rejecting_gate,
          code: d.rejection_code,
          reason: d.reason,
        });
      }
    },
    onNotReady: (seconds) => metrics.check("unavailable", seconds, "engine", "STATE_NOT_READY"),
    onJournaled: (seconds) => metrics.journal(seconds),
    journal: several.journal,
    forwarder: several.forwarder,
    instanceSubject: several.subject,
    clock: () => iso(clock.now()),
    deferListen: true,
  });
  const envelopeSvc = createEnvelopeService({ nc, state, log });
  const status = (q: { digest: boolean } = { digest: true }) => ({
    ...engineStatus(state, { instance, ready: isReady(), startedAt, clock, digest: q.digest }),
    ...several.ownership.status(),
    lag: follower.behind(),
  });
  const statusSvc = createStatusService({
    nc,
    status,
    log,
    fund: (id) => fundReport(state, id, clock.now()),
  });

  const flusher = createFlusher({ snapshot, state, log });
  const flush = flusher.flush;
  const sampler = createStalenessSampler({
    staleness,
    caught: readiness.caught,
    async onStale(r) {
      const lag = r.lagging.map((l) => `${l.stream}@${l.cursor}<${l.behind_seq}`).join(",");
      alerter.alert("lag", "_", `engine state staler than ${config.engine.max_staleness_s}s: not ready`, {
        lagging: lag,
        unmeasured_ms: String(r.unmeasured_ms),
      });
      for (const l of r.lagging) await follower.reopen(l.stream);
    },
    onFresh: () => log.info("state fresh again: ready"),
    log,
  });
  const schedule = createSchedule({
    timers,
    clock,
    flushIntervalMs: config.state.flush_interval_ms,
    flush: flusher.background,
    sweep(now) {
      sweepReservations(state, now);
      sweepIdempotency(state, now);
    },
    sample: () => sampler.tick(),
  });

  let readyPromise: Promise<void> = Promise.resolve();
  const becomeReady = async () => {
    const t0 = clock.now();
    const progress = timers.every(2000, () => log.info({ behind: follower.behind() }, "catching up"), {
      name: "catching-up",
    });
    try {
      await follower.waitCaughtUp();
    } finally {
      progress();
    }
    if (!readiness.caughtUp()) return;
    // what lapsed while the engine was away (or in what it just read) stops reserving now, not at
    // the first periodic sweep (red team, stop 30)
    sweepReservations(state, clock.now());
    log.info({ ms: clock.now() - t0, cursors: Object.fromEntries(state.cursors) }, "ready");
    several.setReady(isReady());
    host.ready();
    // and owning what this engine should own (bounded: a lease may be held by an engine not yet judged dead)
    await waitSettled(several.ownership, {
      boundMs: config.ownership.takeover_s * 1000 + 2000,
      closing: readiness.closing,
    });
    if (!readiness.closing()) check.listen();
    warmVelocity(state, log, readiness.closing); // once answering: one fund a turn, between checks
  };

  // After a reconnect: re-measure, reopen every consumer from its cursor, then catch up (./reconnect.ts).
  const reconnect = createReconnect({
    follower,
    streams: CONSUMED_STREAMS,
    closing: readiness.closing,
    catchUp: becomeReady,
    log,
  });

  await several.start();
  // join the queue group once the ownership view is read: an engine that cannot yet tell who owns
  // a fund would only hold the checks it receives
  await waitSynced(several.registry, { boundMs: 10_000 });
  check.listen();
  await follower.start();
  readyPromise = becomeReady();

  watchStatus(nc.status(), {
    closing: readiness.closing,
    disconnected() {
      if (isReady()) log.warn("disconnected from NATS: not ready");
      readiness.disconnected();
    },
    reconnected() {
      log.info("reconnected to NATS: catching up");
      readiness.reconnected();
      readyPromise = reconnect.reconnected();
    },
  }).catch((err: unknown) => log.error({ err }, "status loop failed"));

  metrics.bind({
    state,
    now: () => clock.now(),
    ready: isReady,
    connected: readiness.connected,
    lag,
    owned: () => ownedFunds(state.funds.values(), (fund) => several.ownership.active(fund)),
    activity,
  });

  if (o.waitReady !== false) await readyPromise;

  return {
    instance,
    nc,
    js,
    alerter,
    ready: () => isReady(),
    whenReady: () => readyPromise,
    status,
    check,
    metrics,
    activity,
    readiness: readiness.readiness,
    observe: createObserver(state, { reconciliation: (fund) => reconciled.get(fund) }),
    flush,
    async close() {
      // A planned stop hands the funds over first (while this engine still answers what it owns);
      // every step that needs the bus is bounded, so a stop ends whatever the bus does.
      const takeoverMs = config.ownership.takeover_s * 1000;
      if (readiness.connected()) await bounded(several.leave(takeoverMs), takeoverMs + 1000);
      readiness.close();
      host.stop();
      schedule.stop();
      const step = readiness.connected() ? 2500 : 500;
      // a check held while its fund moved is forwarded once the new owner has caught up and fenced
      // (it may still be taking the lease over): wait for it up to the forwarder's hold, T + 2 s
      const held = readiness.connected() ? takeoverMs + 2000 : 500;
      await bounded(check.stop(held), held + 500);
      await bounded(envelopeSvc.stop(), step);
      await bounded(statusSvc.stop(), step);
      await bounded(several.stop(), step);
      await bounded(follower.stop(), step);
      await flush();
      snapshot.close();
      if (readiness.connected()) await bounded(nc.drain(), step);
      await nc.close().catch(() => undefined);
    },
    async abort() {
      readiness.close();
      void several.stop(false).catch(() => undefined);
      host.stop();
      schedule.stop();
      await nc.close().catch(() => undefined);
      snapshot.close();
    },
  };
}

/**
 * Reads the velocity windows a snapshot left on disk (see Snapshot.load), one fund a turn of the
 * event loop once the engine is ready: checks are answered meanwhile, and a check of a fund not
 * read yet reads its window first (a velocity gate never counts a window it has not read).
 */
function warmVelocity(state: EngineState, log: Logger, closing: () => boolean): void {
  const funds = [...state.funds.values()].filter((f) => velocityOnDisk(f.velocity));
  if (funds.length === 0) return;
  const t0 = performance.now();
  const n = funds.length;
  const next = (): void => {
    const f = funds.pop();
    if (closing()) return;
    if (!f) {
      log.info({ funds: n, ms: Math.round(performance.now() - t0) }, "velocity windows read");
      return;
    }
    try {
      readVelocity(f.velocity);
    } catch (err) {
      log.warn({ err, fund: f.id }, "velocity window not read ahead (read on first use)");
    }
    setImmediate(next);
  };
  setImmediate(next);
}
