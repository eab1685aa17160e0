import { createHash, type Hash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

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

/**
 * A pass-through stream that hashes what flows through it: the MD5 of everything, and the MD5 of
 * each part for every part size asked for, so the ETag the target should have can be computed
 * without reading the bytes twice.
 */
export class ContentHasher extends Transform {
  private readonly whole = createHash("md5");
  private readonly layouts: { partSize: number; done: Buffer[]; current: Hash; filled: number }[];
  bytes = 0;

  constructor(partSizes: readonly number[] = []) {
    super();
    this.layouts = [...new Set(partSizes)].map((partSize) => ({
      partSize,
      done: [],
      current: createHash("md5"),
      filled: 0,
    }));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, callback: TransformCallback): void {
    this.whole.update(chunk);
    this.bytes += chunk.length;
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
    callback(null, chunk);
  }

  /** After the stream ended: the plain MD5, and the multipart ETag per part size. */
  result(): { md5: string; multipart: Map<number, string> } {
    const multipart = new Map<number, string>();
    for (const layout of this.layouts) {
      const parts =
        layout.filled > 0 || layout.done.length === 0 ? [...layout.done, layout.current.copy().digest()] : layout.done;
      multipart.set(layout.partSize, multipartEtag(parts));
    }
    return { md5: this.whole.copy().digest("hex"), multipart };
  }
}
