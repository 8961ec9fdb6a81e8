import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ConfigError, ConfigSchema, DEFAULTS, describeSources, loadConfig } from "../src/config/index.js";

const dirs: string[] = [];
afterAll(() => {
  for (const dir of dirs) fs.rmSync(dir, { recursive: true, force: true });
});

function yamlFile(text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "riskengine-config-"));
  dirs.push(dir);
  const file = path.join(dir, "config.yaml");
  fs.writeFileSync(file, text);
  return file;
}

function configError(run: () => unknown): ConfigError {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error("expected a ConfigError, nothing was thrown");
}

describe("config defaults", () => {
  it("given nothing, when loaded, then every key has the ENGINE.md default and no source is listed", () => {
    const { config, sources } = loadConfig({ env: {}, flags: {} });
    expect(config).toEqual(DEFAULTS);
    expect(sources).toEqual([]);
    expect(DEFAULTS).toEqual({
      nats: { url: "nats://127.0.0.1:4222", queue_group: "riskengine", replicas: 1 },
      state: { dir: "./var/state", flush_interval_ms: 200, commit_interval_ms: 1000 },
      envelope: { versions_kept: 100 },
      idempotency: { window_s: 86400 },
      reservations: { ttl_s: 86400 },
      synthetic_stop: {
        enabled: true,
        poll_interval_s: 5,
        poll_interval_equities_s: 60,
        closing_order_alert_s: 30,
        fills_grace_s: 5,
        retry_backoff_s: 1,
        retry_backoff_max_s: 60,
      },
      position_arm_sweeper: { interval_s: 30 },
      broker_exit_reconciler: {
        enabled: true,
        interval_s: 120,
        alert_threshold: 1,
        on_drift: "alert",
        timeout_s: 5,
        confirm_passes: 2,
      },
      kill_switch: { verify_s: 30 },
      cro_veto: { enabled: false, timeout_s: 5, confidence_threshold: 0.85 },
      engine: { instance: "", max_staleness_s: 10, quote_pace_ms: 0 },
      http: { enabled: true, host: "127.0.0.1", port: 9464, required: false },
      ownership: { takeover_s: 5, partitions: 64 },
      log: { level: "info" },
    });
  });

  it("given a section with only some keys, when parsed, then the others keep their defaults", () => {
    const config = ConfigSchema.parse({ cro_veto: { enabled: true } });
    expect(config.cro_veto).toEqual({ enabled: true, timeout_s: 5, confidence_threshold: 0.85 });
    expect(config.nats).toEqual(DEFAULTS.nats);
  });

  it("rejects unknown keys at every level of the schema", () => {
    expect(ConfigSchema.safeParse({ grpc: {} }).success).toBe(false);
    expect(ConfigSchema.safeParse({ nats: { port: 4222 } }).success).toBe(false);
  });

  it("given an empty YAML file, when loaded, then the defaults apply", () => {
    expect(loadConfig({ file: yamlFile(""), env: {}, flags: {} }).config).toEqual(DEFAULTS);
  });

  it("given the ENGINE.md example file, when loaded, then it is accepted and equals the defaults", () => {
    const file = yamlFile(`
nats:
  url: nats://127.0.0.1:4222
  queue_group: riskengine
state:
  dir: ./var/state
envelope:
  versions_kept: 100
idempotency:
  window_s: 86400
reservations:
  ttl_s: 86400
synthetic_stop:
  enabled: true
  poll_interval_s: 5
  poll_interval_equities_s: 60
  closing_order_alert_s: 30
  fills_grace_s: 5
  retry_backoff_s: 1
  retry_backoff_max_s: 60
position_arm_sweeper:
  interval_s: 30
broker_exit_reconciler:
  enabled: true
  interval_s: 120
  alert_threshold: 1
  on_drift: alert
  timeout_s: 5
kill_switch:
  verify_s: 30
cro_veto:
  enabled: false
  timeout_s: 5.0
  confidence_threshold: 0.85
`);
    const { config, sources } = loadConfig({ file, env: {}, flags: {} });
    expect(config).toEqual(DEFAULTS);
    expect(sources).toEqual([]);
  });
});

