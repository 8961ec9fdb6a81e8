export * from "./engine.js";
export * from "./alerts.js";
export * from "./rebuild.js";
