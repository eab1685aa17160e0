import { StoreError } from "../../core/errors.js";
import { Readable } from "node:stream";
import { createHash } from "node:crypto";
import { compareKeys, positionInRange } from "../../core/keys.js";
import { emptyReportedFolder } from "../../core/errors.js";
import type {
  DeleteFailure,
  KeyRange,
  ObjectDetails,
  ObjectInfo,
  ObjectProperties,
  ObjectStore,
  WriteOptions,
} from "../../core/types.js";

interface StoredObject {
  details: ObjectDetails;
  data: Buffer;
  acl?: string;
}

/** An ObjectStore in memory, for unit tests and simulations. Listing sorts keys by compareKeys. */
export class MemoryStore implements ObjectStore {
  readonly description: string;
  readonly objects = new Map<string, StoredObject>();
  readonly ifMatchWrites = true;
  /** Set to make every call to these keys fail, for tests of failure handling. */
  readonly failingKeys = new Set<string>();
  /** Called before each read of an object's bytes (get, or a copy from here): tests change the store there, as a live bucket changes. */
  beforeRead?: (key: string) => void;
  private clock = Date.now();

  constructor(name = "memory") {
    this.description = `memory://${name}/`;
  }

  /** Adds an object directly (test setup). */
  set(key: string, content: string | Buffer, props: ObjectProperties & { lastModified?: number } = {}): void {
    const data = typeof content === "string" ? Buffer.from(content) : content;
    const { lastModified, ...rest } = props;
    this.objects.set(key, {
      data,
      details: {
        ...rest,
        key,
        size: data.length,
        lastModified: lastModified ?? this.tick(),
        etag: createHash("md5").update(data).digest("hex"),
      },
    });
  }

  content(key: string): string | undefined {
    return this.objects.get(key)?.data.toString();
  }

  acl(key: string): string | undefined {
    return this.objects.get(key)?.acl;
  }

  async *list(range: KeyRange = {}): AsyncGenerator<ObjectInfo> {
    const keys = [...this.objects.keys()].sort(compareKeys);
    let any = false;
    for (const key of keys) {
      const position = positionInRange(key, range);
      if (position < 0) continue;
      if (position > 0) break;
      any = true;
      const { details } = this.objects.get(key)!;
      yield { key, size: details.size, lastModified: details.lastModified, etag: details.etag };
    }
    if (range.expectKeys && !any) throw emptyReportedFolder(range.prefix ?? "");
  }

  async head(key: string): Promise<ObjectDetails | undefined> {
    const found = this.objects.get(key);
    return found ? { ...found.details } : undefined;
  }

  async get(key: string, _versionId?: string, ifMatch?: string): Promise<{ body: Readable; details: ObjectDetails }> {
    this.beforeRead?.(key);
    this.failIfAsked(key);
    const found = this.objects.get(key);
    if (!found) throw new StoreError("NoSuchKey", `NoSuchKey: ${key}`);
    if (ifMatch !== undefined && found.details.etag !== ifMatch) throw preconditionFailed(key);
    return { body: Readable.from([found.data]), details: { ...found.details } };
  }

  async put(
    key: string,
    body: Readable | Buffer,
    _size: number,
    props: ObjectProperties,
    opts: WriteOptions,
  ): Promise<{ etag?: string }> {
    this.failIfAsked(key);
    this.checkCondition(key, opts);
    const chunks: Buffer[] = [];
    if (Buffer.isBuffer(body)) chunks.push(body);
    else for await (const chunk of body) chunks.push(chunk as Buffer);
    this.set(key, Buffer.concat(chunks), props);
    if (opts.acl) this.objects.get(key)!.acl = opts.acl;
    return { etag: this.objects.get(key)!.details.etag };
  }

  /** WriteOptions.onlyIf, as S3 servers that support conditional writes check it. */
  private checkCondition(key: string, opts: WriteOptions): void {
    const current = this.objects.get(key);
    if (opts.onlyIf === "absent" && current) throw preconditionFailed(key);
    if (typeof opts.onlyIf === "object" && current?.details.etag !== opts.onlyIf.etag) throw preconditionFailed(key);
  }

  async deleteMany(keys: string[]): Promise<DeleteFailure[]> {
    const failures: DeleteFailure[] = [];
    for (const key of keys) {
      if (this.failingKeys.has(key)) failures.push({ key, code: "InternalError", message: "injected failure" });
      else this.objects.delete(key);
    }
    return failures;
  }

  canCopyFrom(source: ObjectStore): boolean {
    return source instanceof MemoryStore;
  }

  async copyFrom(
    source: ObjectStore,
    sourceObject: ObjectInfo,
    opts: WriteOptions,
    targetKey = sourceObject.key,
  ): Promise<{ etag?: string }> {
    const origin = source as MemoryStore;
    origin.beforeRead?.(sourceObject.key);
    origin.failIfAsked(sourceObject.key);
    this.failIfAsked(targetKey);
    const from = origin.objects.get(sourceObject.key);
    if (!from) throw new StoreError("NoSuchKey", `NoSuchKey: ${sourceObject.key}`);
    if (sourceObject.etag !== undefined && from.details.etag !== sourceObject.etag)
      throw preconditionFailed(sourceObject.key);
    this.checkCondition(targetKey, opts);
    const { key: _k, size: _s, lastModified: _l, etag: _e, ...props } = from.details;
    this.set(targetKey, from.data, props);
    if (opts.acl) this.objects.get(targetKey)!.acl = opts.acl;
    return { etag: this.objects.get(targetKey)!.details.etag };
  }

  protected failIfAsked(key: string): void {
    if (this.failingKeys.has(key))
      throw new StoreError("InternalError", `injected failure for ${key}`, { status: 500 });
  }

  private tick(): number {
    this.clock += 1000;
    return this.clock;
  }
}

function preconditionFailed(key: string): Error {
  return new StoreError("PreconditionFailed", `PreconditionFailed: ${key}`, { status: 412 });
}
