/**
 * The operator dashboard: one self-contained page (no build step, no external assets) that polls
 * /api/dashboard every second. One row per fund; sorting (worst usage first by default), a fund
 * filter, "halted only", and at most `limit` rows rendered so 500 funds stay responsive. All text
 * is inserted escaped. Bars: amber from the envelope's warn_at_pct (default 0.8), red at 1.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mts risk engine</title>
<style>
:root { --ok:#2e7d32; --warn:#f0a000; --over:#c62828; --bg:#f7f7f9; --line:#ddd; --mute:#666; }
* { box-sizing: border-box; }
body { margin:0; font:13px/1.35 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; background:var(--bg); color:#222; }
header { position:sticky; top:0; z-index:2; background:#1f2937; color:#eee; padding:8px 14px; display:flex; flex-wrap:wrap; gap:18px; align-items:center; }
header h1 { font-size:15px; margin:0 8px 0 0; }
header .kv b { color:#fff; }
.pill { display:inline-block; padding:1px 7px; border-radius:9px; font-weight:600; font-size:12px; }
.pill.ok { background:var(--ok); color:#fff; } .pill.bad { background:var(--over); color:#fff; }
.pill.warn { background:var(--warn); color:#000; }
#controls { padding:8px 14px; display:flex; gap:14px; align-items:center; flex-wrap:wrap; border-bottom:1px solid var(--line); background:#fff; }
#controls input[type=search] { width:220px; padding:4px 6px; }
table { border-collapse:collapse; width:100%; background:#fff; }
th, td { border-bottom:1px solid var(--line); padding:5px 8px; vertical-align:top; text-align:left; }
th { background:#eef0f3; position:sticky; top:40px; z-index:1; font-weight:600; cursor:pointer; white-space:nowrap; }
td.num { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
.fund { font-weight:700; } .mute { color:var(--mute); font-size:12px; }
.bars { min-width:300px; }
.bar { display:grid; grid-template-columns:88px 1fr 52px; gap:6px; align-items:center; margin:1px 0; }
.track { position:relative; height:10px; background:#e6e6e6; border-radius:3px; overflow:hidden; }
.fill { height:100%; background:var(--ok); }
.bar.warn .fill { background:var(--warn); } .bar.over .fill { background:var(--over); }
.tick { position:absolute; top:0; bottom:0; width:1px; background:#555; opacity:.55; }
.bar .lbl { font-size:12px; color:#333; white-space:nowrap; overflow:hidden; text-overflow:ellipsis; }
.bar .pct { font-size:12px; text-align:right; font-variant-numeric:tabular-nums; }
.halt { color:var(--over); font-weight:700; }
.pnl { white-space:nowrap; }
.neg { color:var(--over); } .pos { color:var(--ok); }
.tag { display:inline-block; background:#eef; border-radius:3px; padding:0 4px; margin:1px 2px 1px 0; font-size:12px; }
.tag.trig { background:#fdd; }
tr.halted td:first-child { border-left:4px solid var(--over); }
footer { padding:8px 14px; color:var(--mute); }
</style>
</head>
<body>
<header>
  <h1>mts risk engine</h1>
  <span class="kv">instance <b id="instance">…</b></span>
  <span class="kv" id="ready"><span class="pill warn">loading</span></span>
  <span class="kv">check p50 <b id="p50">–</b> · p99 <b id="p99">–</b> <span class="mute">(last minute, <span id="count">0</span> checks)</span></span>
  <span class="kv">stream lag <b id="lag">–</b></span>
  <span class="kv">funds <b id="nfunds">0</b> · halted <b id="nhalted">0</b></span>
  <span class="kv mute" id="updated"></span>
</header>
<div id="controls">
  <label>Fund <input id="filter" type="search" placeholder="filter by fund id" autocomplete="off"></label>
  <label>Sort <select id="sort">
    <option value="worst">worst usage first</option>
    <option value="fund">fund id</option>
    <option value="nav">NAV (largest first)</option>
    <option value="day">day P&amp;L (worst first)</option>
    <option value="rejections">recent rejections</option>
  </select></label>
  <label><input id="haltedOnly" type="checkbox"> halted only</label>
  <label>Show <select id="limit"><option>50</option><option selected>100</option><option>250</option><option value="100000">all</option></select></label>
  <span class="mute" id="shown"></span>
</div>
<table>
  <thead><tr>
    <th data-sort="fund">Fund</th><th data-sort="nav">NAV</th><th data-sort="day">P&amp;L vs halt</th>
    <th data-sort="worst">Limits used</th><th>Halts</th><th>Stops</th><th>Reconciliation</th><th data-sort="rejections">Rejections (15 min)</th>
  </tr></thead>
  <tbody id="rows"><tr><td colspan="8" class="mute">loading…</td></tr></tbody>
</table>
<footer>Read-only view of one engine's state; refreshed every second from <code>/api/dashboard</code>. Bars turn amber at the envelope's <code>warn_at_pct</code> (0.8 when unset) and red at the limit.</footer>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
const money = (s) => { const n = Number(s); return Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: 0 }) : esc(s); };
const pct = (r) => (r === null || r === undefined ? "–" : !Number.isFinite(r) ? "∞" : (r * 100).toFixed(1) + "%");
const px = (s) => { const n = Number(s); return Number.isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: 4 }) : esc(s); };
const pct2 = (r) => (Number.isFinite(r) ? (r * 100).toFixed(2) + "%" : "–");
const LABEL = { position: "position", gross: "gross", net: "net", sector: "sector", asset_class: "asset class", daily_loss: "day loss", weekly_loss: "week loss", monthly_loss: "month loss" };
let data = null;
function cls(ratio, warn) { return ratio >= 1 ? "over" : ratio >= warn ? "warn" : "ok"; }
function bar(u, warn) {
  const w = Number.isFinite(u.ratio) ? Math.min(100, u.ratio * 100) : 100;
  const scope = u.scope && u.scope !== "fund" ? " " + u.scope : "";
  return '<div class="bar ' + cls(u.ratio, warn) + '" data-measure="' + esc(u.measure) + '" data-ratio="' + esc(u.ratio) + '" title="' +
    esc(LABEL[u.measure] || u.measure) + esc(scope) + ": " + esc(u.used) + " of " + esc(u.limit) + '">' +
    '<span class="lbl">' + esc(LABEL[u.measure] || u.measure) + '<span class="mute">' + esc(scope) + '</span></span>' +
    '<span class="track"><span class="tick" style="left:' + (warn * 100) + '%"></span><div class="fill" style="width:' + w + '%"></div></span>' +
    '<span class="pct">' + pct(u.ratio) + "</span></div>";
}
function pnlCell(p) {
  const rows = [["day", p.day], ["week", p.week], ["month", p.month]].map(([k, r]) => {
    if (!r) return '<div class="mute">' + k + " –</div>";
    const v = Number(r.pnl_pct);
    const c = v < 0 ? "neg" : v > 0 ? "pos" : "";
    const halt = r.halt_pct === null ? "" : ' <span class="mute">/ −' + pct(Number(r.halt_pct)) + "</span>";
    return '<div class="pnl">' + k + ' <span class="' + c + '" data-period="' + k + '">' + money(r.pnl) + " (" + pct2(v) + ")</span>" + halt + "</div>";
  });
  return rows.join("");
}
function row(f) {
  const r = f.report;
  const halted = r.halts.length > 0;
  const bars = f.usage.length ? f.usage.map((u) => bar(u, f.warn_at)).join("") : '<span class="mute">no exposure limits</span>';
  const halts = halted ? r.halts.map((h) => '<div class="halt" data-severity="' + esc(h.severity) + '">' + esc(h.severity) + '</div><div class="mute">since ' + esc(h.since) + "</div>").join("") : '<span class="mute">none</span>';
  const armed = r.stops.filter((s) => s.state === "armed");
  const trig = r.stops.filter((s) => s.state === "triggered");
  const stops = (trig.map((s) => '<span class="tag trig" title="triggered">' + esc(s.symbol) + " ⚡ " + px(s.stop_price) + "</span>").join("") +
    armed.map((s) => '<span class="tag" title="armed ' + esc(s.side) + " " + esc(s.quantity) + '">' + esc(s.symbol) + " @ " + px(s.stop_price) + "</span>").join("")) || '<span class="mute">none</span>';
  const lock = r.lock ? '<div class="halt">LOCKED</div><div class="mute">' + esc(r.lock.reason || "") + "</div>" : '<div class="mute">unlocked</div>';
  const drift = f.drift ? '<div class="mute">last pass ' + esc(f.drift.at) + ": " + (f.drift.symbols.length ? '<span class="neg">drift ' + esc(f.drift.symbols.join(", ")) + "</span>" : "clean") + "</div>" : '<div class="mute">no pass yet</div>';
  const codes = Object.entries(f.rejections.by_code).sort((a, b) => b[1] - a[1]);
  const rej = codes.length ? codes.map(([c, n]) => '<span class="tag" data-code="' + esc(c) + '">' + esc(c) + " × " + n + "</span>").join("") : '<span class="mute">none</span>';
  return '<tr data-fund="' + esc(r.fund_id) + '" class="' + (halted ? "halted" : "") + '">' +
    '<td><div class="fund">' + esc(r.fund_id) + '</div><div class="mute">' + esc(r.envelope_id) + " · " + r.positions + " pos · " + r.open_reservations + " open</div></td>" +
    '<td class="num nav">' + money(r.nav) + "</td>" +
    "<td>" + pnlCell(r.pnl) + "</td>" +
    '<td class="bars">' + bars + "</td><td>" + halts + "</td><td>" + stops + "</td><td>" + lock + drift + "</td><td>" + rej + "</td></tr>";
}
const SORTS = {
  worst: (a, b) => b.worst - a.worst || a.report.fund_id.localeCompare(b.report.fund_id),
  fund: (a, b) => a.report.fund_id.localeCompare(b.report.fund_id),
  nav: (a, b) => Number(b.report.nav) - Number(a.report.nav),
  day: (a, b) => Number(a.report.pnl.day?.pnl_pct ?? 0) - Number(b.report.pnl.day?.pnl_pct ?? 0),
  rejections: (a, b) => Object.values(b.rejections.by_code).reduce((x, y) => x + y, 0) - Object.values(a.rejections.by_code).reduce((x, y) => x + y, 0),
};
function render() {
  if (!data) return;
  const e = data.engine;
  $("instance").textContent = e.instance;
  $("ready").innerHTML = e.ready ? '<span class="pill ok" data-ready="true">READY</span>' : '<span class="pill bad" data-ready="false">NOT READY: ' + esc(e.reason || "") + "</span>";
  $("p50").textContent = e.latency_1m.p50_ms === null ? "–" : e.latency_1m.p50_ms + " ms";
  $("p99").textContent = e.latency_1m.p99_ms === null ? "–" : e.latency_1m.p99_ms + " ms";
  $("count").textContent = e.latency_1m.count;
  const lagTotal = Object.values(e.lag).reduce((x, y) => x + y, 0);
  $("lag").textContent = lagTotal === 0 ? "0" : Object.entries(e.lag).filter(([, n]) => n > 0).map(([s, n]) => s + " " + n).join(", ");
  $("nfunds").textContent = data.funds.length;
  $("nhalted").textContent = data.funds.filter((f) => f.report.halts.length > 0).length;
  $("updated").textContent = "updated " + data.at;
  const q = $("filter").value.trim().toLowerCase();
  const haltedOnly = $("haltedOnly").checked;
  let list = data.funds.filter((f) => (!q || f.report.fund_id.toLowerCase().includes(q)) && (!haltedOnly || f.report.halts.length > 0));
  list.sort(SORTS[$("sort").value] || SORTS.worst);
  const limit = Number($("limit").value);
  $("shown").textContent = "showing " + Math.min(limit, list.length) + " of " + list.length;
  list = list.slice(0, limit);
  $("rows").innerHTML = list.length ? list.map(row).join("") : '<tr><td colspan="8" class="mute">no fund matches</td></tr>';
}
async function poll() {
  try {
    const res = await fetch("api/dashboard", { cache: "no-store" });
    if (res.ok) { data = await res.json(); render(); }
    else $("updated").textContent = "engine answered " + res.status;
  } catch (err) {
    $("updated").textContent = "engine unreachable";
    $("ready").innerHTML = '<span class="pill bad" data-ready="false">UNREACHABLE</span>';
  } finally {
    setTimeout(poll, 1000);
  }
}
for (const id of ["filter", "sort", "haltedOnly", "limit"]) $(id).addEventListener("input", render);
for (const th of document.querySelectorAll("th[data-sort]")) th.addEventListener("click", () => { $("sort").value = th.dataset.sort; render(); });
poll();
</script>
</body>
</html>
`;
