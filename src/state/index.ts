export * from "./model.js";
export * from "./book.js";
export * from "./projector.js";
export * from "./digest.js";
export * from "./snapshot.js";
export { type HashReader, startHashReader } from "./snapshot-hashes.js";
export { releaseDue, sweepReservations, isOpenOrder, isOrderDone } from "./projections/reservations.js";
export {
  sweepIdempotency,
  applyDecision,
  pruneFundVelocity,
  velocityHorizonMs,
} from "./projections/decisions.js";
export * from "./velocity.js";
export { effectiveLimits, envelopeId } from "./projections/envelopes.js";
export * from "./duplicates.js";
export { type IdemStore, type IdemDisk, createIdemStore, IDEM_CACHE_DEFAULT } from "./idem-store.js";
export { foldTheRebuildWay } from "./rebuild-mode.js";
