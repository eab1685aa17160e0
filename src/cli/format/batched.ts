/**
 * Output text gathered and written once per turn of the event loop (or per 64 KiB): a sync of
 * thousands of small files prints a line for each, and a write per line is a system call per
 * line. Written in order, and flushed on exit, so nothing printed is lost or reordered.
 */
const FLUSH_AT = 64 * 1024;

export class BatchedOutput {
  private pending: string[] = [];
  private size = 0;
  private scheduled = false;

  constructor(private readonly stream: NodeJS.WritableStream) {
    process.on("exit", () => this.flush());
  }

  write(text: string | Uint8Array): boolean {
    const s = typeof text === "string" ? text : Buffer.from(text).toString("utf8");
    this.pending.push(s);
    this.size += s.length;
    if (this.size >= FLUSH_AT) this.flush();
    else if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
    return true;
  }

  flush(): void {
    this.scheduled = false;
    if (this.pending.length === 0) return;
    const text = this.pending.join("");
    this.pending = [];
    this.size = 0;
    this.stream.write(text);
  }
}
