/**
 * A real 3-node JetStream cluster for fault tests: nats-server processes on 127.0.0.1 with free
 * client and cluster ports, routes to each other, a unique `server_name` each and fresh store
 * directories (the layout of deploy/cluster/, on ports picked at run time). Plus the JetStream
 * helpers those tests need: stream leaders, leader step-down, and reading a whole stream.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JetStreamManager,
  type JsMsg,
  type StreamInfo,
} from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { startNatsServer, type NatsServerHandle } from "../../src/bus/nats-server.js";
import { waitFor } from "./nats.js";

export interface ClusterNode {
  /** `server_name`, as JetStream reports it (stream leaders, replicas). */
  readonly name: string;
  readonly url: string;
  readonly clientPort: number;
  readonly clusterPort: number;
  readonly storeDir: string;
  /** Everything the server wrote to stdout/stderr, across restarts. */
  readonly logFile: string;
  readonly handle: NatsServerHandle;
  readonly running: boolean;
  /** SIGKILL (a crash) and wait for the exit. */
  kill(): Promise<void>;
  /** Start again on the same ports and store; resolves once this node answers JetStream requests. */
  restart(): Promise<void>;
}

export interface TestCluster {
  readonly name: string;
  readonly nodes: readonly ClusterNode[];
  /** Client URLs of every node, comma-separated (the engine's `nats.url` form). */
  readonly url: string;
  /** Client URLs of the running nodes only, comma-separated. */
  runningUrl(): string;
  node(name: string): ClusterNode;
  /** SIGTERM every node and remove the stores. */
  stop(): Promise<void>;
}

/** `count` distinct ports that were free on 127.0.0.1 a moment ago (all held open at once). */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const srv = createServer();
      servers.push(srv);
      await new Promise<void>((done, fail) => {
        srv.once("error", fail);
        srv.listen(0, "127.0.0.1", () => done());
      });
    }
    return servers.map((s) => {
      const a = s.address();
      if (a === null || typeof a !== "object") throw new Error("could not pick a free port");
      return a.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((done) => s.close(() => done()))));
  }
}

/**
 * Start `size` (default 3) clustered JetStream nodes n1…nN. Resolves once every node answers
 * JetStream account info, which needs an elected meta leader (a quorum of the cluster).
 */
export async function startTestCluster(o: { size?: number; name?: string } = {}): Promise<TestCluster> {
  const size = o.size ?? 3;
  const clusterName = o.name ?? `mts-test-${process.pid}`;
  const root = await mkdtemp(join(tmpdir(), "mts-nats-cluster-"));
  const ports = await freePorts(2 * size);
  const specs = Array.from({ length: size }, (_, i) => ({
    name: `n${i + 1}`,
    clientPort: ports[i]!,
    clusterPort: ports[size + i]!,
    storeDir: join(root, `n${i + 1}`),
    logFile: join(root, `n${i + 1}.log`),
  }));
  const routes = (self: string) =>
    specs
      .filter((s) => s.name !== self)
      .map((s) => `nats://127.0.0.1:${s.clusterPort}`)
      .join(",");

  // In parallel: no node is JetStream-ready before a quorum of them has formed the cluster.
  const started = await Promise.allSettled(
    specs.map((s) =>
      startNatsServer({
        port: s.clientPort,
        storeDir: s.storeDir,
        logFile: s.logFile,
        args: [
          ...["--server_name", s.name, "--cluster_name", clusterName],
          ...["--cluster", `nats://127.0.0.1:${s.clusterPort}`, "--routes", routes(s.name)],
        ],
      }),
    ),
  );
  const failed = started.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    await Promise.all(started.map((r) => (r.status === "fulfilled" ? r.value.stop() : Promise.resolve())));
    await rm(root, { recursive: true, force: true });
    throw failed.reason;
  }
  const nodes: ClusterNode[] = specs.map((s, i) => {
    const handle = (started[i] as PromiseFulfilledResult<NatsServerHandle>).value;
    let running = true;
    return {
      ...s,
      url: handle.url,
      handle,
      get running() {
        return running;
      },
      kill: async () => {
        running = false;
        await handle.kill();
      },
      restart: async () => {
        await handle.restart();
        running = true;
      },
    };
  });
  return {
    name: clusterName,
    nodes,
    url: nodes.map((n) => n.url).join(","),
    runningUrl: () =>
      nodes
        .filter((n) => n.running)
        .map((n) => n.url)
        .join(","),
    node(name) {
      const n = nodes.find((x) => x.name === name);
      if (!n) throw new Error(`no node ${name} in cluster ${clusterName}`);
      return n;
    },
    async stop() {
      try {
        await Promise.all(nodes.map((n) => n.handle.stop()));
      } finally {
        await rm(root, { recursive: true, force: true });
      }
    },
  };
}