describe("config precedence", () => {
  const file = () => yamlFile("nats:\n  url: nats://file:4222\n");

  it("given the key only in the file, then the file's value is used", () => {
    const { config, sources } = loadConfig({ file: file(), env: {}, flags: {} });
    expect(config.nats.url).toBe("nats://file:4222");
    expect(sources).toEqual([{ key: "nats.url", source: "file", value: "nats://file:4222" }]);
  });

  it("given the key in the file and the environment, then the environment wins", () => {
    const { config, sources } = loadConfig({ file: file(), env: { NATS_URL: "nats://env:4222" }, flags: {} });
    expect(config.nats.url).toBe("nats://env:4222");
    expect(sources).toEqual([{ key: "nats.url", source: "env", value: "nats://env:4222" }]);
  });

  it("given the key in the file, the environment and a flag, then the flag wins", () => {
    const { config, sources } = loadConfig({
      file: file(),
      env: { NATS_URL: "nats://env:4222" },
      flags: { "nats.url": "nats://flag:4222" },
    });
    expect(config.nats.url).toBe("nats://flag:4222");
    expect(sources).toEqual([{ key: "nats.url", source: "flag", value: "nats://flag:4222" }]);
  });

  it("given a flag whose value is undefined, then it does not override", () => {
    const { config } = loadConfig({ file: file(), env: {}, flags: { "nats.url": undefined } });
    expect(config.nats.url).toBe("nats://file:4222");
  });

  it("maps RISK_STATE_DIR and RISK_<SECTION>__<KEY> to their keys", () => {
    const { config } = loadConfig({
      env: {
        RISK_STATE_DIR: "/srv/state",
        RISK_BROKER_EXIT_RECONCILER__ON_DRIFT: "lock",
        RISK_NATS__REPLICAS: "3",
        RISK_CRO_VETO__CONFIDENCE_THRESHOLD: "0.9",
        RISK_LOG_FORMAT: "ignored: not of the RISK_<SECTION>__<KEY> form",
        PATH: "/usr/bin",
      },
      flags: {},
    });
    expect(config.state.dir).toBe("/srv/state");
    expect(config.broker_exit_reconciler.on_drift).toBe("lock");
    expect(config.nats.replicas).toBe(3);
    expect(config.cro_veto.confidence_threshold).toBe(0.9);
  });

  it("given a flag as text, then it is coerced to the key's type", () => {
    const { config } = loadConfig({ env: {}, flags: { "nats.replicas": "3", "cro_veto.enabled": true } });
    expect(config.nats.replicas).toBe(3);
    expect(config.cro_veto.enabled).toBe(true);
  });
});

describe("config coercion of environment text", () => {
  it("given RISK_CRO_VETO__ENABLED=true, then cro_veto.enabled is the boolean true", () => {
    const { config } = loadConfig({ env: { RISK_CRO_VETO__ENABLED: "true" }, flags: {} });
    expect(config.cro_veto.enabled).toBe(true);
  });

  it("given RISK_SYNTHETIC_STOP__ENABLED=false, then synthetic_stop.enabled is the boolean false", () => {
    const { config } = loadConfig({ env: { RISK_SYNTHETIC_STOP__ENABLED: "false" }, flags: {} });
    expect(config.synthetic_stop.enabled).toBe(false);
  });

  it("given a number as text, then it becomes a number", () => {
    const { config } = loadConfig({ env: { RISK_CRO_VETO__TIMEOUT_S: "2.5" }, flags: {} });
    expect(config.cro_veto.timeout_s).toBe(2.5);
  });

  it("given a boolean key set to something other than true/false, then it is rejected", () => {
    const err = configError(() => loadConfig({ env: { RISK_CRO_VETO__ENABLED: "yes" }, flags: {} }));
    expect(err.message).toBe("config: cro_veto.enabled from env RISK_CRO_VETO__ENABLED: expected boolean");
  });

  it("given a string key whose text looks like a number, then it stays a string", () => {
    const { config } = loadConfig({ env: { RISK_ENGINE__INSTANCE: "42" }, flags: {} });
    expect(config.engine.instance).toBe("42");
  });
});

describe("config rejects unknown keys", () => {
  it("given an unknown key in a known section of the file, then a ConfigError names key and file", () => {
    const file = yamlFile("cro_veto:\n  enabled: true\n  timeout: 3\n");
    const err = configError(() => loadConfig({ file, env: {}, flags: {} }));
    expect(err.code).toBe("CONFIG_ERROR");
    expect(err.name).toBe("ConfigError");
    expect(err.message).toBe(`config: cro_veto.timeout from file ${file}: unknown key`);
  });

  it("given an unknown section in the file, then a ConfigError names it", () => {
    const file = yamlFile("grpc:\n  port: 50051\n");
    const err = configError(() => loadConfig({ file, env: {}, flags: {} }));
    expect(err.message).toBe(`config: grpc from file ${file}: unknown section`);
  });

  it("given an unknown RISK_<SECTION>__<KEY> variable, then a ConfigError names the variable", () => {
    const err = configError(() => loadConfig({ env: { RISK_CRO_VETO__ENABLD: "true" }, flags: {} }));
    expect(err.message).toBe("config: cro_veto.enabld from env RISK_CRO_VETO__ENABLD: unknown key");
    expect(err.source).toBe("env");
  });

  it("given a RISK_ variable naming an unknown section, then it is rejected", () => {
    const err = configError(() => loadConfig({ env: { RISK_GRPC__PORT: "1" }, flags: {} }));
    expect(err.message).toBe("config: grpc.port from env RISK_GRPC__PORT: unknown section");
  });

  it("given an unknown flag, then it is rejected", () => {
    const err = configError(() => loadConfig({ env: {}, flags: { "nats.port": 4222 } }));
    expect(err.message).toBe("config: nats.port from flag nats.port: unknown key");
  });
});

