import { createReadStream, createWriteStream, mkdtempSync, rmSync, type WriteStream } from "node:fs";
import { once } from "node:events";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

export interface PendingDelete {
  key: string;
  size: number;
  etag?: string;
  /** The listed modification time (a backup of the object keeps it). */
  lastModified?: number;
}

/**
 * Holds planned deletes until every copy has finished. Deletes must wait, and a bucket can have
 * millions of them, so past `memoryLimit` entries they go to a temporary file (JSON lines, in
 * listing order) instead of growing the heap.
 */
export class DeleteSpool {
  private memory: PendingDelete[] = [];
  private dir?: string;
  private file?: WriteStream;
  count = 0;
  bytes = 0;

  constructor(private readonly memoryLimit = 10_000) {}

  async add(entry: PendingDelete): Promise<void> {
    this.count++;
    this.bytes += entry.size;
    if (!this.file && this.memory.length < this.memoryLimit) {
      this.memory.push(entry);
      return;
    }
    if (!this.file) {
      this.dir = mkdtempSync(join(tmpdir(), "bucketsync-deletes-"));
      this.file = createWriteStream(join(this.dir, "deletes.jsonl"));
    }
    if (!this.file.write(JSON.stringify(entry) + "\n")) await once(this.file, "drain");
  }

  /** Yields the spooled deletes in batches of at most `size`, in the order they were added. */
  async *batches(size: number): AsyncGenerator<PendingDelete[]> {
    let batch: PendingDelete[] = [];
    for (const entry of this.memory) {
      batch.push(entry);
      if (batch.length === size) {
        yield batch;
        batch = [];
      }
    }
    if (this.file && this.dir) {
      this.file.end();
      await once(this.file, "close");
      const lines = createInterface({ input: createReadStream(join(this.dir, "deletes.jsonl")), crlfDelay: Infinity });
      for await (const line of lines) {
        if (!line) continue;
        batch.push(JSON.parse(line) as PendingDelete);
        if (batch.length === size) {
          yield batch;
          batch = [];
        }
      }
    }
    if (batch.length > 0) yield batch;
  }

  dispose(): void {
    this.file?.destroy();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
    this.memory = [];
  }
}
