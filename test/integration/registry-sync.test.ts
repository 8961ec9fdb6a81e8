/**
 * The ownership registry's view is synced by its first heartbeat, whichever arrives first: the
 * put's acknowledgement or the watch's delivery of that same revision (two subjects, no order
 * between them). Before the fix, when the watch came first, the view stayed unsynced until the
 * next heartbeat (takeover_s / 5), and an engine's start waited out its 10 s bound on most starts
 * of a loaded machine. Here the heartbeat interval is an hour: only the first heartbeat can sync.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { silentLogger } from "../../src/obs/log.js";
import { OWNERSHIP_BUCKET, type Registry, createRegistry } from "../../src/ownership/registry.js";
import { systemClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";

const HOUR = 3_600_000;
const STARTS = 12;

describe("ownership registry: synced by the first heartbeat", () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;

  beforeAll(async () => {
    server = await startTestNats();
    nc = await connectTest(server.url);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it(`is synced after start without a second heartbeat, ${STARTS} starts in a row`, async () => {
    const unsynced: string[] = [];
    for (let i = 0; i < STARTS; i++) {
      const instance = `sync-${i}`;
      const registry: Registry = createRegistry({
        js: jetstream(nc),
        self: { instance, subject: `_ENGINE.${instance}`, home: `/tmp/sync-${i}` },
        replicas: 1,
        heartbeatMs: HOUR,
        deadMs: HOUR,
        freshMs: HOUR,
        clock: systemClock,
        log: silentLogger,
        onChange: () => undefined,
      });
      await registry.start();
      const synced = await waitFor(() => registry.synced(), { timeoutMs: 15_000, intervalMs: 5 }).then(
        () => true,
        () => false,
      );
      if (!synced) unsynced.push(instance);
      else expect(registry.members().get(instance)?.instance).toBe(instance); // its own heartbeat, seen
      await registry.stop();
    }
    expect(unsynced).toEqual([]);
    // the bucket the registry uses is the engines' one
    const jsm = await jetstreamManager(nc);
    expect((await jsm.streams.info(`KV_${OWNERSHIP_BUCKET}`)).config.name).toBe(`KV_${OWNERSHIP_BUCKET}`);
  }, 240_000);
});
