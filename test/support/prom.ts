/** A parser of the Prometheus text exposition format (0.0.4), enough to read an engine's /metrics. */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  samples: Sample[];
  types: Map<string, string>;
  help: Map<string, string>;
}

function parseValue(s: string): number {
  if (s === "+Inf") return Number.POSITIVE_INFINITY;
  if (s === "-Inf") return Number.NEGATIVE_INFINITY;
  if (/^nan$/i.test(s)) return Number.NaN; // Prometheus reads it case-insensitively (prom-client writes "Nan")
  const n = Number(s);
  if (s.trim() === "" || Number.isNaN(n)) throw new Error(`bad sample value ${JSON.stringify(s)}`);
  return n;
}

/** Parses `name{a="x",b="y\"z"} 1.5 [timestamp]` lines; throws on anything malformed. */
export function parseExposition(text: string): Exposition {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  for (const [i, line] of text.split("\n").entries()) {
    if (line.trim() === "") continue;
    if (line.startsWith("#")) {
      const m = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) (.*)$/.exec(line);
      if (m?.[1] === "TYPE") types.set(m[2]!, m[3]!);
      else if (m?.[1] === "HELP") help.set(m[2]!, m[3]!);
      continue;
    }
    const nm = /^([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(line);
    if (!nm) throw new Error(`line ${i + 1}: no metric name: ${line}`);
    const name = nm[1]!;
    let pos = name.length;
    const labels: Record<string, string> = {};
    if (line[pos] === "{") {
      pos++;
      while (line[pos] !== "}") {
        const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)="/.exec(line.slice(pos));
        if (!lm) throw new Error(`line ${i + 1}: bad label at ${pos}: ${line}`);
        pos += lm[0].length;
        let value = "";
        for (;;) {
          const c = line[pos++];
          if (c === undefined) throw new Error(`line ${i + 1}: unterminated label value`);
          if (c === '"') break;
          if (c === "\\") {
            const e = line[pos++];
            value += e === "n" ? "\n" : (e ?? "");
          } else value += c;
        }
        labels[lm[1]!] = value;
        if (line[pos] === ",") pos++;
      }
      pos++;
    }
    const rest = line.slice(pos).trim().split(/\s+/);
    try {
      samples.push({ name, labels, value: parseValue(rest[0] ?? "") });
    } catch (err) {
      throw new Error(`line ${i + 1}: ${line}: ${String(err)}`);
    }
  }
  return { samples, types, help };
}

/** The samples of one metric whose labels include `match`. */
export function find(e: Exposition, name: string, match: Record<string, string> = {}): Sample[] {
  return e.samples.filter(
    (s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v),
  );
}

/** The single value of one series (throws when there is not exactly one). */
export function value(e: Exposition, name: string, match: Record<string, string> = {}): number {
  const s = find(e, name, match);
  if (s.length !== 1) throw new Error(`${name}${JSON.stringify(match)}: ${s.length} series`);
  return s[0]!.value;
}
