/**
 * The operator dashboard in headless Chromium (Debian's chromium, driven by playwright-core) on a
 * real engine with a small book: it renders each fund's limits, a limit's bar moves after a fill,
 * a halt appears within seconds, the fund filter and the worst-first order work. A screenshot is
 * written to $DASHBOARD_SCREENSHOT (or the temporary directory).
 */
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, type Page, chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NatsServerHandle } from "../../src/bus/nats-server.js";
import { DEFAULTS } from "../../src/config/index.js";
import { Subjects } from "../../src/contract/subjects.js";
import type { Engine } from "../../src/engine/index.js";
import { type HttpHandle, startHttp } from "../../src/http/server.js";
import { silentLogger } from "../../src/obs/log.js";
import { systemClock } from "../../src/time/clock.js";
import { connectTest, startTestNats, waitFor } from "../support/nats.js";
import { Bus, applied, envelope, order, startTestEngine } from "../support/engine.js";

const CHROMIUM = process.env.CHROMIUM_BIN ?? "/usr/bin/chromium";
const SYMBOLS: [string, string, string][] = [
  ["AAPL", "tech", "190"],
  ["MSFT", "tech", "410"],
  ["JPM", "financials", "200"],
  ["XOM", "energy", "110"],
  ["UNH", "health", "520"],
];
const FUNDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"];

