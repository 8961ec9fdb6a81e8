/**
 * The ownership registry's view is synced by its first heartbeat, whichever arrives first: the
 * put's acknowledgement or the watch's delivery of that same revision (two subjects, no order
 * between them). Before the fix, when the watch came first, the view stayed unsynced until the
 * next heartbeat (takeover_s / 5), and an engine's start waited out its 10 s bound on most starts
 * of a loaded machine. Here the heartbeat interval is an hour: only the first heartbeat can sync.
 * Registries started at once on a server without the bucket all start. (The stream create race that
 * made an engine exit, "subjects overlap", is reproduced in streams-provision.test.ts; for the
 * bucket it was not reproduced here, before or after the bucket's retry of that answer.)
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

/** A registry on `conn` whose heartbeat interval is an hour: only its first heartbeat can sync it. */
const registryOn = (conn: NatsConnection, instance: string): Registry =>
  createRegistry({
    js: jetstream(conn),
    self: { instance, subject: `_ENGINE.${instance}`, home: `/tmp/${instance}` },
    replicas: 1,
    heartbeatMs: HOUR,
    deadMs: HOUR,
    freshMs: HOUR,
    clock: systemClock,
    log: silentLogger,
    onChange: () => undefined,
  });

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
      const registry: Registry = registryOn(nc, instance);
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

  it("four registries started at once, bucket absent, 10 rounds: every one starts", async () => {
    const jsm = await jetstreamManager(nc);
    const conns = await Promise.all([0, 1, 2, 3].map(() => connectTest(server.url)));
    try {
      for (let round = 0; round < 10; round++) {
        await jsm.streams.delete(`KV_${OWNERSHIP_BUCKET}`).catch(() => undefined);
        const registries = conns.map((c, i) => {
          const instance = `race-${round}-${i}`;
          return registryOn(c, instance);
        });
        const started = await Promise.allSettled(registries.map((r) => r.start()));
        expect(started.filter((s) => s.status === "rejected")).toEqual([]);
        await Promise.all(registries.map((r) => r.stop()));
      }
    } finally {
      await Promise.all(conns.map((c) => c.close()));
    }
  }, 120_000);
});
