/**
 * The physical limit of a rebuild on this machine (issue 11): every stream the engine consumes,
 * read from its first message by the same client library and the same kind of consumer as the
 * engine's follower (an ordered consumer, `consume({ max_messages: 1000 })`), each message's body
 * JSON-parsed, and nothing else. Run in its own process, after the rebuild, on the same server.
 *
 * `node dist/bench/streamread.js <nats-url>`; prints {events, seconds, per_s, streams}.
 * (A `bareread.js` beside it, when another change supplies one, is used by the bench instead.)
 */
import { DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { CONSUMED_STREAMS } from "../contract/subjects.js";
import { emit } from "./util.js";

export interface BareRead {
  events: number;
  seconds: number;
  per_s: number;
  streams: Record<string, number>;
}

const url = process.argv[2] ?? "nats://127.0.0.1:4222";
const nc = await connect({ servers: url, name: "bench:bare-read", maxReconnectAttempts: -1 });
const jsm = await jetstreamManager(nc);
const js = jetstream(nc);
const td = new TextDecoder();

const t0 = performance.now();
let events = 0;
let sink = 0;
const streams: Record<string, number> = {};
for (const stream of CONSUMED_STREAMS) {
  let last = 0;
  try {
    last = (await jsm.streams.info(stream)).state.last_seq;
  } catch {
    continue; // not provisioned here
  }
  if (last === 0) continue;
  const c = await js.consumers.get(stream, { deliver_policy: DeliverPolicy.All });
  let n = 0;
  let done: () => void = () => undefined;
  const all = new Promise<void>((resolve) => (done = resolve));
  const sub = await c.consume({
    max_messages: 1000,
    callback: (m) => {
      try {
        const body = JSON.parse(td.decode(m.data)) as unknown;
        if (body !== null && typeof body === "object") sink++;
      } catch {
        // a body that is not JSON is still read
      }
      n++;
      if (m.seq >= last) done();
    },
  });
  await all;
  await sub.close();
  streams[stream] = n;
  events += n;
}
const seconds = (performance.now() - t0) / 1000;
const r: BareRead = { events, seconds: +seconds.toFixed(2), per_s: Math.round(events / seconds), streams };
emit({ ...r, parsed_objects: sink });
await nc.close();
process.exit(0);
