export * from "./types.js";
export * from "./host.js";
export * from "./stops.js";
export * from "./drawdown.js";
export * from "./limit-warnings.js";
export * from "./kill-switch.js";
export * from "./periods.js";
