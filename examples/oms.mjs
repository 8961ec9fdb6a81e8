#!/usr/bin/env node
/**
 * A minimal OMS using the risk client (`mts1b-riskengine/client`): it checks each order before
 * routing it, treats anything but an approval as "do not route" (ENGINE_UNAVAILABLE included:
 * fail closed), and prints the fund's alerts as they come.
 *
 *   npm run build && npm start &                           # an engine (and a local nats-server)
 *   npx mts-risk envelope set alpha --file deploy/examples/envelope-alpha.yaml
 *   node examples/oms.mjs [fund] [count]                   # NATS_URL, default nats://127.0.0.1:4222
 *
 * Against the role-secured server (deploy/nats-secure.conf) connect as the oms user with its own
 * inbox prefix: NATS_USER=oms NATS_PASS=… NATS_INBOX_PREFIX=_INBOX_oms node examples/oms.mjs
 */
import { connect } from "@nats-io/transport-node";
import { randomUUID } from "node:crypto";
import { createRiskClient } from "mts1b-riskengine/client";

const fund = process.argv[2] ?? "alpha";
const count = Number(process.argv[3] ?? 5);
const nc = await connect({
  servers: process.env.NATS_URL ?? "nats://127.0.0.1:4222",
  name: "example-oms",
  maxReconnectAttempts: -1,
  ...(process.env.NATS_USER ? { user: process.env.NATS_USER, pass: process.env.NATS_PASS ?? "" } : {}),
  ...(process.env.NATS_INBOX_PREFIX ? { inboxPrefix: process.env.NATS_INBOX_PREFIX } : {}),
});
const risk = createRiskClient(nc, { timeoutMs: 500, retries: 2 });

const alerts = risk.watchAlerts(fund);
(async () => {
  for await (const a of alerts) console.log(`ALERT ${a.kind} ${a.fund_id}: ${a.message}`);
})().catch((err) => console.error("alert feed ended:", err));
await alerts.ready;

const envelope = await risk.getEnvelope(fund);
console.log(
  envelope ? `envelope ${fund}@v${envelope.version}, capital ${envelope.capital}` : `no envelope for ${fund}`,
);

for (let i = 0; i < count; i++) {
  const id = randomUUID();
  const order = {
    order_id: `oms-${id}`,
    idempotency_key: `oms-${id}`, // kept for every retry of this order (the client does that)
    fund_id: fund,
    broker: "paper",
    symbol: "AAPL",
    asset_class: "equity",
    side: "BUY",
    order_type: "LIMIT",
    quantity: String(10 * (i + 1)),
    limit_price: "190",
    time_in_force: "DAY",
    created_at: new Date().toISOString(),
  };
  const d = await risk.check(order);
  if (d.approved)
    console.log(
      `ROUTE   ${order.order_id} ${order.side} ${order.quantity} ${order.symbol} (${d.envelope_id})`,
    );
  else console.log(`BLOCKED ${order.order_id}: ${d.rejecting_gate}/${d.rejection_code}: ${d.reason}`);
}

const status = await risk.status(fund).catch((err) => ({ error: String(err) }));
console.log(
  "engine status:",
  JSON.stringify({ ready: status.ready, halted: status.halted_funds, fund: status.fund?.nav }),
);
await alerts.stop();
await nc.close();
