import { createHash, type Hash } from "node:crypto";
import { availableParallelism } from "node:os";
import { Transform, type TransformCallback } from "node:stream";
import { Worker } from "node:worker_threads";

const PLAIN_MD5 = /^[0-9a-f]{32}$/i;
const MULTIPART = /^([0-9a-f]{32})-(\d+)$/i;

/** An ETag without its quotes (S3 quotes them in headers and XML; radosgw not always); undefined when empty. */
export function unquoteEtag(etag: string | undefined): string | undefined {
  if (etag === undefined || etag === "") return undefined;
  // Hot in listings (once per key): no regular expression.
  const start = etag.charCodeAt(0) === 34 ? 1 : 0;
  const end = etag.length > start && etag.charCodeAt(etag.length - 1) === 34 ? etag.length - 1 : etag.length;
  return start === 0 && end === etag.length ? etag : etag.slice(start, end);
}

/** True when an ETag is the MD5 of the content (single-part upload without SSE-KMS/SSE-C). */
export function isPlainMd5(etag: string | undefined): boolean {
  return etag !== undefined && PLAIN_MD5.test(etag);
}

/** The part count of a multipart ETag (`<md5>-N`), or undefined. */
export function multipartParts(etag: string | undefined): number | undefined {
  const m = etag ? MULTIPART.exec(etag) : null;
  return m ? Number(m[2]) : undefined;
}

/** S3's multipart ETag: MD5 of the concatenated binary part MD5s, then `-N`. */
export function multipartEtag(partMd5s: readonly Buffer[]): string {
  const h = createHash("md5");
  for (const p of partMd5s) h.update(p);
  return `${h.digest("hex")}-${partMd5s.length}`;
}

/**
 * Part sizes that could have produced a multipart ETag with `parts` parts for an object of
 * `size` bytes, most likely first: the common tool defaults (aws-cli and boto3 8 MiB, the JS SDK
 * and rclone 5 MiB, mc 16 MiB, s3cmd 15 MiB, ...) then the smallest whole MiB that fits, keeping
 * those that give exactly that part count (`--auto-part-size`).
 */
export function candidatePartSizes(size: number, parts: number): number[] {
  const MiB = 1024 * 1024;
  const common = [8, 5, 16, 15, 10, 64, 32, 25, 50, 100, 128, 256, 512].map((m) => m * MiB);
  const fit = Math.ceil(size / parts / MiB) * MiB;
  return [...new Set([...common, fit])].filter((p) => p > 0 && Math.ceil(size / p) === parts);
}

/** What a content hash gives: the plain MD5, and the multipart ETag per part size asked for. */
export interface ContentHashes {
  md5: string;
  multipart: Map<number, string>;
}

/**
 * The MD5 of everything, and the MD5 of each part for every part size asked for: the state of a
 * ContentHasher, in this thread or in a hash worker's (hash-worker.ts).
 */
export class PartHashes {
  private readonly whole = createHash("md5");
  private readonly layouts: { partSize: number; done: Buffer[]; current: Hash; filled: number }[];

  constructor(partSizes: readonly number[]) {
    this.layouts = [...new Set(partSizes)].map((partSize) => ({
      partSize,
      done: [],
      current: createHash("md5"),
      filled: 0,
    }));
  }

  update(chunk: Uint8Array): void {
    this.whole.update(chunk);
    for (const layout of this.layouts) {
      let offset = 0;
      while (offset < chunk.length) {
        const take = Math.min(layout.partSize - layout.filled, chunk.length - offset);
        layout.current.update(chunk.subarray(offset, offset + take));
        layout.filled += take;
        offset += take;
        if (layout.filled === layout.partSize) {
          layout.done.push(layout.current.digest());
          layout.current = createHash("md5");
          layout.filled = 0;
        }
      }
    }
  }

  result(): ContentHashes {
    const multipart = new Map<number, string>();
    for (const layout of this.layouts) {
      const parts =
        layout.filled > 0 || layout.done.length === 0 ? [...layout.done, layout.current.copy().digest()] : layout.done;
      multipart.set(layout.partSize, multipartEtag(parts));
    }
    return { md5: this.whole.copy().digest("hex"), multipart };
  }
}

