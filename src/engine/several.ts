/**
 * The parts of the engine that make several engines one service: the conditional decision journal,
 * the ownership registry (KV), partition ownership, and check forwarding. Timings derive from
 * `ownership.takeover_s` (T): heartbeat every T/5; a peer is dead after T·0.6 without a heartbeat
 * seen; an engine trusts its own leases only for T·0.4 after its last acknowledged heartbeat.
 */
import { jetstream, type JetStreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../config/index.js";
import { Subjects } from "../contract/subjects.js";
import type { Logger } from "../obs/log.js";
import { createJsPublisher } from "../bus/js-publisher.js";
import { type Ownership, createOwnership } from "../ownership/manager.js";
import { type Registry, createRegistry } from "../ownership/registry.js";
import { type FundJournal, createFundJournal } from "../service/fund-journal.js";
import { type ReadBack, createOwnDecisions } from "../facts/decisions.js";
import { type Forwarder, createForwarder } from "../service/forward.js";
import type { EngineState } from "../state/model.js";
import type { Clock } from "../time/clock.js";

/** The subject other engines forward checks to (instance ids may hold characters a token may not). */
export function instanceSubject(instance: string): string {
  return `${Subjects.check.replace(/\.check$/, "")}.engine.${instance.replace(/[^A-Za-z0-9_-]/g, "_")}.check`;
}

/** A random id kept in the state directory: a restart on it recognises its predecessor's leases. */
export function stateHome(dir: string): string {
  const file = join(dir, "engine-home");
  if (existsSync(file)) {
    const id = readFileSync(file, "utf8").trim();
    if (id) return id;
  }
  const id = randomBytes(9).toString("base64url");
  writeFileSync(file, `${id}\n`);
  return id;
}

export interface Several {
  journal: FundJournal;
  registry: Registry;
  ownership: Ownership;
  forwarder: Forwarder;
  subject: string;
  start(): Promise<void>;
  /** Readiness as the other engines should see it. */
  setReady(ready: boolean): void;
  /** Planned stop: hands every partition over (bounded by `timeoutMs`). */
  leave(timeoutMs: number): Promise<void>;
  /** `graceful` false: as a crash would (the heartbeat stays until it is judged dead). */
  stop(graceful?: boolean): Promise<void>;
}

export function createSeveral(o: {
  nc: NatsConnection;
  jsm: JetStreamManager;
  config: Config;
  instance: string;
  state: EngineState;
  clock: Clock;
  log: Logger;
  ready: () => boolean;
  announce: (message: string, details: Record<string, string>) => void;
  onGained: () => void;
  readBack?: ReadBack | (() => ReadBack) | undefined;
}): Several {
  const t = o.config.ownership.takeover_s * 1000;
  const subject = instanceSubject(o.instance);
  const publisher = createJsPublisher(o.nc, { timeoutMs: 2000 });
  const journal = createFundJournal({
    publisher,
    state: o.state,
    mayWrite: (fund) => own.mayWrite(fund), // called only once writes begin, after `own` exists
    own: createOwnDecisions({ state: o.state, readBack: o.readBack }),
    storedMsgId: async (seq) =>
      (await o.jsm.streams.getMessage("RISK_DECISIONS", { seq }))?.header.get("Nats-Msg-Id") || undefined,
  });
  let scheduled = false;
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      own.tick();
    });
  };
  const registry = createRegistry({
    js: jetstream(o.nc, { timeout: Math.max(500, t * 0.4) }),
    self: { instance: o.instance, subject, home: stateHome(o.config.state.dir) },
    replicas: o.config.nats.replicas,
    heartbeatMs: t / 5,
    deadMs: t * 0.6,
    freshMs: t * 0.4,
    clock: o.clock,
    log: o.log,
    onChange: schedule,
  });
  const own: Ownership = createOwnership({
    instance: o.instance,
    partitions: o.config.ownership.partitions,
    registry,
    jsm: o.jsm,
    state: o.state,
    journal,
    ready: o.ready,
    log: o.log,
    announce: o.announce,
    onGained: o.onGained,
  });
  const forwarder = createForwarder({ nc: o.nc, router: own, instance: o.instance, holdMs: t + 2000 });
  let timer: NodeJS.Timeout | undefined;
  let leaving = false;
  return {
    journal,
    registry,
    ownership: own,
    forwarder,
    subject,
    async start() {
      await registry.start();
      timer = setInterval(() => {
        registry.setStatus({ ready: !leaving && o.ready() && !own.suspended(), leaving });
        own.tick();
      }, 100);
    },
    setReady(ready) {
      registry.setStatus({ ready: ready && !leaving && !own.suspended(), leaving });
    },
    leave(timeoutMs) {
      leaving = true;
      return own.leave(timeoutMs);
    },
    async stop(graceful = true) {
      leaving = true;
      if (timer) clearInterval(timer);
      own.stop();
      await registry.stop(graceful);
      publisher.close();
    },
  };
}
