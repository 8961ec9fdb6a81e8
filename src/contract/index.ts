export * from "./codes.js";
export * from "./schemas.js";
export * from "./subjects.js";
export * from "./records.js";
export * from "./wire.js";
