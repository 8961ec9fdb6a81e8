/**
 * A live feed of one subject filter of a stream, as an async iterable of parsed JSON: an ordered
 * (ephemeral) consumer from now on or from the stream's start. `batches`: a message may hold a
 * JSON array of records (RISK_DECISIONS' `Mts-Batch`), yielded one by one. Messages that are not
 * JSON objects are skipped.
 */
import { DeliverPolicy, type ConsumerMessages, jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Watch } from "./types.js";

const td = new TextDecoder();
const STOP_WAIT_MS = 2000;

export function watchSubject<T>(
  nc: NatsConnection,
  stream: string,
  filter: string,
  from: "now" | "start",
  batches: boolean,
): Watch<T> {
  let messages: ConsumerMessages | undefined;
  let stopped = false;
  const open = async (): Promise<ConsumerMessages> => {
    const js = jetstream(nc);
    const c = await js.consumers.get(stream, {
      filter_subjects: filter,
      deliver_policy: from === "start" ? DeliverPolicy.All : DeliverPolicy.New,
    });
    return c.consume({ max_messages: 256 });
  };
  const ready = open().then((m) => {
    messages = m;
    if (stopped) void m.close();
    return m;
  });
  const stop = async (): Promise<void> => {
    stopped = true;
    const m = messages ?? (await ready.catch(() => undefined));
    if (!m) return;
    // end the iteration first (an iterator paused mid-stream would otherwise keep close() waiting
    // for messages nobody reads), then close the consumer, bounded: a stop always ends
    m.stop();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      m.close().catch(() => undefined),
      new Promise<void>((done) => (timer = setTimeout(done, STOP_WAIT_MS))),
    ]);
    clearTimeout(timer);
  };
  async function* iterate(): AsyncGenerator<T> {
    const m = await ready;
    try {
      for await (const msg of m) {
        let v: unknown;
        try {
          v = JSON.parse(td.decode(msg.data));
        } catch {
          continue;
        }
        const list = batches && Array.isArray(v) ? v : [v];
        for (const x of list) if (x !== null && typeof x === "object" && !Array.isArray(x)) yield x as T;
        if (stopped) return;
      }
    } finally {
      await stop();
    }
  }
  return {
    [Symbol.asyncIterator]: () => iterate(),
    ready: ready.then(() => undefined),
    stop,
  };
}
