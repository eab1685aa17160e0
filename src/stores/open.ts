import { canonicalEndpoint } from "../core/endpoint.js";
import { parseLocation, type Location } from "../core/location.js";
import type { ObjectStore } from "../core/types.js";
import type { RequestMeter } from "../core/meter.js";
import { LocalStore, type LocalStoreOptions } from "./local/local-store.js";
import { connectS3, resolveEndpointUrl, type S3Connection, type S3ConnectionOptions } from "./s3/client.js";
import { DEFAULT_S3_STORE_OPTIONS, S3Store, type S3StoreOptions } from "./s3/s3-store.js";

export interface StoreOptions {
  connection?: S3ConnectionOptions;
  s3?: Partial<S3StoreOptions>;
  local?: LocalStoreOptions;
}

/**
 * Opens the store a location names. Stores opened through one `StoreOpener` share S3 connections
 * when their connection options match, which is also what lets them copy server-side.
 */
export class StoreOpener {
  private connections = new Map<string, Promise<S3Connection>>();

  /**
   * `signal`: the run's; aborting it stops listing requests in flight (writes finish). `meter`:
   * counts (and limits) every request of the run's connections.
   */
  constructor(
    private readonly signal?: AbortSignal,
    readonly meter?: RequestMeter,
  ) {}

  async open(location: string | Location, options: StoreOptions = {}): Promise<ObjectStore> {
    const loc = typeof location === "string" ? parseLocation(location) : location;
    if (loc.kind === "s3") {
      const conn = await this.connect(options.connection ?? {});
      return new S3Store(conn, loc.bucket, loc.prefix, { ...DEFAULT_S3_STORE_OPTIONS, ...options.s3 });
    }
    return new LocalStore(loc.path, options.local);
  }

  private async connect(given: S3ConnectionOptions): Promise<S3Connection> {
    const options = { ...given, endpointUrl: await resolveEndpointUrl(given) };
    const key = JSON.stringify([
      canonicalEndpoint(options.endpointUrl),
      options.region,
      options.profile,
      options.forcePathStyle,
      options.credentials?.accessKeyId,
    ]);
    let conn = this.connections.get(key);
    if (!conn) {
      conn = connectS3(options, { signal: this.signal, meter: this.meter });
      this.connections.set(key, conn);
    }
    return conn;
  }

  async close(): Promise<void> {
    for (const pending of this.connections.values()) {
      await (await pending).close();
    }
    this.connections.clear();
  }
}
