/**
 * The record of multipart uploads this process started (issue 17): a run that is killed (SIGKILL,
 * power loss) cannot abort its uploads, and their parts cost storage until someone does. Each
 * process appends to its own small file in the user's cache folder (`$BUCKETSYNC_CACHE_DIR`, else
 * `$XDG_CACHE_HOME/bucketsync`, else `~/.cache/bucketsync`, under `uploads/`) a line when it
 * starts an upload and one when the upload completed or was aborted, written synchronously so the
 * line is there whatever ends the process. The next run that opens a bucket claims the files of
 * processes on this host that are gone (an atomic rename, so two runs never both take one) and
 * aborts their uploads in that bucket; uploads in other buckets stay recorded for a run there.
 *
 * Where the folder cannot be created or written, nothing is recorded and the run goes on:
 * `bucketsync cleanup` finds such uploads by listing them.
 */
import { appendFileSync, mkdirSync, readdirSync, readFileSync, renameSync, unlinkSync } from "node:fs";
import { homedir, hostname } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";

/** One upload as recorded: where it is and its id. `bucket` is on `endpoint` ("aws" for AWS itself). */
export interface RecordedUpload {
  endpoint: string;
  bucket: string;
  key: string;
  uploadId: string;
}

type Line = ({ op: "start" } & RecordedUpload) | { op: "end"; uploadId: string };

/** The cache folder for upload records; undefined when no home is known. */
export function uploadRecordDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.BUCKETSYNC_CACHE_DIR) return join(env.BUCKETSYNC_CACHE_DIR, "uploads");
  if (env.XDG_CACHE_HOME) return join(env.XDG_CACHE_HOME, "bucketsync", "uploads");
  const home = homedir();
  return home && home !== "/nonexistent" ? join(home, ".cache", "bucketsync", "uploads") : undefined;
}

const HOST = hostname().replace(/[^A-Za-z0-9.-]/g, "_");

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, another user's.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The uploads a record file still holds open (started, never ended). */
function openUploads(text: string): RecordedUpload[] {
  const open = new Map<string, RecordedUpload>();
  for (const line of text.split("\n")) {
    if (line === "") continue;
    let entry: Line;
    try {
      entry = JSON.parse(line) as Line;
    } catch {
      continue; // a line cut short by the crash itself
    }
    if (entry.op === "start") open.set(entry.uploadId, entry);
    else open.delete(entry.uploadId);
  }
  return [...open.values()];
}

/** This process's record. */
export class UploadRecord {
  private file: string | undefined;
  private failed = false;

  constructor(private readonly dir: string | undefined = uploadRecordDir()) {}

  private write(line: Line): void {
    if (this.failed || this.dir === undefined) return;
    try {
      if (!this.file) {
        mkdirSync(this.dir, { recursive: true });
        this.file = join(this.dir, `${HOST}-${process.pid}-${randomBytes(4).toString("hex")}.jsonl`);
      }
      appendFileSync(this.file, JSON.stringify(line) + "\n");
    } catch {
      this.failed = true;
    }
  }

  started(upload: RecordedUpload): void {
    this.write({ op: "start", ...upload });
  }

  ended(uploadId: string): void {
    this.write({ op: "end", uploadId });
  }

  /**
   * Takes over the open uploads in `bucket` on `endpoint` that processes of this host left
   * behind when they died, and hands each to `abort`; the ones it could not abort, and every
   * upload elsewhere, stay recorded (now in this process's file). Returns how many were aborted.
   */
  async abortOrphans(
    endpoint: string,
    bucket: string,
    abort: (upload: RecordedUpload) => Promise<void>,
  ): Promise<number> {
    if (this.dir === undefined) return 0;
    let names: string[];
    try {
      names = readdirSync(this.dir);
    } catch {
      return 0;
    }
    let aborted = 0;
    for (const name of names) {
      const m = /^(.+)-(\d+)-[0-9a-f]+\.jsonl$/.exec(name);
      if (!m || m[1] !== HOST || Number(m[2]) === process.pid || isAlive(Number(m[2]))) continue;
      const claimed = join(this.dir, `claim-${process.pid}-${randomBytes(4).toString("hex")}`);
      let text: string;
      try {
        renameSync(join(this.dir, name), claimed);
        text = readFileSync(claimed, "utf8");
      } catch {
        continue; // another run took it first
      }
      for (const upload of openUploads(text)) {
        // Recorded as ours first: if this process dies too, the next run tries again.
        this.started(upload);
        if (upload.endpoint !== endpoint || upload.bucket !== bucket) continue;
        try {
          await abort(upload);
          this.ended(upload.uploadId);
          aborted++;
        } catch {
          // stays recorded
        }
      }
      try {
        unlinkSync(claimed);
      } catch {
        // gone already
      }
    }
    return aborted;
  }
}

let shared: UploadRecord | undefined;

/** The record of this process (one file, created on the first upload). */
export function uploadRecord(): UploadRecord {
  shared ??= new UploadRecord();
  return shared;
}
