import { afterAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Dec, ZERO, canon, dec } from "../../src/decimal/index.js";
import { BrokerQty } from "../../src/state/broker-qty.js";
import { BookRecord } from "../../src/state/book-record.js";
import {
  NO_PENDING,
  createState,
  getFund,
  openSnapshot,
  project,
  stateDigest,
} from "../../src/state/index.js";
import { Subjects } from "../../src/contract/subjects.js";

const dir = mkdtempSync(join(tmpdir(), "riskengine-unit-book-record-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const broker = fc.constantFrom("paper", "ibkr", "gs", "");
const op = fc.oneof(
  fc.record({ set: broker, q: fc.integer({ min: -5, max: 5 }) }),
  fc.record({ del: broker }),
);

describe("a position's quantity per broker (one broker inline, a Map from the second)", () => {
  it("given any sequence of sets and deletes, then it reads and iterates exactly as a Map does", () => {
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        const m = new Map<string, Dec>();
        const b = new BrokerQty();
        for (const o of ops) {
          if ("set" in o) {
            const q = new Dec(BigInt(o.q), 0);
            m.set(o.set, q);
            expect(b.set(o.set, q)).toBe(b);
          } else expect(b.delete(o.del)).toBe(m.delete(o.del));
          expect(b.size).toBe(m.size);
          expect([...b.entries()]).toEqual([...m.entries()]);
          expect([...b]).toEqual([...m]);
          expect([...b.keys()]).toEqual([...m.keys()]);
          expect([...b.values()]).toEqual([...m.values()]);
          for (const k of ["paper", "ibkr", "gs", "", "none"]) {
            expect(b.get(k)).toBe(m.get(k));
            expect(b.has(k)).toBe(m.has(k));
          }
        }
      }),
    );
  });

  it("given entries, when constructed from them, then it holds them in their order", () => {
    const b = new BrokerQty([
      ["ibkr", dec("2")],
      ["paper", dec("-1")],
    ]);
    expect([...b].map(([k, q]) => `${k}:${canon(q)}`)).toEqual(["ibkr:2", "paper:-1"]);
  });
});

describe("a book's reservations (a record allocated with the first one)", () => {
  it("given a new book, then every reservation reads zero and the shared empty maps", () => {
    const b = new BookRecord(getFund(createState(), "f"), "AAPL");
    expect(b.pendBuyQty).toBe(ZERO);
    expect(b.pendSellValue).toBe(ZERO);
    expect(b.pendBuyByBroker).toBe(NO_PENDING);
    expect(b.pendSellByBroker).toBe(NO_PENDING);
    expect(b.pos).toBe(b);
    expect(b.pos.brokers.size).toBe(0);
  });

  it("given reservations written and released, then each field reads what was last written", () => {
    const b = new BookRecord(getFund(createState(), "f"), "AAPL");
    b.pendBuyQty = dec("10");
    b.pendBuyValue = dec("1000.5");
    b.pendBuyByBroker = new Map([["paper", dec("10")]]);
    expect(canon(b.pendBuyQty)).toBe("10");
    expect(canon(b.pendBuyValue)).toBe("1000.5");
    expect(canon(b.pendBuyByBroker.get("paper")!)).toBe("10");
    expect(b.pendSellQty).toBe(ZERO);
    // partly released: the rest stays
    b.pendBuyQty = ZERO;
    expect(canon(b.pendBuyValue)).toBe("1000.5");
    b.pendBuyValue = ZERO;
    expect(canon(b.pendBuyByBroker.get("paper")!)).toBe("10");
    b.pendBuyByBroker = new Map();
    expect(b.pendBuyByBroker.size).toBe(0);
    expect(b.pendBuyValue.eq(ZERO)).toBe(true);
    // a zero written to a book with no reservation reads zero
    b.pendSellValue = new Dec(0n, 3);
    expect(b.pendSellValue.eq(ZERO)).toBe(true);
    b.pendSellQty = dec("3");
    expect(canon(b.pendSellQty)).toBe("3");
    expect(b.pendBuyQty.eq(ZERO)).toBe(true);
  });

  it("given an FX symbol and reservations, then each reads what was last written, and clearing both reads them empty again", () => {
    const b = new BookRecord(getFund(createState(), "f"), "SAP");
    expect(b.fx).toBeUndefined();
    expect(b.key).toBe("f\u0001SAP");
    b.fx = "EUR-USD";
    b.pendSellQty = dec("4");
    expect(b.fx).toBe("EUR-USD");
    b.pendSellQty = ZERO;
    expect(b.fx).toBe("EUR-USD"); // the FX symbol outlives the reservation
    b.pendBuyValue = dec("7");
    b.fx = undefined;
    expect(b.fx).toBeUndefined();
    expect(canon(b.pendBuyValue)).toBe("7"); // and the reservation the FX symbol
    b.pendBuyValue = ZERO;
    expect(b.pendBuyValue).toBe(ZERO);
    expect(b.pendBuyByBroker).toBe(NO_PENDING);
    b.fx = "GBP-USD";
    expect(b.fx).toBe("GBP-USD");
  });
});

