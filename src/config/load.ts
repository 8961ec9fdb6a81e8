/**
 * Loads the configuration: YAML file, then environment, then CLI flags, each
 * overriding the one before (ENGINE.md "Configuration").
 *
 * Every key coming from any source is checked against its own schema as it is
 * read, so an error names the key and the source that set it.
 */
import { readFileSync } from "node:fs";
import { yaml } from "./yaml.js";
import type { z } from "zod";
import { CONFIG_SECTIONS, ConfigSchema, DEFAULTS, type Config } from "./schema.js";

export type ConfigSourceKind = "file" | "env" | "flag";

/** One key whose final value differs from the default, and who set it. */
export interface ConfigSource {
  key: string;
  source: ConfigSourceKind;
  /** The value as text; secrets are redacted. */
  value: string;
}

export interface LoadConfigOptions {
  /** Path of a YAML file; when given, it must exist. */
  file?: string;
  env: Record<string, string | undefined>;
  /** Dotted keys, e.g. `{ "nats.url": "nats://…", "state.dir": "./x" }`; undefined values are ignored. */
  flags: Record<string, unknown>;
}

export interface LoadedConfig {
  config: Config;
  sources: ConfigSource[];
}

export class ConfigError extends Error {
  readonly code = "CONFIG_ERROR";
  override readonly name = "ConfigError";
  /** "section.key" when the error is about one key. */
  readonly key: string | undefined;
  readonly source: ConfigSourceKind | undefined;

  constructor(message: string, options: { key?: string; source?: ConfigSourceKind; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.key = options.key;
    this.source = options.source;
  }
}

/** Environment variables that name a key directly. */
const ENV_ALIASES: Readonly<Record<string, string>> = {
  NATS_URL: "nats.url",
  RISK_STATE_DIR: "state.dir",
};
const ENV_PREFIX = "RISK_";
const ENV_SEPARATOR = "__";

const SECRET_KEYS = new Set(["nats.pass"]);

interface Setting {
  value: unknown;
  source: ConfigSourceKind;
}

/** Where a value came from, as it appears in messages: `file ./c.yaml`, `env NATS_URL`, `flag nats.url`. */
interface Origin {
  source: ConfigSourceKind;
  label: string;
}

function fail(key: string, origin: Origin, problem: string, cause?: unknown): never {
  throw new ConfigError(`config: ${key} from ${origin.label}: ${problem}`, {
    key,
    source: origin.source,
    cause,
  });
}

function leafSchema(key: string): z.ZodType | undefined {
  const dot = key.indexOf(".");
  if (dot < 0) return undefined;
  const section = key.slice(0, dot);
  const name = key.slice(dot + 1);
  if (!Object.hasOwn(CONFIG_SECTIONS, section)) return undefined;
  const shape = CONFIG_SECTIONS[section as keyof typeof CONFIG_SECTIONS].shape as Record<string, z.ZodType>;
  return Object.hasOwn(shape, name) ? shape[name] : undefined;
}

function checkKnown(key: string, origin: Origin): z.ZodType {
  const schema = leafSchema(key);
  if (schema !== undefined) return schema;
  const section = key.split(".")[0] ?? key;
  fail(key, origin, Object.hasOwn(CONFIG_SECTIONS, section) ? "unknown key" : "unknown section");
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value === "number") return String(value);
  if (Array.isArray(value)) return "array";
  return typeof value;
}

function typeName(expected: string): string {
  return expected === "int" ? "integer" : expected;
}

function problemOf(error: z.ZodError, value: unknown): string {
  const issue = error.issues[0];
  if (issue === undefined) return "invalid value";
  switch (issue.code) {
    case "invalid_type":
      return `expected ${typeName(issue.expected)}, got ${describe(value)}`;
    case "invalid_value":
      return `expected one of ${issue.values.map(String).join(", ")}`;
    default:
      return issue.message.charAt(0).toLowerCase() + issue.message.slice(1);
  }
}

const NUMBER_TEXT = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Checks `value` against the key's schema. Text (environment, and string
 * flags) is coerced to the type the schema expects: "true"/"false" for
 * booleans, decimal notation for numbers.
 */
function validate(key: string, raw: unknown, origin: Origin, coerceText: boolean): unknown {
  const schema = checkKnown(key, origin);
  const first = schema.safeParse(raw);
  if (first.success) return first.data;
  const issue = first.error.issues[0];
  if (!coerceText || typeof raw !== "string" || issue?.code !== "invalid_type") {
    fail(key, origin, problemOf(first.error, raw));
  }
  let coerced: unknown;
  const text = raw.trim();
  switch (issue.expected) {
    case "boolean":
      if (/^true$/i.test(text)) coerced = true;
      else if (/^false$/i.test(text)) coerced = false;
      break;
    case "number":
    case "int":
      if (NUMBER_TEXT.test(text)) coerced = Number(text);
      break;
  }
  if (coerced === undefined) fail(key, origin, `expected ${typeName(issue.expected)}`);
  const second = schema.safeParse(coerced);
  if (!second.success) fail(key, origin, problemOf(second.error, coerced));
  return second.data;
}

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

