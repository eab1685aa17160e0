/**
 * The cost estimate of a dry run and of check (issue 16): the requests the real run would send,
 * by kind, and the bytes it would stream through this machine. The listing (and any HEAD a
 * comparison needs) is measured, since a dry run really lists; every planned copy, update and
 * delete batch adds what its store says it sends (ObjectStore.plannedRequests), so the estimate
 * counts requests the same way the real run's meter does.
 */
import { isLocalFolder } from "../core/capabilities.js";
import { addCounts, emptyCounts, type MeterReading, type RequestCounts } from "../core/meter.js";
import { AWS_S3_STANDARD_US_EAST_1, costOf, type Cost, type PriceTable } from "../core/prices.js";
import type { ObjectInfo, ObjectStore, WriteOptions } from "../core/types.js";

/** What a run sent (or would send), as the summary and --json carry it. */
export interface Usage {
  requests: RequestCounts;
  bytesThrough: number;
  cost: Cost;
}

export class Estimate {
  readonly requests = emptyCounts();
  bytesThrough = 0;
  private bytesDownloaded = 0;

  constructor(
    private readonly source: ObjectStore,
    private readonly target: ObjectStore,
    private readonly write: WriteOptions = {},
  ) {}

  /** One object copied, server-side or streamed. */
  copy(object: ObjectInfo, route: "server-side" | "streaming"): void {
    if (route === "server-side") {
      addCounts(this.requests, this.target.plannedRequests?.({ op: "copyFrom", object, write: this.write }) ?? {});
    } else {
      addCounts(this.requests, this.source.plannedRequests?.({ op: "get", object }) ?? {});
      addCounts(this.requests, this.target.plannedRequests?.({ op: "put", size: object.size }) ?? {});
      this.bytesThrough += object.size;
      if (!isLocalFolder(this.source)) this.bytesDownloaded += object.size;
    }
    // --preserve-acl reads both ACLs and writes the target's.
    if (this.write.preserveAcl) addCounts(this.requests, { GET: 2, PUT: 1 });
  }

  /** `keys` deletes, in batches. */
  deletes(keys: number): void {
    if (keys > 0) addCounts(this.requests, this.target.plannedRequests?.({ op: "deleteMany", keys }) ?? {});
  }

  /** The estimate: what the meter measured so far (the listing) and what the plan adds. */
  usage(meter: MeterReading | undefined, table: PriceTable = AWS_S3_STANDARD_US_EAST_1): Usage {
    const requests = addCounts(addCounts(emptyCounts(), meter?.requests ?? {}), this.requests);
    const bytesThrough = (meter?.bytesThrough ?? 0) + this.bytesThrough;
    return {
      requests,
      bytesThrough,
      cost: costOf(requests, (meter?.bytesDownloaded ?? 0) + this.bytesDownloaded, table),
    };
  }
}

/** What the meter measured. */
export function measuredUsage(meter: MeterReading | undefined, table: PriceTable = AWS_S3_STANDARD_US_EAST_1): Usage {
  const requests = addCounts(emptyCounts(), meter?.requests ?? {});
  return {
    requests,
    bytesThrough: meter?.bytesThrough ?? 0,
    cost: costOf(requests, meter?.bytesDownloaded ?? 0, table),
  };
}
