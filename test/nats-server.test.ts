import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { TimeoutError, type NatsConnection } from "@nats-io/transport-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  findNatsServer,
  INSTALL_HINT,
  isReachable,
  NatsServerNotFound,
  NatsServerStartError,
  startNatsServer,
  type NatsServerHandle,
} from "../src/bus/nats-server.js";
import { connectTest, startTestNats, waitFor } from "./support/nats.js";

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function canListen(port: number): Promise<boolean> {
  return new Promise((done) => {
    const srv = createServer();
    srv.once("error", () => done(false));
    srv.listen(port, "127.0.0.1", () => srv.close(() => done(true)));
  });
}

async function withConnection<T>(url: string, fn: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connectTest(url);
  try {
    return await fn(nc);
  } finally {
    await nc.close();
  }
}

async function storedMessage(url: string, stream: string, seq: number): Promise<string | undefined> {
  return withConnection(url, async (nc) => {
    const jsm = await jetstreamManager(nc);
    return (await jsm.streams.getMessage(stream, { seq }))?.string();
  });
}

describe("startNatsServer (real nats-server)", () => {
  let server: NatsServerHandle;
  beforeAll(async () => {
    server = await startTestNats();
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("serves JetStream on 127.0.0.1: a published message is read back by a consumer", async () => {
    expect(server.url).toBe(`nats://127.0.0.1:${server.port}`);
    await withConnection(server.url, async (nc) => {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({ name: "ROUNDTRIP", subjects: ["roundtrip.>"] });
      const ack = await jetstream(nc).publish("roundtrip.a", "hello");
      expect(ack).toMatchObject({ stream: "ROUNDTRIP", seq: 1 });

      const consumer = await jetstream(nc).consumers.get("ROUNDTRIP");
      const msg = await consumer.next({ expires: 5000 });
      expect(msg?.subject).toBe("roundtrip.a");
      expect(msg?.string()).toBe("hello");
    });
    expect(existsSync(join(server.storeDir, "jetstream"))).toBe(true);
  });

  it("restart() comes back on the same port and store: stored messages survive", async () => {
    await withConnection(server.url, async (nc) => {
      await (await jetstreamManager(nc)).streams.add({ name: "DURABLE", subjects: ["durable.>"] });
      await jetstream(nc).publish("durable.a", "kept");
    });
    const { port, pid } = server;

    await server.restart();

    expect(server.port).toBe(port);
    expect(server.pid).not.toBe(pid);
    expect(processAlive(pid)).toBe(false);
    expect(await storedMessage(server.url, "DURABLE", 1)).toBe("kept");
  });

  it("kill() is a crash: the port closes, and after restart() acknowledged messages are still there", async () => {
    await withConnection(server.url, async (nc) => {
      await (await jetstreamManager(nc)).streams.add({ name: "CRASH", subjects: ["crash.>"] });
      await jetstream(nc).publish("crash.a", "acked");
    });
    const pid = server.pid;

    await server.kill();

    expect(processAlive(pid)).toBe(false);
    expect(await isReachable(server.url)).toBe(false);
    await server.restart();
    expect(await storedMessage(server.url, "CRASH", 1)).toBe("acked");
  });

  it("pause() freezes the server (requests time out) and resume() brings it back", async () => {
    const nc = await connectTest(server.url);
    try {
      const sub = nc.subscribe("echo");
      void (async () => {
        for await (const m of sub) m.respond(m.data);
      })();
      expect((await nc.request("echo", "before", { timeout: 2000 })).string()).toBe("before");

      server.pause();
      try {
        await expect(nc.request("echo", "paused", { timeout: 300 })).rejects.toBeInstanceOf(TimeoutError);
      } finally {
        server.resume();
      }

      const reply = await waitFor(
        async () => (await nc.request("echo", "after", { timeout: 500 })).string() === "after",
        { message: "echo did not answer after resume()" },
      );
      expect(reply).toBe(true);
    } finally {
      await nc.close();
    }
  });
});

describe("stop()", () => {
  it("ends the process, frees the port and (test harness) removes the store", async () => {
    const logDir = mkdtempSync(join(tmpdir(), "mts-nats-log-"));
    const logFile = join(logDir, "nats.log");
    const server = await startTestNats({ logFile });
    const { pid, port, url, storeDir } = server;
    expect(await isReachable(url)).toBe(true);

    await server.stop();

    expect(processAlive(pid)).toBe(false);
    expect(await isReachable(url)).toBe(false);
    expect(await canListen(port)).toBe(true);
    expect(existsSync(storeDir)).toBe(false);
    const log = readFileSync(logFile, "utf8");
    rmSync(logDir, { recursive: true, force: true });
    expect(log).toContain("Server is ready");
    expect(log).toContain("Server Exiting");
  });

  it("after pause() still stops promptly (SIGTERM is delivered with SIGCONT)", async () => {
    const server = await startTestNats();
    server.pause();
    const started = Date.now();
    await server.stop();
    expect(Date.now() - started).toBeLessThan(4000);
    expect(processAlive(server.pid)).toBe(false);
  });
});

describe("the repository's nats-server.conf", () => {
  it("is accepted by nats-server: JetStream under ./var/nats, 1 MB max payload", async () => {
    const cwd = mkdtempSync(join(tmpdir(), "mts-nats-conf-"));
    let server: NatsServerHandle | undefined;
    try {
      // -m -1: monitoring on a random port, so a developer's server on 8222 does not collide.
      server = await startNatsServer({ configFile: resolve("nats-server.conf"), cwd, args: ["-m", "-1"] });
      expect(server.storeDir).toBe(join(cwd, "var", "nats"));
      await withConnection(server.url, async (nc) => {
        expect(nc.info?.max_payload).toBe(1024 * 1024);
        expect((await (await jetstreamManager(nc)).getAccountInfo()).streams).toBe(0);
      });
      expect(existsSync(join(cwd, "var", "nats", "jetstream"))).toBe(true);
    } finally {
      await server?.stop();
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});

describe("start failures", () => {
  it("no binary: NatsServerNotFound with the install hint", async () => {
    const err: unknown = await startNatsServer({ env: { PATH: "" } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NatsServerNotFound);
    expect((err as NatsServerNotFound).code).toBe("NATS_SERVER_NOT_FOUND");
    expect((err as Error).message).toContain(INSTALL_HINT);
    expect(INSTALL_HINT).toContain("sudo apt-get install nats-server");
    expect(INSTALL_HINT).toContain("NATS_SERVER_BIN");
  });

  it("server exits before ready: the error carries its last output", async () => {
    const dir = mkdtempSync(join(tmpdir(), "mts-nats-bad-"));
    try {
      const configFile = join(dir, "bad.conf");
      writeFileSync(configFile, "listen: 127.0.0.1:4222\nthis is { not a config\n");
      const err: unknown = await startNatsServer({ configFile, storeDir: dir }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NatsServerStartError);
      expect((err as NatsServerStartError).message).toMatch(/exited \(code 1\) before it was ready/);
      expect((err as NatsServerStartError).logTail).toContain("Parse error on line 2");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("an explicit port already in use is refused", async () => {
    const server = await startTestNats();
    try {
      const err: unknown = await startNatsServer({ port: server.port }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(NatsServerStartError);
      expect((err as Error).message).toContain("already in use");
    } finally {
      await server.stop();
    }
  });
});

describe("findNatsServer", () => {
  it("returns undefined with an empty PATH and no NATS_SERVER_BIN", () => {
    expect(findNatsServer({ PATH: "" })).toBeUndefined();
  });

  describe("with a fake binary", () => {
    let dir: string;
    let fake: string;
    let notExecutable: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), "mts-find-nats-"));
      fake = join(dir, "nats-server");
      writeFileSync(fake, "#!/bin/sh\nexit 0\n");
      chmodSync(fake, 0o755);
      notExecutable = join(dir, "not-executable");
      writeFileSync(notExecutable, "");
      chmodSync(notExecutable, 0o644);
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("prefers an executable NATS_SERVER_BIN", () => {
      expect(findNatsServer({ PATH: "", NATS_SERVER_BIN: fake })).toBe(fake);
    });

    it("ignores a NATS_SERVER_BIN that is not executable", () => {
      expect(findNatsServer({ PATH: "", NATS_SERVER_BIN: notExecutable })).toBeUndefined();
      expect(findNatsServer({ PATH: dir, NATS_SERVER_BIN: notExecutable })).toBe(fake);
    });

    it("searches PATH in order, before the fallback dirs", () => {
      expect(findNatsServer({ PATH: ["/nonexistent", dir, "/usr/sbin"].join(":") })).toBe(fake);
    });
  });
});
