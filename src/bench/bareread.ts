/**
 * The rebuild's physical limit (issue 11): the rate at which this client reads a stream and
 * JSON-parses every message, doing nothing else, with the same consumer the rebuild uses (an
 * ordered consumer from the first message, `consume` with the same batch). `mts-risk rebuild`'s
 * events/s over this is the ratio the target is set on (≥ 0.6).
 *
 * `node dist/bench/bareread.js --json '{"url":"nats://127.0.0.1:4222","streams":["FILLS"]}'` (or
 * `node dist/bench/bareread.js <url>`) prints `{ events, seconds, per_s, bytes }` (`streams`: default every consumed stream).
 */
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { fileURLToPath } from "node:url";
import { CONSUMED_STREAMS } from "../contract/subjects.js";
import { FOLLOW_BATCH } from "../ingest/follower.js";

export interface BareReadOptions {
  url: string;
  streams?: string[];
  /** Messages a pull request asks for (default: the follower's). */
  batch?: number;
}

export interface BareReadResult {
  events: number;
  seconds: number;
  per_s: number;
  bytes: number;
}

export async function bareRead(o: BareReadOptions): Promise<BareReadResult> {
  const nc = await connect({ servers: o.url, name: "bench:bareread" });
  try {
    const jsm = await jetstreamManager(nc);
    const js = jetstream(nc, { timeout: 1000 });
    const existing = new Set<string>();
    for await (const name of jsm.streams.names()) existing.add(name);
    const td = new TextDecoder();
    let events = 0;
    let bytes = 0;
    let sink = 0;
    const t0 = performance.now();
    for (const stream of o.streams ?? CONSUMED_STREAMS) {
      if (!existing.has(stream)) continue;
      const info = await jsm.streams.info(stream);
      if (info.state.messages === 0) continue;
      const last = info.state.last_seq;
      const c = await js.consumers.get(stream, { deliver_policy: DeliverPolicy.All });
      await new Promise<void>((resolve, reject) => {
        let done = false;
        void c
          .consume({
            max_messages: o.batch ?? FOLLOW_BATCH,
            callback: (m) => {
              const v = JSON.parse(td.decode(m.data)) as Record<string, unknown>;
              if (v !== null && typeof v === "object") sink++;
              events++;
              bytes += m.data.length;
              if (!done && (m.seq >= last || m.info.pending === 0)) {
                done = true;
                resolve();
              }
            },
          })
          .then((sub) => {
            const stop = setInterval(() => {
              if (done) {
                clearInterval(stop);
                void sub.close();
              }
            }, 10);
          }, reject);
      });
    }
    const seconds = (performance.now() - t0) / 1000;
    if (sink < 0) throw new Error("unreachable");
    return {
      events,
      seconds: +seconds.toFixed(3),
      per_s: seconds > 0 ? Math.round(events / seconds) : events,
      bytes,
    };
  } finally {
    await nc.close().catch(() => undefined);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  // `--json '{…}'`, or the server's URL alone (as the bench's rebuild phase calls it)
  const arg = process.argv[2];
  const opts: BareReadOptions =
    arg === "--json"
      ? (JSON.parse(process.argv[3] ?? "{}") as BareReadOptions)
      : { url: arg ?? process.env.NATS_URL ?? "nats://127.0.0.1:4222" };
  opts.url ??= process.env.NATS_URL ?? "nats://127.0.0.1:4222";
  bareRead(opts).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (err: unknown) => {
      process.stderr.write(`${String(err)}\n`);
      process.exit(1);
    },
  );
}
