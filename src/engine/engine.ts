/**
 * The engine: connects, provisions streams, loads the snapshot, follows the streams, serves
 * checks, and flushes the snapshot in batches. `ready` only once caught up with every stream.
 */
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { randomBytes } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import type { Config } from "../config/index.js";
import { CONSUMED_STREAMS, Subjects, streamCatalog } from "../contract/subjects.js";
import { dec } from "../decimal/index.js";
import { connectBus } from "../bus/connect.js";
import { ensureStreams } from "../bus/streams.js";
import { DETERMINISTIC_GATES, createCroVetoGate, createPipeline, type RiskGate } from "../gates/index.js";
import { createFollower, type Follower } from "../ingest/follower.js";
import { createStalenessMonitor } from "../ingest/staleness.js";
import { type Logger, silentLogger } from "../obs/log.js";
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
  type FlushReport,
  type Snapshot,
  openSnapshot,
  sweepIdempotency,
  sweepReservations,
} from "../state/index.js";
import { type Clock, systemClock } from "../time/clock.js";
import type { ReadBack } from "../facts/decisions.js";
import { type Alerter, createAlerter, parkedUpTo } from "./alerts.js";
import {
  type DrawdownWorker,
  type KillSwitchWorker,
  type StopsWorker,
  type WorkerContext,
  type WorkerHost,
  createDrawdownMonitor,
  createLimitWarnings,
  type LimitWarnings,
  createKillSwitch,
  createStopsWorker,
  createSweeper,
  createWorkerHost,
} from "../workers/index.js";
import { type ReconcileReport, createReconciler } from "../workers/reconciler.js";
import { iso } from "../time/clock.js";
import { type Several, createSeveral } from "./several.js";

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
  /** What the owner does with its own acknowledged decisions on read-back (facts/decisions.ts). */
  readBack?: ReadBack | (() => ReadBack);
}

export interface Engine {
  readonly instance: string;
  readonly state: EngineState;
  readonly nc: NatsConnection;
  readonly js: JetStreamClient;
  readonly alerter: Alerter;
  ready(): boolean;
  whenReady(): Promise<void>;
  status(): EngineStatus;
  check: CheckService;
  workers: EngineWorkers;
  /** Prometheus registry and the check-path hooks (src/obs/metrics.ts). */
  metrics: EngineMetrics;
  /** Recent rejections and drift per fund (dashboard). */
  activity: Activity;
  /** Ready, or why not (/readyz). */
  readiness(): Readiness;
  /** Writes the snapshot now (after any periodic flush under way). */
  flush(): Promise<void>;
  close(): Promise<void>;
  /** Stop as a crash would: no drain, no final snapshot flush (tests of crash safety). */
  abort(): Promise<void>;
}

export interface Readiness {
  ready: boolean;
  /** Why not ready: shutting_down, nats_disconnected, catching_up, stale. */
  reason?: string;
  detail?: Record<string, unknown>;
}

