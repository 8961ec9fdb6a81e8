/**
 * deploy/prometheus and deploy/grafana name only metrics the engine really exports: every
 * `riskengine_*` name in a rule or panel expression is checked against the engine's own registry
 * (histograms: their _bucket/_sum/_count series), and every rule has the fields Prometheus needs.
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";
import { createMetrics } from "../../src/obs/metrics.js";

interface Rule {
  alert?: string;
  expr?: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

async function exported(): Promise<Set<string>> {
  const m = createMetrics();
  const names = new Set<string>();
  for (const metric of await m.registry.getMetricsAsJSON()) {
    names.add(metric.name);
    if (String(metric.type) === "histogram")
      for (const s of ["_bucket", "_sum", "_count"]) names.add(metric.name + s);
  }
  return names;
}

const namesIn = (expr: string): string[] => expr.match(/\briskengine_[a-z_]+\b/g) ?? [];

function balanced(expr: string): boolean {
  let depth = 0;
  for (const c of expr) {
    if (c === "(" || c === "{" || c === "[") depth++;
    if (c === ")" || c === "}" || c === "]") depth--;
    if (depth < 0) return false;
  }
  return depth === 0;
}

describe("deploy: Prometheus rules and Grafana dashboard", () => {
  it("alert rules are well-formed and use only exported metrics", async () => {
    const known = await exported();
    const doc = parse(readFileSync("deploy/prometheus/alerts.yml", "utf8")) as {
      groups: { name: string; rules: Rule[] }[];
    };
    const rules = doc.groups.flatMap((g) => g.rules);
    const alerts = rules.map((r) => r.alert);
    for (const want of [
      "RiskEngineCheckLatencyP99OverBudget",
      "RiskEngineStreamLag",
      "RiskFundHalted",
      "RiskStopNotClosed",
      "RiskReconcilerDrift",
      "RiskFundWithoutOwner",
    ])
      expect(alerts).toContain(want);
    expect(new Set(alerts).size).toBe(alerts.length);
    for (const r of rules) {
      expect(r.alert).toMatch(/^[A-Za-z][A-Za-z0-9]*$/);
      expect(typeof r.expr).toBe("string");
      expect(balanced(r.expr!)).toBe(true);
      if (r.for !== undefined) expect(r.for).toMatch(/^\d+[smh]$/);
      expect(["page", "warn"]).toContain(r.labels?.severity);
      expect(r.annotations?.summary).toBeTruthy();
      const used = namesIn(r.expr!);
      expect(used.length).toBeGreaterThan(0);
      for (const n of used) expect(known, `${r.alert}: ${n}`).toContain(n);
    }
  });

  it("the scrape config points at the engine's default port and loads the rules", () => {
    const doc = parse(readFileSync("deploy/prometheus/prometheus.yml", "utf8")) as {
      rule_files: string[];
      scrape_configs: { job_name: string; metrics_path: string; static_configs: { targets: string[] }[] }[];
    };
    expect(doc.rule_files).toContain("alerts.yml");
    const job = doc.scrape_configs.find((j) => j.job_name === "riskengine");
    expect(job?.metrics_path).toBe("/metrics");
    expect(job?.static_configs[0]?.targets).toContain("127.0.0.1:9464");
  });

  it("every Grafana panel queries exported metrics", async () => {
    const known = await exported();
    const d = JSON.parse(readFileSync("deploy/grafana/riskengine-dashboard.json", "utf8")) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    expect(d.panels.length).toBeGreaterThan(5);
    for (const p of d.panels) {
      for (const t of p.targets) {
        expect(balanced(t.expr)).toBe(true);
        for (const n of namesIn(t.expr)) expect(known, `${p.title}: ${n}`).toContain(n);
      }
    }
  });
});
