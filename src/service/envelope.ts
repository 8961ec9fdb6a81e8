/** mts.v1.risk.envelope.get: the current envelope of a fund, or a given version from its history. */
import {
  headers as natsHeaders,
  type Msg,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";
import {
  JSON_CONTENT_TYPE,
  PROTOBUF_CONTENT_TYPE,
  PROTOBUF_CONTENT_TYPE_ALT,
  decodeEnvelopeRequestProto,
  encodeEnvelopeProto,
  isProtobufContentType,
  protobufContentTypeOf,
} from "../contract/codec.js";
import { EnvelopeRequestSchema, firstIssue } from "../contract/schemas.js";
import { Subjects } from "../contract/subjects.js";
import { toWire } from "../contract/wire.js";
import type { Logger } from "../obs/log.js";
import type { EngineState } from "../state/model.js";

export type EnvelopeReply =
  | { ok: true; envelope: Record<string, unknown> }
  | { ok: false; error: { code: "INVALID_REQUEST" | "NOT_FOUND"; message: string } };

/** Pure lookup, shared by the responder and the CLI. */
export function lookupEnvelope(state: EngineState, raw: unknown): EnvelopeReply {
  const p = EnvelopeRequestSchema.safeParse(raw);
  if (!p.success) {
    const i = firstIssue(p.error);
    return { ok: false, error: { code: "INVALID_REQUEST", message: `${i.path}: ${i.message}` } };
  }
  const fund = state.funds.get(p.data.fund_id);
  const entry = p.data.version === undefined ? fund?.envelope : fund?.envelopeHistory.get(p.data.version);
  if (!entry) {
    const what = p.data.version === undefined ? "no envelope" : `no version ${p.data.version}`;
    return { ok: false, error: { code: "NOT_FOUND", message: `${what} for fund ${p.data.fund_id}` } };
  }
  return { ok: true, envelope: toWire(entry.envelope) as Record<string, unknown> };
}

const td = new TextDecoder();
const te = new TextEncoder();

export function createEnvelopeService(o: { nc: NatsConnection; state: EngineState; log: Logger }): {
  stop(): Promise<void>;
} {
  const log = o.log.child({ module: "envelope-get" });
  const h = natsHeaders();
  h.set("Content-Type", PROTOBUF_CONTENT_TYPE);
  const hAlt = natsHeaders();
  hAlt.set("Content-Type", PROTOBUF_CONTENT_TYPE_ALT);
  const jsonHeaders = natsHeaders();
  jsonHeaders.set("Content-Type", JSON_CONTENT_TYPE);
  const handle = (msg: Msg) => {
    const proto = isProtobufContentType(msg.headers?.get("Content-Type"));
    let raw: unknown;
    try {
      raw = proto ? decodeEnvelopeRequestProto(msg.data) : JSON.parse(td.decode(msg.data));
    } catch {
      raw = undefined;
    }
    const r = lookupEnvelope(o.state, raw);
    if (r.ok && proto) {
      const alt = protobufContentTypeOf(msg.headers?.get("Content-Type")) === PROTOBUF_CONTENT_TYPE_ALT;
      msg.respond(encodeEnvelopeProto(r.envelope), { headers: alt ? hAlt : h });
    } else if (r.ok) msg.respond(te.encode(JSON.stringify(r.envelope)), { headers: jsonHeaders });
    // Errors are always JSON; a protobuf caller can tell by the Content-Type header.
    else msg.respond(te.encode(JSON.stringify({ error: r.error })), { headers: jsonHeaders });
  };
  const sub: Subscription = o.nc.subscribe(Subjects.envelopeGet, {
    callback: (err, msg) => {
      if (err) log.error({ err }, "subscription error");
      else handle(msg);
    },
  });
  return { stop: async () => sub.drain().then(() => undefined) };
}
