/**
 * Rebuild rate: a fresh nats-server holding a book and `fills` fills, then `mts-risk rebuild` (the
 * operator's command, in its own process) replays every stream into a fresh snapshot.
 */
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { startNatsServer } from "../bus/nats-server.js";
import { ensureStreams } from "../bus/streams.js";
import { Subjects, streamCatalog } from "../contract/subjects.js";
import { silentLogger } from "../obs/log.js";
import { FUNDS, SYMBOLS, envelope, fill, fundId, instrument, symbolId } from "./book.js";
import { runJson, scriptPath } from "./proc.js";
import { publishAll } from "./publish.js";
import { progress } from "./util.js";

export interface RebuildReport {
  fills: number;
  events: number;
  invalid: number;
  seconds: number;
  events_per_s: number;
  state_digest: string;
  publish_per_s: number;
}

export async function runRebuildPhase(
  workDir: string,
  fills: number,
  cpuProfileDir?: string,
): Promise<RebuildReport> {
  const server = await startNatsServer({ storeDir: join(workDir, "nats-rebuild") });
  const nc = await connect({ servers: server.url, name: "bench:rebuild", maxReconnectAttempts: -1 });
  try {
    await ensureStreams(await jetstreamManager(nc), streamCatalog(), 1, silentLogger);
    const js = jetstream(nc);
    await publishAll(js, FUNDS, (f) => ({
      subject: Subjects.envelopeUpdated(fundId(f)),
      data: JSON.stringify(envelope(f)),
    }));
    await publishAll(js, SYMBOLS, (s) => ({
      subject: Subjects.instrument(symbolId(s)),
      data: JSON.stringify(instrument(s)),
    }));
    progress(`rebuild: publishing ${fills} fills`);
    // 50 funds × 1 000 symbols; three rounds of buys to one of sells, so positions stay open.
    const pairs = FUNDS * SYMBOLS;
    const pub = await publishAll(
      js,
      fills,
      (i) => {
        const round = Math.floor(i / pairs);
        const f = i % FUNDS;
        const s = Math.floor(i / FUNDS) % SYMBOLS;
        const body = fill(
          i,
          f,
          s,
          round % 4 === 3 ? "SELL" : "BUY",
          "10",
          (100 + (round % 5) * 0.1).toFixed(1),
        );
        return { subject: Subjects.fill(fundId(f), symbolId(s)), data: JSON.stringify(body) };
      },
      { label: "rebuild fills", window: 4000 },
    );
    progress("rebuild: fills published", { per_s: pub.per_s, seconds: pub.seconds });
    const stateDir = join(workDir, "rebuild-state");
    mkdirSync(stateDir, { recursive: true });
    const env: NodeJS.ProcessEnv = { ...process.env, RISK_LOG__LEVEL: "info" };
    delete env.NATS_URL;
    let lastShown = 0;
    const r = await runJson<Omit<RebuildReport, "fills" | "publish_per_s">>(
      scriptPath("../../bin/mts-risk.js"),
      ["rebuild", "--nats-url", server.url, "--state-dir", stateDir],
      {
        env,
        nodeArgs: cpuProfileDir ? ["--cpu-prof", "--cpu-prof-dir", cpuProfileDir] : [],
        onStderr: (l) => {
          try {
            const rec = JSON.parse(l) as { msg?: string; applied?: number; behind?: number; stream?: string };
            if (rec.msg === "rebuilding" && Date.now() - lastShown > 5000) {
              lastShown = Date.now();
              progress("rebuild: replaying", {
                stream: rec.stream,
                applied: rec.applied,
                behind: rec.behind,
              });
            }
          } catch {
            process.stderr.write(`${l}\n`);
          }
        },
      },
    );
    return {
      fills,
      events: r.events,
      invalid: r.invalid,
      seconds: +r.seconds.toFixed(2),
      events_per_s: r.events_per_s,
      state_digest: r.state_digest,
      publish_per_s: pub.per_s,
    };
  } finally {
    await nc.close().catch(() => undefined);
    await server.stop();
  }
}