function readFile(file: string, into: Map<string, Setting>): void {
  const origin: Origin = { source: "file", label: `file ${file}` };
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const problem = code === "ENOENT" ? "not found" : `cannot read (${code ?? String(err)})`;
    throw new ConfigError(`config: file ${file}: ${problem}`, { source: "file", cause: err });
  }
  let doc: unknown;
  try {
    // parseDocument, not parse: parse reports an unresolved tag (`!!strr`) on stderr through
    // process.emitWarning and goes on; here any error or warning refuses the file, in one line
    const d = yaml().parseDocument(text);
    const problem = d.errors[0] ?? d.warnings[0];
    if (problem) throw problem;
    doc = d.toJS();
  } catch (err) {
    const first = (err instanceof Error ? err.message : String(err)).split("\n")[0] ?? "";
    throw new ConfigError(`config: file ${file}: invalid YAML: ${first}`, { source: "file", cause: err });
  }
  if (doc === null || doc === undefined) return; // empty file
  if (!isMapping(doc)) {
    throw new ConfigError(`config: file ${file}: expected a mapping of sections, got ${describe(doc)}`, {
      source: "file",
    });
  }
  for (const [section, body] of Object.entries(doc)) {
    if (!Object.hasOwn(CONFIG_SECTIONS, section)) fail(section, origin, "unknown section");
    if (body === null) continue; // a section whose keys are all commented out
    if (!isMapping(body)) fail(section, origin, `expected a mapping, got ${describe(body)}`);
    for (const [name, value] of Object.entries(body)) {
      const key = `${section}.${name}`;
      into.set(key, { value: validate(key, value, origin, false), source: "file" });
    }
  }
}

function readEnv(env: Record<string, string | undefined>, into: Map<string, Setting>): void {
  const fromEnv = new Map<string, { value: unknown; variable: string }>();
  for (const variable of Object.keys(env).sort()) {
    const text = env[variable];
    if (text === undefined || text === "") continue; // empty means unset
    let key: string | undefined = ENV_ALIASES[variable];
    if (key === undefined) {
      if (!variable.startsWith(ENV_PREFIX)) continue;
      const rest = variable.slice(ENV_PREFIX.length);
      const sep = rest.indexOf(ENV_SEPARATOR);
      if (sep < 0) continue; // not of the form RISK_<SECTION>__<KEY>
      key = `${rest.slice(0, sep)}.${rest.slice(sep + ENV_SEPARATOR.length)}`.toLowerCase();
    }
    const origin: Origin = { source: "env", label: `env ${variable}` };
    const value = validate(key, text, origin, true);
    const earlier = fromEnv.get(key);
    if (earlier !== undefined && earlier.value !== value) {
      fail(key, origin, `conflicts with env ${earlier.variable}`);
    }
    fromEnv.set(key, { value, variable });
  }
  for (const [key, { value }] of fromEnv) into.set(key, { value, source: "env" });
}

function readFlags(flags: Record<string, unknown>, into: Map<string, Setting>): void {
  for (const [key, value] of Object.entries(flags)) {
    if (value === undefined) continue;
    into.set(key, {
      value: validate(key, value, { source: "flag", label: `flag ${key}` }, true),
      source: "flag",
    });
  }
}

function defaultOf(key: string): unknown {
  const [section = "", name = ""] = key.split(".");
  return (DEFAULTS as unknown as Record<string, Record<string, unknown>>)[section]?.[name];
}

function redact(key: string, value: unknown): string {
  if (SECRET_KEYS.has(key)) return "***";
  const text = String(value);
  // A password inside a URL: nats://user:secret@host → nats://user:***@host
  return key === "nats.url" ? text.replace(/(\/\/[^/@:,]*:)[^/@,]*@/g, "$1***@") : text;
}

export function loadConfig(options: LoadConfigOptions): LoadedConfig {
  const settings = new Map<string, Setting>();
  if (options.file !== undefined) readFile(options.file, settings);
  readEnv(options.env, settings);
  readFlags(options.flags, settings);

  const input: Record<string, Record<string, unknown>> = {};
  for (const [key, { value }] of settings) {
    const [section = "", name = ""] = key.split(".");
    (input[section] ??= {})[name] = value;
  }
  const parsed = ConfigSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.join(".") ?? "";
    throw new ConfigError(`config: ${where}: ${issue?.message ?? "invalid"}`, {
      key: where,
      cause: parsed.error,
    });
  }

  const sources: ConfigSource[] = [];
  for (const [section, schema] of Object.entries(CONFIG_SECTIONS)) {
    for (const name of Object.keys(schema.shape)) {
      const key = `${section}.${name}`;
      const setting = settings.get(key);
      if (setting === undefined || setting.value === defaultOf(key)) continue;
      sources.push({ key, source: setting.source, value: redact(key, setting.value) });
    }
  }
  return { config: parsed.data, sources };
}

/** The start-up log line's text: `nats.url=nats://x (env), cro_veto.enabled=true (flag)`. */
export function describeSources(sources: readonly ConfigSource[]): string {
  return sources.length === 0
    ? "all defaults"
    : sources.map((s) => `${s.key}=${s.value} (${s.source})`).join(", ");
}
