/**
 * A TCP proxy between one client (an engine) and nats-server, which a test can sever and restore:
 * a network cut of that client alone while its process lives. `sever()` destroys every connection
 * through it and refuses new ones (each accepted socket is destroyed at once, as a dropped link
 * would); `restore()` lets new connections through again. Bytes are piped unchanged.
 */
import { type Server, type Socket, connect, createServer } from "node:net";

export interface TcpProxy {
  /** `nats://127.0.0.1:<port>` of the proxy. */
  readonly url: string;
  /** Connections made through the proxy so far. */
  readonly connections: number;
  sever(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: string): Promise<TcpProxy> {
  const u = new URL(target);
  const port = Number(u.port);
  const host = u.hostname;
  let cut = false;
  let connections = 0;
  const live = new Set<Socket>();
  const server: Server = createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    connections++;
    const upstream = connect({ host, port });
    live.add(client);
    live.add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
      live.delete(client);
      live.delete(upstream);
    };
    client.on("error", end).on("close", end);
    upstream.on("error", end).on("close", end);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("proxy: no port");
  return {
    url: `nats://127.0.0.1:${address.port}`,
    get connections() {
      return connections;
    },
    sever() {
      cut = true;
      for (const s of [...live]) s.destroy();
      live.clear();
    },
    restore() {
      cut = false;
    },
    async close() {
      cut = true;
      for (const s of [...live]) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
