/**
 * The `yaml` package, required on first use: only a configuration file or a CLI input file in
 * YAML needs it, and importing it costs ≈ 40–85 ms of every start (the engine's restart included).
 */
import { createRequire } from "node:module";

type Yaml = typeof import("yaml");
let mod: Yaml | undefined;

export function yaml(): Yaml {
  mod ??= createRequire(import.meta.url)("yaml") as Yaml;
  return mod;
}