describe("config type errors", () => {
  it("given a non-number in the environment, then the message names key and variable", () => {
    const err = configError(() => loadConfig({ env: { RISK_CRO_VETO__TIMEOUT_S: "soon" }, flags: {} }));
    expect(err.message).toBe("config: cro_veto.timeout_s from env RISK_CRO_VETO__TIMEOUT_S: expected number");
    expect(err.key).toBe("cro_veto.timeout_s");
    expect(err.message).not.toContain("\n");
  });

  it("given a wrong type in the file, then the message names key and file", () => {
    const file = yamlFile("cro_veto:\n  timeout_s: soon\n");
    const err = configError(() => loadConfig({ file, env: {}, flags: {} }));
    expect(err.message).toBe(`config: cro_veto.timeout_s from file ${file}: expected number, got string`);
  });

  it("given a value outside the allowed set, then the message lists the allowed values", () => {
    const err = configError(() =>
      loadConfig({ env: {}, flags: { "broker_exit_reconciler.on_drift": "ignore" } }),
    );
    expect(err.message).toBe(
      "config: broker_exit_reconciler.on_drift from flag broker_exit_reconciler.on_drift: expected one of alert, lock, adopt",
    );
  });

  it("given replicas out of 1..5, then it is rejected naming the key", () => {
    const err = configError(() => loadConfig({ env: { RISK_NATS__REPLICAS: "7" }, flags: {} }));
    expect(err.message).toMatch(/^config: nats\.replicas from env RISK_NATS__REPLICAS: /);
  });

  it("given a bad value in the file, when a later source overrides the key, then it is still an error", () => {
    const file = yamlFile("nats:\n  replicas: many\n");
    const err = configError(() => loadConfig({ file, env: { RISK_NATS__REPLICAS: "3" }, flags: {} }));
    expect(err.source).toBe("file");
  });

  it("given a missing file, then it is a ConfigError", () => {
    const missing = path.join(os.tmpdir(), "riskengine-config-does-not-exist", "config.yaml");
    const err = configError(() => loadConfig({ file: missing, env: {}, flags: {} }));
    expect(err.message).toBe(`config: file ${missing}: not found`);
  });

  it("given invalid YAML, then it is a one-line ConfigError", () => {
    const file = yamlFile("nats: [unclosed\n");
    const err = configError(() => loadConfig({ file, env: {}, flags: {} }));
    expect(err.message).toMatch(new RegExp(`^config: file .*: invalid YAML: `));
    expect(err.message).not.toContain("\n");
  });

  it("given NATS_URL and RISK_NATS__URL that disagree, then it is rejected", () => {
    const err = configError(() =>
      loadConfig({ env: { NATS_URL: "nats://a:4222", RISK_NATS__URL: "nats://b:4222" }, flags: {} }),
    );
    expect(err.key).toBe("nats.url");
  });
});

describe("config sources", () => {
  it("lists each non-default key with the source that set it, in schema order, secrets redacted", () => {
    const file = yamlFile(
      "nats:\n  queue_group: riskengine\n  user: engine\n  pass: s3cret\ncro_veto:\n  timeout_s: 2\n",
    );
    const { sources } = loadConfig({
      file,
      env: { RISK_CRO_VETO__ENABLED: "true", NATS_URL: "nats://engine:hunter2@nats.internal:4222" },
      flags: { "state.dir": "/srv/state", "cro_veto.timeout_s": 5 },
    });
    // queue_group set to its default, and cro_veto.timeout_s set back to it by a flag: not listed.
    expect(sources).toEqual([
      { key: "nats.url", source: "env", value: "nats://engine:***@nats.internal:4222" },
      { key: "nats.user", source: "file", value: "engine" },
      { key: "nats.pass", source: "file", value: "***" },
      { key: "state.dir", source: "flag", value: "/srv/state" },
      { key: "cro_veto.enabled", source: "env", value: "true" },
    ]);
    expect(describeSources(sources)).not.toContain("s3cret");
    expect(describeSources(sources)).not.toContain("hunter2");
    expect(describeSources([])).toBe("all defaults");
  });
});

describe("config http", () => {
  it("takes RISK_HTTP__PORT from the environment (0: a free port) and reports where it came from", () => {
    const { config, sources } = loadConfig({ env: { RISK_HTTP__PORT: "0" }, flags: {} });
    expect(config.http.port).toBe(0);
    expect(sources).toEqual([{ key: "http.port", source: "env", value: "0" }]);
  });
  it("rejects an unknown http key and a port out of range", () => {
    expect(() => loadConfig({ env: { RISK_HTTP__PROT: "1" }, flags: {} })).toThrow(/http\.prot.*unknown key/);
    expect(() => loadConfig({ env: { RISK_HTTP__PORT: "70000" }, flags: {} })).toThrow(/http\.port/);
  });
});
