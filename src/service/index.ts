export * from "./decide.js";
export * from "./check.js";
export * from "./envelope.js";
export * from "./status.js";
