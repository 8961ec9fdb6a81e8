/**
 * Several engines, one service: a check reaching an engine that does not own its fund is forwarded
 * to the owner's own subject (body and headers as received, so protobuf stays protobuf) and the
 * owner's reply relayed; while the fund's ownership is moving (no live owner, a lease being taken
 * or handed over) the check is held, up to `holdMs`, rather than answered STATE_NOT_READY. A
 * forwarded check is never forwarded again: an engine that no longer owns the fund answers with
 * the `Mts-Not-Owner` header and the forwarding engine looks again.
 */
import { setTimeout as delay } from "node:timers/promises";
import { headers as natsHeaders, type Msg, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import type { Route } from "../ownership/manager.js";

export const NOT_OWNER_HEADER = "Mts-Not-Owner";
export const FORWARDED_HEADER = "Mts-Forwarded-By";
/** The subject the check was sent on (the owner checks a partitioned subject's fund against the order). */
export const FORWARDED_SUBJECT_HEADER = "Mts-Forwarded-Subject";
/** One forward attempt waits at most this long for the owner's answer. */
const FORWARD_TIMEOUT_MS = 2500;
/** Re-examined at least this often while held (besides every ownership change). */
const RECHECK_MS = 50;
const never = (): boolean => false;

export interface Router {
  route(fund: string | undefined): Route;
  changed(): Promise<void>;
}

export interface Forwarder {
  dispatch(
    msg: Msg,
    fund: string | undefined,
    forwarded: boolean,
    h: { local: () => Promise<void>; notReady: (why: string) => void },
  ): Promise<void>;
}

export function createForwarder(o: {
  nc: NatsConnection;
  router: Router;
  instance: string;
  holdMs: number;
}): Forwarder {
  const notOwner = natsHeaders();
  notOwner.set(NOT_OWNER_HEADER, o.instance);

  function forwardHeaders(msg: Msg): MsgHdrs {
    const h = natsHeaders();
    const src = msg.headers;
    if (src) for (const k of src.keys()) for (const v of src.values(k)) h.append(k, v);
    h.set(FORWARDED_HEADER, o.instance);
    h.set(FORWARDED_SUBJECT_HEADER, msg.subject);
    return h;
  }

  /**
   * `answered` (the owner's reply relayed), `gone` (nobody listens on its subject), or `again`.
   * An `abandoned` forward (the check was routed elsewhere meanwhile) relays nothing.
   */
  async function forward(
    msg: Msg,
    subject: string,
    timeout: number,
    abandoned: () => boolean,
  ): Promise<"answered" | "gone" | "again"> {
    try {
      const r = await o.nc.request(subject, msg.data, { headers: forwardHeaders(msg), timeout });
      if (r.headers?.get(NOT_OWNER_HEADER) || abandoned()) return "again";
      if (msg.reply) msg.respond(r.data, r.headers ? { headers: r.headers } : undefined);
      return "answered";
    } catch (err) {
      // no responder or no answer: the owner may have gone; look again
      return (err as { isNoResponders?: () => boolean } | null)?.isNoResponders?.() === true
        ? "gone"
        : "again";
    }
  }

  /**
   * Forwards to an owner not judged live here, abandoning the attempt as soon as the fund's route
   * changes (another engine took it): a paused owner would otherwise keep the check for the whole
   * attempt while a live one could answer.
   */
  async function forwardUnsure(
    msg: Msg,
    fund: string | undefined,
    r: Extract<Route, { kind: "remote" }>,
    timeout: number,
  ): Promise<"answered" | "gone" | "again"> {
    let done = false;
    const moved = (async () => {
      while (!done) {
        await Promise.race([o.router.changed(), delay(RECHECK_MS)]);
        const now = o.router.route(fund);
        if (!(now.kind === "remote" && now.owner === r.owner)) return "again" as const;
      }
      return "again" as const;
    })();
    try {
      return await Promise.race([forward(msg, r.subject, timeout, () => done), moved]);
    } finally {
      done = true;
    }
  }

  return {
    async dispatch(msg, fund, forwarded, h) {
      const deadline = performance.now() + o.holdMs;
      for (;;) {
        const r = o.router.route(fund);
        if (r.kind === "local") return h.local();
        const left = deadline - performance.now();
        if (r.kind === "remote" && !forwarded && left > 0) {
          const timeout = Math.min(FORWARD_TIMEOUT_MS, left);
          const got = r.unsure
            ? await forwardUnsure(msg, fund, r, timeout)
            : await forward(msg, r.subject, timeout, never);
          if (got === "answered") return;
          // an owner this engine only hoped was alive is gone, and no engine can take its funds
          if (got === "gone" && r.unsure === "unavailable") return h.notReady("state not ready");
          await Promise.race([o.router.changed(), delay(RECHECK_MS)]);
          continue;
        }
        if (forwarded && r.kind !== "wait") {
          if (msg.reply) msg.respond(new Uint8Array(0), { headers: notOwner });
          return;
        }
        if (r.kind === "unavailable" || left <= 0) {
          if (forwarded) {
            if (msg.reply) msg.respond(new Uint8Array(0), { headers: notOwner });
          } else h.notReady(r.kind === "unavailable" ? "state not ready" : "no owner for this fund");
          return;
        }
        await Promise.race([o.router.changed(), delay(Math.min(RECHECK_MS, left))]);
      }
    },
  };
}