describe("a book's snapshot row", () => {
  it("given a position at two brokers, when flushed, then the row is the format it always was, and it loads back to the same digest", () => {
    const state = createState();
    const te = new TextEncoder();
    let seq = 0;
    const fill = (id: string, broker: string, side: string, quantity: string, fees: string) => {
      const body = {
        fill_id: id,
        order_id: `o-${id}`,
        fund_id: "f1",
        broker,
        symbol: "AAPL",
        side,
        quantity,
        price: "101.5",
        fees,
        timestamp: "2026-01-05T14:30:00Z",
      };
      const r = project(state, "FILLS", Subjects.fill("f1", "AAPL"), te.encode(JSON.stringify(body)), ++seq);
      expect(r.ok).toBe(true);
    };
    fill("a", "paper", "BUY", "10", "1.25");
    fill("b", "ibkr", "BUY", "5", "0");
    fill("c", "paper", "SELL", "2", "0.5");
    const path = join(dir, "snap.db");
    const snap = openSnapshot(path);
    snap.flush(state);
    const digest = stateDigest(state); // idempotency records are read from the file once flushed
    snap.close();
    const db = new Database(path, { readonly: true });
    const row = db.prepare("SELECT v FROM entities WHERE kind = 'book'").get() as { v: string };
    db.close();
    expect(row.v).toBe(
      '{"brokers":{"ibkr":"5","paper":"8"},"cost":"1319.5","fees":"1.75","qty":"13","realized":"0"}',
    );
    expect(state.dirtyBooks.size).toBe(0); // the flush wrote the changed books and forgot them
    const again = openSnapshot(path);
    try {
      const loaded = again.load(); // reads idempotency records from the file: open until the end
      expect(stateDigest(loaded)).toBe(digest);
      const b = getFund(loaded, "f1").books.get("AAPL")!;
      expect([...b.pos.brokers].map(([k, q]) => `${k}:${canon(q)}`)).toEqual(["ibkr:5", "paper:8"]);
      expect(canon(b.pos.fees)).toBe("1.75");
    } finally {
      again.close();
    }
  });

  it("given a book changed after a flush, when flushed again, then its row is rewritten (and only changed books are)", () => {
    const state = createState();
    const te = new TextEncoder();
    let seq = 0;
    const fill = (id: string, symbol: string, quantity: string) => {
      const body = {
        fill_id: id,
        order_id: `o-${id}`,
        fund_id: "f1",
        broker: "paper",
        symbol,
        side: "BUY",
        quantity,
        price: "10",
        fees: "0",
        timestamp: "2026-01-05T14:30:00Z",
      };
      expect(
        project(state, "FILLS", Subjects.fill("f1", symbol), te.encode(JSON.stringify(body)), ++seq).ok,
      ).toBe(true);
    };
    fill("a", "AAPL", "1");
    fill("b", "MSFT", "2");
    const path = join(dir, "again.db");
    const snap = openSnapshot(path);
    try {
      expect(snap.flush(state).rows).toBeGreaterThan(0);
      const db = new Database(path, { readonly: true });
      const rows = () =>
        (
          db.prepare("SELECT k, v FROM entities WHERE kind = 'book' ORDER BY k").all() as {
            k: string;
            v: string;
          }[]
        ).map((r) => `${r.k.replace("\u0001", "|")} ${(JSON.parse(r.v) as { qty: string }).qty}`);
      expect(rows()).toEqual(["f1|AAPL 1", "f1|MSFT 2"]);
      fill("c", "MSFT", "3");
      expect([...state.dirtyBooks].map((b) => b.symbol)).toEqual(["MSFT"]);
      snap.flush(state);
      expect(rows()).toEqual(["f1|AAPL 1", "f1|MSFT 5"]);
      db.close();
    } finally {
      snap.close();
    }
  });
});