/** Streams at least this large are hashed in a worker thread, when one is free. */
export const OFF_THREAD_MIN_BYTES = 64 * 1024 * 1024;
/** The worker is sent the bytes in buffers of this size, which it sends back to be filled again. */
const OFF_THREAD_BUFFER = 1024 * 1024;
/** Buffers per worker: the most memory a worker's hashing holds, whatever the stream's speed. */
const OFF_THREAD_BUFFERS = 8;
/** Hash workers at once: one core is left to the main thread (a second large stream hashes in its own thread). */
const MAX_HASH_WORKERS = Math.max(1, availableParallelism() - 1);
let hashWorkers = 0;

/**
 * A pass-through stream that hashes what flows through it (see PartHashes), so the ETag the
 * target should have can be computed without reading the bytes twice. A stream of `size` at
 * least OFF_THREAD_MIN_BYTES is hashed in a worker thread (hash-worker.ts) when one is free:
 * MD5 at about 700 MB/s would otherwise hold the main thread for most of a large download,
 * between its reads and its writes. The bytes are copied into a few fixed buffers that go to the
 * worker and come back (the chunks themselves go on to the writer), so its memory is bounded and
 * makes no garbage; a stream faster than the worker waits for a buffer.
 */
export class ContentHasher extends Transform {
  private readonly hashes?: PartHashes;
  private readonly worker?: Worker;
  /** Buffers back from the worker, and the one being filled. */
  private readonly free: Uint8Array[] = [];
  private buffers = 0;
  private current?: Uint8Array;
  private filled = 0;
  /** The rest of a chunk that waits for a buffer. */
  private waiting?: () => void;
  private final?: Promise<ContentHashes>;
  bytes = 0;

  constructor(partSizes: readonly number[] = [], opts: { size?: number } = {}) {
    super();
    if ((opts.size ?? 0) >= OFF_THREAD_MIN_BYTES && hashWorkers < MAX_HASH_WORKERS) {
      this.worker = new Worker(new URL("./hash-worker.js", import.meta.url), { workerData: { partSizes } });
      hashWorkers++;
      // Never what keeps the process alive.
      this.worker.unref();
      this.worker.on("message", (m: { buffer?: Uint8Array }) => {
        if (!m.buffer) return;
        this.free.push(m.buffer);
        const go = this.waiting;
        this.waiting = undefined;
        go?.();
      });
      this.worker.once("error", (err) => this.destroy(err));
      this.worker.once("exit", () => hashWorkers--);
    } else this.hashes = new PartHashes(partSizes);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.hashes) {
      this.hashes.update(chunk);
      callback(null, chunk);
      return;
    }
    this.copyOut(chunk, 0, () => callback(null, chunk));
  }

  /** Copies `chunk` from `offset` into the worker's buffers, sending each one that fills; then `done`. */
  private copyOut(chunk: Buffer, offset: number, done: () => void): void {
    while (offset < chunk.length) {
      if (!this.current) {
        let next = this.free.pop();
        if (!next && this.buffers < OFF_THREAD_BUFFERS) {
          next = new Uint8Array(OFF_THREAD_BUFFER);
          this.buffers++;
        }
        if (!next) {
          this.waiting = () => this.copyOut(chunk, offset, done);
          return;
        }
        this.current = next;
        this.filled = 0;
      }
      const take = Math.min(OFF_THREAD_BUFFER - this.filled, chunk.length - offset);
      this.current.set(chunk.subarray(offset, offset + take), this.filled);
      this.filled += take;
      offset += take;
      if (this.filled === OFF_THREAD_BUFFER) this.send();
    }
    done();
  }

  private send(): void {
    const buffer = this.current!;
    this.worker!.postMessage({ buffer, length: this.filled }, [buffer.buffer as ArrayBuffer]);
    this.current = undefined;
    this.filled = 0;
  }

  /** Lets the hash worker go: for a stream given up on, whose result is never asked for. */
  release(): void {
    if (this.worker && !this.final) void this.worker.terminate();
  }

  // A stream that ended is destroyed too (autoDestroy): only a failed one loses its worker here.
  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (err) this.release();
    callback(err);
  }

  /** After the stream ended: the plain MD5, and the multipart ETag per part size. */
  async result(): Promise<ContentHashes> {
    if (this.hashes) return this.hashes.result();
    const worker = this.worker!;
    this.final ??= new Promise<ContentHashes>((resolve, reject) => {
      worker.on("message", (m: { hashes?: ContentHashes }) => {
        if (m.hashes) resolve(m.hashes);
      });
      worker.once("error", reject);
      worker.once("exit", () => reject(new Error("the hash worker stopped before its result")));
      if (this.current && this.filled > 0) this.send();
      worker.postMessage("end");
    }).finally(() => void worker.terminate());
    return this.final;
  }
}
