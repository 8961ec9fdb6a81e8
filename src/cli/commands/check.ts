/**
 * `mts-risk check`: send one order to mts.v1.risk.check and print the RiskDecision.
 * Exit 0 approved, 1 rejected, 2 error.
 */
import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import { headers as natsHeaders } from "@nats-io/transport-node";
import {
  PROTOBUF_CONTENT_TYPE,
  decodeDecisionProto,
  encodeOrderProtoExact,
  isProtobufContentType,
} from "../../contract/codec.js";
import { notADecision } from "../../contract/decision-reply.js";
import { Subjects } from "../../contract/index.js";
import { type CliContext, CliError, firstLine, isRecord, parseReply, request, withNats } from "../common.js";
import { printJson, readDataFile } from "../io.js";

interface CheckOptions {
  file?: string;
  fund?: string;
  symbol?: string;
  side?: string;
  qty?: string;
  type?: string;
  limitPrice?: string;
  stopPrice?: string;
  broker?: string;
  strategy?: string;
  assetClass?: string;
  orderId?: string;
  key?: string;
  reduceOnly?: boolean;
  protobuf?: boolean;
}

/** The order: the file's fields (if any), overridden by the flags given, then the defaults. */
export function buildOrder(o: CheckOptions, now: Date = new Date()): Record<string, unknown> {
  const base: Record<string, unknown> = {};
  if (o.file !== undefined) {
    const doc = readDataFile(o.file);
    if (!isRecord(doc)) throw new CliError(`${o.file}: expected an order object`);
    Object.assign(base, doc);
  }
  const flags: Record<string, unknown> = {
    order_id: o.orderId,
    idempotency_key: o.key,
    fund_id: o.fund,
    strategy_id: o.strategy,
    broker: o.broker,
    symbol: o.symbol,
    asset_class: o.assetClass,
    side: o.side?.toUpperCase(),
    order_type: o.type?.toUpperCase(),
    quantity: o.qty,
    limit_price: o.limitPrice,
    stop_price: o.stopPrice,
    reduce_only: o.reduceOnly === true ? true : undefined,
  };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) base[k] = v;
  if (o.file === undefined) {
    const missing = [
      ["fund_id", "--fund"],
      ["symbol", "--symbol"],
      ["side", "--side"],
      ["quantity", "--qty"],
    ].filter(([field]) => base[field ?? ""] === undefined);
    if (missing.length > 0) {
      throw new CliError(
        `missing ${missing.map(([, flag]) => flag).join(", ")} (or give --file <order.json>)`,
      );
    }
  }
  base.order_type ??= "LIMIT";
  base.broker ??= "paper";
  base.order_id ??= `cli-${now.getTime().toString(36)}-${randomBytes(3).toString("hex")}`;
  base.idempotency_key ??= base.order_id;
  base.created_at ??= now.toISOString();
  return base;
}

export function registerCheck(program: Command, ctx: CliContext): void {
  program
    .command("check")
    .description("send one order to the engine and print its decision (exit 0 approved, 1 rejected)")
    .option("--file <order>", "the order as JSON (or YAML); flags override its fields")
    .option("--fund <id>", "fund_id")
    .option("--symbol <symbol>", "symbol")
    .option("--side <side>", "BUY or SELL")
    .option("--qty <quantity>", "quantity (decimal)")
    .option("--type <type>", "MARKET, LIMIT, STOP or STOP_LIMIT (default LIMIT)")
    .option("--limit-price <price>", "limit price (LIMIT, STOP_LIMIT)")
    .option("--stop-price <price>", "stop price (STOP, STOP_LIMIT)")
    .option("--broker <broker>", "broker (default paper)")
    .option("--strategy <id>", "strategy_id")
    .option("--asset-class <class>", "equity, crypto, option, future or fx")
    .option("--order-id <id>", "order_id (default: generated)")
    .option("--key <key>", "idempotency key (default: the order id)")
    .option("--reduce-only", "mark the order reduce-only")
    .option("--protobuf", "send protobuf (application/x-protobuf) instead of JSON")
    .action(async (opts: CheckOptions, cmd: Command) => {
      const { config, globals } = ctx.load(cmd);
      const order = buildOrder(opts);
      const decision = await withNats(config, globals, "check", async (nc) => {
        if (opts.protobuf !== true) {
          const msg = await request(nc, Subjects.check, JSON.stringify(order), globals.timeout);
          return parseReply(Subjects.check, msg);
        }
        let body: Uint8Array;
        try {
          body = encodeOrderProtoExact(order);
        } catch (err) {
          throw new CliError(`cannot encode the order as protobuf: ${firstLine(err)}`, 2, { cause: err });
        }
        const h = natsHeaders();
        h.set("Content-Type", PROTOBUF_CONTENT_TYPE);
        const msg = await request(nc, Subjects.check, body, globals.timeout, h);
        if (!isProtobufContentType(msg.headers?.get("Content-Type"))) return parseReply(Subjects.check, msg);
        try {
          return decodeDecisionProto(msg.data);
        } catch (err) {
          throw new CliError(`undecodable protobuf reply: ${firstLine(err)}`, 2, { cause: err });
        }
      });
      const problem = notADecision(decision, String(order.order_id));
      if (problem !== undefined || !isRecord(decision)) {
        throw new CliError(
          `unexpected reply on ${Subjects.check} (${problem}): ${JSON.stringify(decision).slice(0, 200)}`,
        );
      }
      printJson(decision);
      ctx.exitCode = decision.approved ? 0 : 1;
    });
}
