/**
 * What requests and bytes cost (issue 16): a price table per request kind and per GB read out of
 * S3, and the cost of a run's counters under it. The default is AWS S3 Standard in us-east-1;
 * `--price-table FILE` loads another (config/prices.ts).
 */
import { REQUEST_KINDS, type RequestCounts } from "./meter.js";

export interface PriceTable {
  /** Names the provider, region and date of the prices, e.g. "aws-s3-standard-us-east-1 2026-11". */
  name: string;
  /** USD per 1,000 requests of each kind. */
  perThousand: RequestCounts;
  /** USD per GB (2^30 bytes) read out of S3 to this machine (data transfer out). */
  transferOutPerGB: number;
}

/**
 * AWS S3 Standard, us-east-1, as published in November 2026: PUT, COPY, POST and LIST requests
 * $0.005 per 1,000 (UploadPartCopy and the multipart calls are PUT/POST requests); GET, HEAD and
 * other reads $0.0004 per 1,000; DELETE free; data transfer out to the internet $0.09 per GB (the
 * first 10 TB a month; transfers to EC2 in the same region are free: give a table with 0 then).
 */
export const AWS_S3_STANDARD_US_EAST_1: PriceTable = {
  name: "aws-s3-standard-us-east-1 2026-11",
  perThousand: { LIST: 0.005, HEAD: 0.0004, GET: 0.0004, PUT: 0.005, COPY: 0.005, UploadPartCopy: 0.005, DELETE: 0 },
  transferOutPerGB: 0.09,
};

export interface Cost {
  /** US dollars, rounded to 1/10,000 of a cent. */
  usd: number;
  priceTable: string;
}

/** What `requests` and `bytesDownloaded` cost under `table`. */
export function costOf(requests: RequestCounts, bytesDownloaded: number, table: PriceTable): Cost {
  let usd = 0;
  for (const kind of REQUEST_KINDS) usd += (requests[kind] * table.perThousand[kind]) / 1000;
  usd += (bytesDownloaded / 2 ** 30) * table.transferOutPerGB;
  return { usd: Math.round(usd * 1e6) / 1e6, priceTable: table.name };
}