export interface EngineWorkers {
  stops: StopsWorker;
  sweeper: { sweep(): number };
  drawdown: DrawdownWorker;
  warnings: LimitWarnings;
  killSwitch: KillSwitchWorker;
  reconciler: { pass(): Promise<ReconcileReport> };
  host: WorkerHost;
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

export async function startEngine(o: EngineOptions): Promise<Engine> {
  const config = o.config;
  const clock = o.clock ?? systemClock;
  const log = (o.log ?? silentLogger).child({ module: "engine" });
  const instance = config.engine.instance || `${hostname()}-${process.pid}`;
  const startedAt = clock.now();
  let seq = 0;
  // Unique per start: decision ids are the journal's Nats-Msg-Id, and a reused id would be dropped
  // by the stream's duplicate window.
  const idBase = `${instance}-${randomBytes(6).toString("base64url")}`;

  const nc = await connectBus({
    url: config.nats.url,
    name: `riskengine:${instance}`,
    user: config.nats.user,
    pass: config.nats.pass,
    inboxPrefix: config.nats.inbox_prefix,
  });
  const jsm = await jetstreamManager(nc);
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

  const snapshot: Snapshot = openSnapshot(snapshotPath(config));
  const state = snapshot.load(stateSettings(config));
  log.info({ cursors: Object.fromEntries(state.cursors), funds: state.funds.size }, "snapshot loaded");

  const metrics = createMetrics();
  const activity = createActivity();
  const alerter = createAlerter({
    js,
    clock,
    log,
    parked: await parkedUpTo(jsm),
    onAlert: (kind) => metrics.alert(kind),
  });
  let caught = false; // caught up with the streams measured at start / reconnect
  let connected = true;
  let closing = false;

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
      js.publish(subject, JSON.stringify(body), msgID ? { msgID } : undefined),
    // the decider is created below; workers only run once the engine is live
    precheck: (order, ahead) => decider.preview(order, ahead),
    onReconcile(report) {
      for (const f of report.funds) {
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
  );
  const workers: EngineWorkers = { stops, sweeper, drawdown, warnings, killSwitch, reconciler, host };

  // The follower's JetStream API calls time out fast: after a node dies, a 2.9 cluster may place a
  // new consumer on that node, and the create is never answered (the follower retries it).
  const followerJs = jetstream(nc, { timeout: FOLLOWER_API_TIMEOUT_MS });
  const follower: Follower = createFollower({
    js: followerJs,
    jsm: await followerJs.jetstreamManager(),
    state,
    streams: CONSUMED_STREAMS,
    log,
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
  const isReady = () => caught && connected && !closing && !staleness.stale();
  const readiness = (): Readiness => {
    if (closing) return { ready: false, reason: "shutting_down" };
    if (!connected) return { ready: false, reason: "nats_disconnected" };
    if (!caught) return { ready: false, reason: "catching_up", detail: { behind: follower.behind() } };
    if (staleness.stale())
      return { ready: false, reason: "stale", detail: { lag: Object.fromEntries(lag()) } };
    return { ready: true };
  };
  /** Messages each stream holds beyond the cursor: latest staleness sample, else the start measure. */
  const lag = (): Map<string, number> => {
    const last = staleness.latest() ?? follower.targets();
    const out = new Map<string, number>();
    for (const s of CONSUMED_STREAMS)
      out.set(s, Math.max(0, (last.get(s) ?? 0) - (state.cursors.get(s) ?? 0)));
    return out;
  };

  const gates: RiskGate[] = [...DETERMINISTIC_GATES, ...(o.extraGates ?? [])];
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
      if (!d.approved && outcome !== "replayed") {
        activity.rejected(e.record.fund_id, {
          at_ms: e.record.at_ms,
          order_id: d.order_id,
          gate: d.rejecting_gate,
          code: d.rejection_code,
          reason: d.reason,
        });
      }
    },
    onJournaled: (seconds) => metrics.journal(seconds),
    journal: several.journal,
    forwarder: several.forwarder,
    instanceSubject: several.subject,
    clock: () => iso(clock.now()),
    deferListen: true,
  });
  const envelopeSvc = createEnvelopeService({ nc, state, log });
  const status = () => ({
    ...engineStatus(state, { instance, ready: isReady(), startedAt, clock }),
    ...several.ownership.status(),
    lag: follower.behind(),
  });
  const statusSvc = createStatusService({
    nc,
    status,
    log,
    fund: (id) => fundReport(state, id, clock.now()),
  });

  const report = (r: FlushReport) => {
    for (const f of r.failures)
      log.error({ err: f.err, kind: f.kind, key: f.key }, "snapshot: entity not written");
  };
  let background: Promise<void> | undefined;
  /** The periodic flush: written by a worker thread, so SQLite never stalls the check path. */
  const flushInBackground = () => {
    background ??= snapshot
      .flushInBackground(state)
      .then(report, (err: unknown) => log.error({ err }, "snapshot flush failed"))
      .finally(() => {
        background = undefined;
      });
  };
  /** Everything applied so far, written before it resolves (after any background flush under way). */
  const flush = async () => {
    await background;
    try {
      report(snapshot.flush(state));
    } catch (err) {
      log.error({ err }, "snapshot flush failed");
    }
  };
  const flushTimer = setInterval(flushInBackground, config.state.flush_interval_ms);
  const sweepTimer = setInterval(() => {
    const now = clock.now();
    sweepReservations(state, now);
    sweepIdempotency(state, now);
  }, 1000);

  let sampling = false;
  const staleTimer = setInterval(() => {
    if (sampling || !caught) return;
    sampling = true;
    const was = staleness.stale();
    staleness
      .sample()
      .then(async (r) => {
        if (r.stale && !was) {
          const lag = r.lagging.map((l) => `${l.stream}@${l.cursor}<${l.behind_seq}`).join(",");
          alerter.alert("lag", "_", `engine state staler than ${config.engine.max_staleness_s}s: not ready`, {
            lagging: lag,
            unmeasured_ms: String(r.unmeasured_ms),
          });
          for (const l of r.lagging) await follower.reopen(l.stream);
        } else if (!r.stale && was) log.info("state fresh again: ready");
      })
      .catch((err: unknown) => log.error({ err }, "staleness sample failed"))
      .finally(() => (sampling = false));
  }, 1000);

  let readyPromise: Promise<void> = Promise.resolve();
  const becomeReady = async () => {
    const t0 = clock.now();
    const progress = setInterval(() => log.info({ behind: follower.behind() }, "catching up"), 2000);
    try {
      await follower.waitCaughtUp();
    } finally {
      clearInterval(progress);
    }
    if (closing) return;
    caught = true;
    log.info({ ms: clock.now() - t0, cursors: Object.fromEntries(state.cursors) }, "ready");
    several.setReady(isReady());
    host.ready();
    // and owning what this engine should own (bounded: a lease may be held by an engine not yet judged dead)
    const until = performance.now() + config.ownership.takeover_s * 1000 + 2000;
    while (!several.ownership.settled() && !closing && performance.now() < until) {
      await Promise.race([several.ownership.changed(), delay(50)]);
    }
    if (!closing) check.listen();
  };

  // After a reconnect JetStream may not answer yet (a cluster electing stream leaders after a node
  // died), and the consumers may have lived on the node that went away: re-measure, then open
  // every consumer again from its cursor, each step retried until it succeeds; then catch up.
  // A later reconnect supersedes this one.
  let reconnects = 0;
  const retrying = async (gen: number, what: string, step: () => Promise<void>): Promise<boolean> => {
    for (let attempt = 1; ; attempt++) {
      if (gen !== reconnects || closing) return false;
      try {
        await step();
        return true;
      } catch (err) {
        log.warn({ err, attempt }, `${what} after reconnect failed; retrying`);
        await delay(Math.min(100 * attempt, 1000));
      }
    }
  };
  const catchUpAfterReconnect = async (gen: number): Promise<void> => {
    if (!(await retrying(gen, "remeasure", () => follower.remeasure()))) return;
    const reopened = await Promise.all(
      CONSUMED_STREAMS.map((stream) => retrying(gen, `reopen ${stream}`, () => follower.reopen(stream))),
    );
    if (reopened.every(Boolean) && gen === reconnects) await becomeReady();
  };

  await several.start();
  // join the queue group once the ownership view is read: an engine that cannot yet tell who owns
  // a fund would only hold the checks it receives
  const syncedBy = performance.now() + 10_000;
  while (!several.registry.synced() && performance.now() < syncedBy) await delay(5);
  check.listen();
  await follower.start();
  readyPromise = becomeReady();

  (async () => {
    for await (const s of nc.status()) {
      if (closing) break;
      if (s.type === "disconnect") {
        if (isReady()) log.warn("disconnected from NATS: not ready");
        connected = false;
        caught = false;
      } else if (s.type === "reconnect") {
        log.info("reconnected to NATS: catching up");
        connected = true;
        readyPromise = catchUpAfterReconnect(++reconnects);
      }
    }
  })().catch((err: unknown) => log.error({ err }, "status loop failed"));

  metrics.bind({
    state,
    now: () => clock.now(),
    ready: isReady,
    connected: () => connected,
    lag,
    owned: () => {
      let n = 0;
      // funds with an envelope whose partition this engine holds (several engines: its share)
      for (const f of state.funds.values()) if (f.envelope && several.ownership.active(f.id)) n++;
      return n;
    },
    activity,
  });

  if (o.waitReady !== false) await readyPromise;

  return {
    instance,
    state,
    nc,
    js,
    alerter,
    ready: () => isReady(),
    whenReady: () => readyPromise,
    status,
    check,
    workers,
    metrics,
    activity,
    readiness,
    flush,
    async close() {
      // A planned stop hands the funds over first (while this engine still answers what it owns);
      // every step that needs the bus is bounded, so a stop ends whatever the bus does.
      const takeoverMs = config.ownership.takeover_s * 1000;
      if (connected) await bounded(several.leave(takeoverMs), takeoverMs + 1000);
      closing = true;
      host.stop();
      clearInterval(flushTimer);
      clearInterval(sweepTimer);
      clearInterval(staleTimer);
      const step = connected ? 2500 : 500;
      await bounded(check.stop(), step);
      await bounded(envelopeSvc.stop(), step);
      await bounded(statusSvc.stop(), step);
      await bounded(several.stop(), step);
      await bounded(follower.stop(), step);
      await flush();
      snapshot.close();
      if (connected) await bounded(nc.drain(), step);
      await nc.close().catch(() => undefined);
    },
    async abort() {
      closing = true;
      void several.stop(false).catch(() => undefined);
      host.stop();
      clearInterval(flushTimer);
      clearInterval(sweepTimer);
      clearInterval(staleTimer);
      await nc.close().catch(() => undefined);
      snapshot.close();
    },
  };
}