describe("operator dashboard in a browser", () => {
  let server: NatsServerHandle;
  let engine: Engine;
  let nc: NatsConnection;
  let bus: Bus;
  let web: HttpHandle;
  let browser: Browser;
  let page: Page;
  const iso = () => new Date(systemClock.now()).toISOString();
  const ratioOf = async (fund: string, measure: string) =>
    Number(
      await page
        .locator(`tr[data-fund="${fund}"] .bar[data-measure="${measure}"]`)
        .getAttribute("data-ratio"),
    );

  beforeAll(async () => {
    server = await startTestNats();
    engine = await startTestEngine(server.url);
    nc = await connectTest(server.url);
    bus = new Bus(nc);
    for (const [symbol, sector, px] of SYMBOLS) {
      await bus.instrument({ symbol, asset_class: "equity", sector });
      const p = Number(px);
      await bus.quote(symbol, (p * 0.999).toFixed(2), (p * 1.001).toFixed(2), iso());
    }
    let last = 0;
    for (const [i, fund] of FUNDS.entries()) {
      last = await bus.envelope(
        envelope(fund, {
          capital: String(1_000_000 * (i + 1)),
          max_position_pct: "0.10",
          max_gross_exposure_pct: "1.50",
          max_net_exposure_pct: "1.00",
          max_sector_pct: "0.30",
          price_collar_pct: "0.05",
          synthetic_stop_pct: "0.10",
          daily_loss_halt_pct: "0.03",
          weekly_loss_halt_pct: "0.06",
          monthly_loss_halt_pct: "0.10",
        }),
      );
      // a book: a few positions, larger for the first funds
      for (const [j, [symbol, , px]] of SYMBOLS.entries()) {
        if ((i + j) % 3 === 2) continue;
        const notional = (1_000_000 * (i + 1) * (0.02 + 0.06 * (((i * 7 + j * 3) % 10) / 10))) | 0;
        const qty = Math.max(1, Math.floor(notional / Number(px)));
        const paid = (Number(px) * (1 + (((i + j) % 5) - 2) / 100)).toFixed(2); // some P&L
        await bus.fill({ fund_id: fund, symbol, quantity: String(qty), price: paid, timestamp: iso() });
      }
    }
    await waitFor(() => applied(engine, "RISK_ENVELOPES", last));
    // some checks: latency figures, and rejections by code
    for (const fund of FUNDS.slice(0, 4)) {
      await bus.check(order({ fund_id: fund, symbol: "JPM", quantity: "10", limit_price: "200" }));
      await bus.check(order({ fund_id: fund, symbol: "JPM", quantity: "100000", limit_price: "200" }));
      await bus.check(order({ fund_id: fund, symbol: "JPM", quantity: "1", limit_price: "100" }));
    }
    web = (await startHttp({
      engine,
      config: { ...DEFAULTS.http, port: 0 },
      clock: systemClock,
      log: silentLogger,
      startedAt: systemClock.now(),
    }))!;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--disable-background-networking", "--disable-component-update"],
    });
    page = await browser.newPage({ viewport: { width: 1500, height: 900 } });
    await page.goto(`${web.url}/`);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await web?.close();
    await nc?.close();
    await engine?.close();
    await server?.stop();
  });

  it("renders every fund with its limits, engine readiness and latency", async () => {
    await page.locator('[data-ready="true"]').waitFor({ timeout: 10_000 });
    await expect.poll(() => page.locator("tr[data-fund]").count(), { timeout: 10_000 }).toBe(FUNDS.length);
    const bars = page.locator('tr[data-fund="alpha"] .bar');
    const measures = await Promise.all((await bars.all()).map((e) => e.getAttribute("data-measure")));
    expect(measures).toEqual(expect.arrayContaining(["position", "gross", "net", "sector"]));
    expect(await page.locator('tr[data-fund="alpha"] .nav').textContent()).toMatch(/\d/);
  });

  it("moves a limit's bar after a fill, and turns it amber past warn_at_pct (0.8 by default)", async () => {
    const bar = page.locator('tr[data-fund="alpha"] .bar[data-measure="gross"]');
    const before = await ratioOf("alpha", "gross");
    expect(before).toBeLessThan(0.3);
    expect(await bar.getAttribute("class")).toMatch(/\bok\b/);
    // alpha (capital 1 000 000, gross limit 1 500 000): a fill of 1 210 000 takes gross past 80 %
    const seq = await bus.fill({
      fund_id: "alpha",
      symbol: "XOM",
      quantity: "11000",
      price: "110",
      timestamp: iso(),
    });
    await waitFor(() => applied(engine, "FILLS", seq));
    await expect.poll(() => ratioOf("alpha", "gross"), { timeout: 5_000 }).toBeGreaterThan(before + 0.75);
    expect(await bar.getAttribute("class")).toMatch(/\bwarn\b/);
    // position in XOM is far over its 10 % limit: red
    const pos = page.locator('tr[data-fund="alpha"] .bar[data-measure="position"]');
    expect(await pos.getAttribute("class")).toMatch(/\bover\b/);
  });

  it("shows a halt within seconds", async () => {
    const t0 = performance.now();
    await bus.control(Subjects.halt("beta"), {
      fund_id: "beta",
      severity: "MANUAL",
      reason: "risk review",
      at: iso(),
      by: "ops",
    });
    await page.locator('tr[data-fund="beta"] [data-severity="MANUAL"]').waitFor({ timeout: 5_000 });
    expect(performance.now() - t0).toBeLessThan(5_000);
    expect(await page.locator("#nhalted").textContent()).toBe("1");
  });

  it("filters by fund and sorts the worst usage first", async () => {
    await page.selectOption("#sort", "worst");
    // each row's worst ratio, in page order (a string script: the test is compiled without DOM types)
    const order = await page.evaluate<number[]>(
      `[...document.querySelectorAll("tr[data-fund]")].map((r) =>
         Math.max(...[...r.querySelectorAll(".bar")].map((b) => Number(b.getAttribute("data-ratio")))))`,
    );
    expect(order).toEqual([...order].sort((a, b) => b - a));
    await page.fill("#filter", "gam");
    await expect.poll(() => page.locator("tr[data-fund]").count()).toBe(1);
    expect(await page.locator("tr[data-fund]").getAttribute("data-fund")).toBe("gamma");
    await page.fill("#filter", "");
    await expect.poll(() => page.locator("tr[data-fund]").count()).toBe(FUNDS.length);
    const file = process.env.DASHBOARD_SCREENSHOT ?? join(tmpdir(), `dashboard-${process.pid}.png`);
    await page.screenshot({ path: file, fullPage: true });
    expect(existsSync(file)).toBe(true);
  });
});