/** The `server_name` of the node a connection is attached to right now. */
export function connectedNode(nc: NatsConnection): string | undefined {
  return nc.info?.server_name;
}

export async function streamLeader(jsm: JetStreamManager, stream: string): Promise<string | undefined> {
  return (await jsm.streams.info(stream)).cluster?.leader;
}

/**
 * Step the stream's RAFT leader down until `target` is elected (the server picks the new leader:
 * retried until `timeoutMs`). Returns whether `target` leads it.
 */
export async function moveStreamLeader(
  nc: NatsConnection,
  stream: string,
  target: string,
  timeoutMs = 15_000,
): Promise<boolean> {
  const jsm = await jetstreamManager(nc);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const leader = await waitFor(() => streamLeader(jsm, stream), {
      timeoutMs: 5000,
      message: `${stream} has no leader`,
    });
    if (leader === target) return true;
    if (Date.now() >= deadline) return false;
    await nc.request(`$JS.API.STREAM.LEADER.STEPDOWN.${stream}`, "", { timeout: 5000 });
    await waitFor(async () => ((await streamLeader(jsm, stream)) ?? leader) !== leader, {
      timeoutMs: 5000,
      message: `${stream}: no new leader after a step-down`,
    }).catch(() => undefined);
  }
}

/**
 * Wait until every replica of the stream is online, current and not lagging, with `replicas`
 * peers besides the leader.
 */
export function waitStreamCurrent(
  jsm: JetStreamManager,
  stream: string,
  replicas: number,
  timeoutMs = 20_000,
): Promise<StreamInfo> {
  return waitFor(
    async () => {
      const info = await jsm.streams.info(stream);
      const peers = info.cluster?.replicas ?? [];
      const ok =
        info.cluster?.leader !== undefined &&
        peers.length === replicas &&
        peers.every((p) => p.current && !p.offline && (p.lag ?? 0) === 0);
      return ok ? info : undefined;
    },
    { timeoutMs, intervalMs: 100, message: `${stream}: replicas not all current` },
  ).then((info) => info!);
}

export interface StreamMsg<T> {
  subject: string;
  seq: number;
  data: T;
}

/**
 * Every message of a stream, in order, through an ordered consumer (fast on large streams, and
 * it follows leader changes). Reads up to the last sequence the stream had when called.
 */
export async function readAll<T = Record<string, unknown>>(
  nc: NatsConnection,
  stream: string,
  timeoutMs = 30_000,
): Promise<StreamMsg<T>[]> {
  // A short API timeout, and the consumer create retried: right after a node died, a 2.9 cluster
  // may place the new consumer on that node, and such a create is never answered.
  const js = jetstream(nc, { timeout: 1000 });
  const info = await waitFor(() => js.jetstreamManager().then((jsm) => jsm.streams.info(stream)), {
    timeoutMs,
    message: `${stream}: no stream info`,
  });
  const out: StreamMsg<T>[] = [];
  const last = info.state.last_seq;
  if (info.state.messages === 0) return out;
  const c = await waitFor(() => js.consumers.get(stream, { deliver_policy: DeliverPolicy.All }), {
    timeoutMs,
    message: `${stream}: no consumer`,
  });
  const iter = await c.consume({ max_messages: 1000 });
  const timer = setTimeout(() => void iter.close(), timeoutMs);
  try {
    for await (const m of iter as AsyncIterable<JsMsg>) {
      out.push({ subject: m.subject, seq: m.seq, data: m.json<T>() });
      if (m.seq >= last) break;
    }
  } finally {
    clearTimeout(timer);
    await iter.close().catch(() => undefined);
  }
  if ((out.at(-1)?.seq ?? 0) < last) {
    throw new Error(`${stream}: read up to seq ${out.at(-1)?.seq ?? 0} of ${last} in ${timeoutMs} ms`);
  }
  return out;
}
