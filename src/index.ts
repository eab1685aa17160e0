/** bucketsync's library API; the CLI is a thin layer over these. */
export { sync, check, validateSyncOptions, DEFAULT_CONCURRENCY } from "./sync.js";
export type { SyncOptions, SyncResult, CheckResult, Difference, CommonOptions } from "./sync.js";
export type { SyncEvent, SyncSummary, EventSink } from "./executor/events.js";
export { compareKeys } from "./core/keys.js";
export { parseLocation } from "./core/location.js";
export type { Location } from "./core/location.js";
export { UsageError, CANNED_ACLS } from "./core/types.js";
export type { ObjectStore, ObjectInfo, ObjectDetails, ObjectProperties, CannedAcl, KeyRange } from "./core/types.js";
export { plan } from "./planner/planner.js";
export type { Action, PlanOptions } from "./planner/planner.js";
export { COMPARE_RULES, sizeAndTime, sizeOnly, checksum } from "./planner/compare.js";
export type { CompareMode, CompareRule } from "./planner/compare.js";
export { compileFilters } from "./planner/filters.js";
export type { FilterRule } from "./planner/filters.js";
export { MemoryStore } from "./stores/memory/memory-store.js";
export { S3Store } from "./stores/s3/s3-store.js";
export { StoreOpener } from "./stores/open.js";
export type { S3ConnectionOptions } from "./stores/s3/client.js";
