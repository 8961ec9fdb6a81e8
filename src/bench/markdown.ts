/** The results as Markdown: the table, every bus run, every search step, one vs two engines. */
import { rejectedPct } from "./bus.js";
import { type Results, cpuPerRequestUs, fmt } from "./report.js";

export function markdown(r: Results): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(`# Benchmark ${r.date}${r.quick ? " (--quick)" : ""}`, "");
  out.push(
    `Machine: ${m.cpu_model}, ${m.cores} cores, ${m.memory_gb} GB, ${m.os}; Node ${m.node}; nats-server ${m.nats_server}; ` +
      `commit ${m.commit}; load average at start ${m.load_average_at_start.join(" / ")}. Total ${Math.round(r.seconds_total)} s.`,
    "",
  );
  out.push(
    "| metric | engine | baseline | ratio | noise | target | result |",
    "|---|---|---|---|---|---|---|",
  );
  for (const w of r.table ?? []) {
    out.push(
      `| ${w.metric} | ${w.engine} | ${w.baseline} | ${w.ratio} | ${w.noise} | ${w.target} | ${w.result} |`,
    );
  }
  if (r.bus) {
    const idle = (r.bus.quotes.idle_cpu_pct ?? {}) as Record<string, number>;
    out.push(
      "",
      `Book: ${JSON.stringify(r.bus.book)}. Quotes streamed during the bus scenarios: ` +
        `${JSON.stringify({ ...r.bus.quotes, idle_cpu_pct: undefined })}. With quotes streaming and no checks, ` +
        `CPU in % of one core: engine ${idle.engine ?? "?"}, quote publisher ${idle.quotes ?? "?"}, ` +
        `nats-server ${idle.nats_server ?? "?"}.`,
      "",
      "Every bus run (latency from the intended send time; failures = timeouts + error replies; CPU of " +
        "the target's process per request, and of the generator, the quote publisher and nats-server in % of a core):",
      "",
      "| target | rate/s | s | sent | p50 | p90 | p99 | p99.9 | max | failed | rejected | lag p99 | target CPU/req | generator % | quotes % | nats-server % |",
      "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    );
    const share = (v: number | undefined, s: number) =>
      v === undefined ? "?" : ((v / (s * 1000)) * 100).toFixed(1);
    for (const s of [...r.bus.scenarios, ...r.bus.confirm]) {
      const cpu = cpuPerRequestUs(s);
      const l = s.latency_ms;
      out.push(
        `| ${s.target} | ${fmt(s.rate)} | ${s.seconds}${s.aborted_at_s !== undefined ? " (cut short)" : ""} | ${fmt(s.sent)} | ${l.p50} | ${l.p90} | ${l.p99} | ${l.p999} | ${l.max} | ` +
          `${s.failures} | ${rejectedPct(s)} % | ${s.schedule_lag_ms.p99} | ` +
          `${cpu !== undefined ? `${cpu.toFixed(0)} µs` : "?"} | ${share(s.cpu_ms.generator, s.seconds)} | ${share(s.cpu_ms.quotes, s.seconds)} | ${share(s.cpu_ms.nats_server, s.seconds)} |`,
      );
    }
    out.push("", "Sustainable-rate search (every step; ✗ failed, the limit in brackets):", "");
    for (const s of r.bus.search) {
      const steps = s.steps
        .map(
          (t) =>
            `${fmt(t.rate)}${t.phase === "ramp" ? "" : ` (${t.phase})`}: p99 ${t.p99_ms} [${t.limit_ms}]${t.pass ? "" : " ✗"}`,
        )
        .join(", ");
      // the lowest rate of its own search (it steps down below the first step when that one fails)
      const own = s.steps.filter((t) => t.phase !== "reference").map((t) => t.rate);
      const below = `< ${fmt(own.length > 0 ? Math.min(...own) : 0)}/s`;
      const found = s.sustainable_rate > 0 ? `${fmt(s.sustainable_rate)}/s` : below;
      out.push(
        `- ${s.target}: **${found}** (stopped by ${s.stopped_by}); 5 ms floor ${s.floor_rate > 0 ? `${fmt(s.floor_rate)}/s` : below}; ${steps}`,
      );
    }
  }
  if (r.several) {
    out.push(
      "",
      `One engine vs two (issue 10), ${fmt(r.several.rate)}/s with quotes; partitions owned with two: ${JSON.stringify(r.several.owned)}:`,
      "",
    );
    out.push(
      "| engines | sent | p50 | p99 | max | failed | engines' CPU/check |",
      "|---|---|---|---|---|---|---|",
    );
    for (const s of r.several.runs) {
      out.push(
        `| ${s.engines} | ${fmt(s.sent)} | ${s.latency_ms.p50} | ${s.latency_ms.p99} | ${s.latency_ms.max} | ${s.failures} | ${s.cpu_per_check_us} µs |`,
      );
    }
  }
  if (Object.keys(r.errors).length > 0) {
    out.push("", "**Failed phases** (the others ran):", "");
    for (const [p, why] of Object.entries(r.errors)) out.push(`- ${p}: ${why}`);
  }
  return `${out.join("\n")}\n`;
}
