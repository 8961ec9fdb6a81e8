/** One root pino logger; components take `log.child({ module })`. Credentials are redacted. */
import { pino, type Logger } from "pino";

export type { Logger };

export function createLogger(opts: { level?: string; name?: string; destination?: number } = {}): Logger {
  return pino(
    {
      name: opts.name ?? "mts-risk",
      level: opts.level ?? process.env["LOG_LEVEL"] ?? "info",
      redact: {
        paths: [
          "pass",
          "password",
          "token",
          "*.pass",
          "*.password",
          "*.token",
          "nats.pass",
          "config.nats.pass",
        ],
        censor: "***",
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    pino.destination({ dest: opts.destination ?? 2, sync: false }),
  );
}

/** A logger that writes nothing (library use, tests). */
export const silentLogger: Logger = pino({ level: "silent" });
