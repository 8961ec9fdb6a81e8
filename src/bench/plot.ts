/** The latency plot: engine vs both baselines, one panel per rate. */
import type { Results } from "./report.js";

const COLORS: Record<string, string> = { engine: "#d62728", journal: "#ff7f0e", noop: "#1f77b4" };
const LABELS: Record<string, string> = {
  engine: "engine",
  journal: "journaled baseline",
  noop: "no-op baseline",
};

/** Latency by percentile (HDR style: x = −log10(1 − p)), log latency, one panel per rate. */
export function svg(r: Results): string {
  const runs = [...(r.bus?.scenarios ?? []), ...(r.bus?.confirm ?? [])];
  const rates = [...new Set(runs.map((s) => s.rate))];
  const W = 380;
  const H = 280;
  const pad = { l: 66, r: 14, t: 30, b: 40 };
  const width = Math.max(2, rates.length) * W;
  const height = H + 56;
  const px = (p: number) => Math.min(4.3, -Math.log10(Math.max(1e-9, 1 - p / 100)));
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
  ];
  rates.forEach((rate, k) => {
    const ox = k * W;
    const series = runs.filter((s) => s.rate === rate);
    const values = series.flatMap((s) => s.curve_ms.map(([, v]) => Math.max(0.01, v)));
    const lo = Math.floor(Math.log10(Math.min(...values)));
    const hi = Math.ceil(Math.log10(Math.max(...values)));
    const span = Math.max(1, hi - lo);
    const X = (p: number) => ox + pad.l + (px(p) / 4.3) * (W - pad.l - pad.r);
    const Y = (v: number) => pad.t + (1 - (Math.log10(Math.max(0.01, v)) - lo) / span) * (H - pad.t - pad.b);
    parts.push(
      `<text x="${ox + W / 2}" y="18" text-anchor="middle" font-size="13">${rate.toLocaleString("en-US")} requests/s</text>`,
    );
    for (let e = lo; e <= hi; e++) {
      const y = Y(10 ** e);
      parts.push(`<line x1="${ox + pad.l}" x2="${ox + W - pad.r}" y1="${y}" y2="${y}" stroke="#ddd"/>`);
      parts.push(
        `<text x="${ox + pad.l - 4}" y="${y + 4}" text-anchor="end">${10 ** e >= 1 ? 10 ** e : (10 ** e).toFixed(-e)} ms</text>`,
      );
    }
    for (const [p, label] of [
      [0, "0"],
      [90, "90"],
      [99, "99"],
      [99.9, "99.9"],
      [99.99, "99.99"],
    ] as const) {
      const xx = X(p);
      parts.push(`<line x1="${xx}" x2="${xx}" y1="${pad.t}" y2="${H - pad.b}" stroke="#eee"/>`);
      parts.push(`<text x="${xx}" y="${H - pad.b + 14}" text-anchor="middle">${label}</text>`);
    }
    parts.push(`<text x="${ox + W / 2}" y="${H - 8}" text-anchor="middle">percentile</text>`);
    if (lo <= Math.log10(5) && Math.log10(5) <= hi) {
      const y5 = Y(5);
      parts.push(
        `<line x1="${ox + pad.l}" x2="${ox + W - pad.r}" y1="${y5}" y2="${y5}" stroke="#888" stroke-dasharray="4 3"/>`,
        `<text x="${ox + pad.l + 4}" y="${y5 - 3}" fill="#666">5 ms (p99 floor)</text>`,
      );
    }
    for (const s of series) {
      const pts = s.curve_ms.map(([p, v]) => `${X(p).toFixed(1)},${Y(v).toFixed(1)}`).join(" ");
      parts.push(
        `<polyline fill="none" stroke-width="2" stroke="${COLORS[s.target] ?? "#000"}" points="${pts}"/>`,
      );
    }
  });
  Object.entries(LABELS).forEach(([k, label], i) => {
    const lx = 70 + i * 170;
    parts.push(
      `<line x1="${lx}" x2="${lx + 24}" y1="${H + 20}" y2="${H + 20}" stroke="${COLORS[k]}" stroke-width="3"/>`,
    );
    parts.push(`<text x="${lx + 30}" y="${H + 24}">${label}</text>`);
  });
  parts.push(
    `<text x="70" y="${H + 46}" fill="#555">client-side latency from the intended send time (open loop, HDR histograms), ${r.date}${r.quick ? " --quick" : ""}</text>`,
    "</svg>",
  );
  return `${parts.join("\n")}\n`;
}
