import { candidatePartSizes, ContentHasher, multipartParts } from "../../integrity/etag.js";
import {
  closeSync,
  constants,
  createReadStream,
  fstatSync,
  futimesSync,
  lstatSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  writeSync,
  writevSync,
  type Dirent,
  type Stats,
} from "node:fs";
import * as fs from "node:fs/promises";
import { randomInt } from "node:crypto";
import { basename, join, resolve, sep } from "node:path";
import { Readable, Writable } from "node:stream";
import { pipeline } from "node:stream/promises";
import mime from "mime";
import { compareKeys, positionInRange } from "../../core/keys.js";
import { StoreError, emptyReportedFolder } from "../../core/errors.js";
import type {
  DeleteFailure,
  KeyRange,
  ObjectDetails,
  ObjectInfo,
  ObjectProperties,
  ObjectStore,
  WriteOptions,
} from "../../core/types.js";
import { UsageError, bodyStream } from "../../core/types.js";
import type { LocalFolder } from "../../core/capabilities.js";
import {
  PATH_CONFLICT,
  UNSAFE_KEY,
  isTempName,
  keyError,
  keyPath,
  requireKeyPath,
  tempName,
  tempWriter,
} from "./keys.js";

export interface LocalStoreOptions {
  /** Follow symbolic links to files and folders (default: skip them, with a warning). */
  followSymlinks?: boolean;
  /** Told about entries the listing skips (symlinks, special files, names that are not UTF-8). */
  onWarning?: (message: string) => void;
  /**
   * Files of the run itself (its --report file, other outputs), by path: never listed, so never
   * uploaded half-written or deleted, and never overwritten by a download. Matched by what the
   * paths resolve to, so any spelling (relative parts, links, the folder named another way) works.
   */
  ownFiles?: string[];
}

/** MD5 of zero bytes: the checksum of a directory marker. */
const EMPTY_MD5 = "d41d8cd98f00b204e9800998ecf8427e";
// Not on Windows; there the final symlink check falls back to the lstat walk alone.
const O_NOFOLLOW = constants.O_NOFOLLOW ?? 0;
/**
 * A temporary file untouched this long is abandoned whoever its name says wrote it: that pid may
 * have been reused by another program, and older versions put random digits there. A live
 * download writes to its file all the time, and a stalled request is given up long before.
 */
const ABANDONED_MS = 24 * 60 * 60 * 1000;
/**
 * Counts this process's temporary files; with the pid in the name, that makes them unique to it.
 * It starts anywhere: worker threads share the pid and count on their own (a name already taken
 * is skipped).
 */
let tempSeq = randomInt(0x10000);
/** Leftovers a listing remembers until the run's first write (a few, normally; beyond this many, the next run's turn). */
const MAX_REMEMBERED_TEMPS = 10_000;
/** Files up to this size are read whole (one read, no stream). */
const WHOLE_READ_BYTES = 1024 * 1024;
/** Folders a store remembers having made or checked (then forgets them all and checks again). */
const MAX_KNOWN_FOLDERS = 10_000;

/** The run's own files as they resolve: real paths, plus device:inode and folded names to pick candidates cheaply. */
interface OwnFiles {
  real: Set<string>;
  ids: Set<string>;
  names: Set<string>;
}

interface DirEntry {
  name: string;
  /** How the entry sorts: its name, or `name/` for a folder (its keys all start so). */
  sortKey: string;
  dir: boolean;
}

/**
 * A local folder as an ObjectStore. Keys are paths relative to the folder with `/` between
 * segments; see keys.ts for the keys that cannot be files.
 *
 * The listing walks one directory at a time, lazily: each directory is read whole and its
 * entries sorted by the key they produce (a folder `d` as `d/`), which yields exactly S3's UTF-8
 * byte order without holding more than the directories on the current path. An empty folder
 * lists as a `d/` marker (zero bytes), the S3 spelling of an empty directory.
 */
export class LocalStore implements ObjectStore, LocalFolder {
  readonly description: string;
  readonly features = ["local-folder"] as const;
  /**
   * How far a file's mtime and an S3 LastModified may disagree and still count as the same time:
   * clocks skew, S3 times have 1-second resolution, and some file systems (FAT) keep 2 seconds.
   */
  readonly timeWindowMs = 2000;
  /** Absolute path of the folder. */
  readonly root: string;
  private readonly follow: boolean;
  /**
   * File keys `a` for which the source also has keys under `a/`: those keys are refused (the file,
   * first in key order, wins), so which one fails never depends on timing.
   */
  private readonly conflicts = new Set<string>();
  /** Markers written in this run: deletes never prune those directories. */
  private readonly markersWritten = new Set<string>();
  /**
   * Folders this store made or found to be real folders while writing, so the next file in one
   * costs no lstat or mkdir. Forgotten on every delete (which may remove folders) and when full.
   */
  private readonly knownFolders = new Set<string>();
  /**
   * Temporary files are removed only by a run that writes here (not a dry run, not a source, not
   * check): listings remember the ones they pass until the first write (`cleanup` is set then),
   * and from then on remove the stale ones as they pass them.
   */
  private cleanup?: Promise<void>;
  private readonly tempsSeen: string[] = [];
  /** The own files as resolved by the latest listing, for writes to check against. */
  private own?: Promise<OwnFiles | undefined>;

  constructor(
    root: string,
    private readonly options: LocalStoreOptions = {},
  ) {
    this.root = resolve(root);
    this.description = this.root.endsWith(sep) ? this.root : this.root + sep;
    this.follow = options.followSymlinks ?? false;
  }

  // ------------------------------------------------------------------ listing

  async *list(range: KeyRange = {}): AsyncGenerator<ObjectInfo> {
    const rootStat = statSyncIfExists(this.root);
    // A missing target lists as empty; it is created by the first write.
    if (!rootStat) {
      if (range.expectKeys) throw emptyReportedFolder(range.prefix ?? "");
      return;
    }
    if (!rootStat.isDirectory()) throw new StoreError("ENOTDIR", `${this.root} is not a folder`);
    // Resolved again for each listing: an output created since the last one is then known too.
    const own = await (this.own = this.resolveOwnFiles());
    let any = false;
    for await (const entry of this.walk(this.root, "", [devIno(rootStat)], range.startAfter, own)) {
      // Keys come in order, so the first one past the end ends the listing.
      const position = positionInRange(entry.key, range);
      if (position > 0) break;
      if (position === 0) {
        any = true;
        yield entry;
      }
    }
    if (range.expectKeys && !any) throw emptyReportedFolder(range.prefix ?? "");
  }

  /** Keys under `dir` (whose keys start with `prefix`) greater than `startAfter`, in key order. */
  private async *walk(
    dir: string,
    prefix: string,
    ancestors: string[],
    startAfter: string | undefined,
    own: OwnFiles | undefined,
  ): AsyncGenerator<ObjectInfo> {
    // A folder's entries are held while its subtree is walked: only names, no paths, so a folder
    // of 100,000 files holds little.
    const entries = await this.readDirSorted(dir, prefix);
    for (const entry of entries) {
      const path = join(dir, entry.name);
      const key = prefix + entry.sortKey;
      if (!entry.dir) {
        if (startAfter !== undefined && compareKeys(key, startAfter) <= 0) continue;
        const info = await this.fileInfo(path, key, own);
        if (info) yield info;
        continue;
      }
      // A subtree entirely at or before startAfter holds nothing to list (nor does its marker).
      if (startAfter !== undefined && compareKeys(key, startAfter) < 0 && !startAfter.startsWith(key)) continue;
      const st = statSyncIfExists(path);
      if (!st?.isDirectory()) continue; // vanished or replaced since it was read
      const id = devIno(st);
      if (ancestors.includes(id)) {
        this.warn(`skipped ${this.display(key)}: symbolic link loop (it leads back to a folder above it)`);
        continue;
      }
      const sub = this.walk(path, key, [...ancestors, id], startAfter, own);
      const first = await sub.next();
      if (first.done) {
        if (startAfter === undefined || compareKeys(key, startAfter) > 0)
          yield { key, size: 0, lastModified: mtimeOf(st) };
        continue;
      }
      yield first.value;
      yield* sub;
    }
  }

  /** One directory's entries that produce keys, sorted by the key they produce. */
  private async readDirSorted(dir: string, prefix: string): Promise<DirEntry[]> {
    let dirents: Dirent<Buffer>[];
    try {
      dirents = await fs.readdir(dir, { withFileTypes: true, encoding: "buffer" });
    } catch (err) {
      // Gone since its parent was read: nothing to list. Anything else (EACCES) fails the
      // listing, which stops the run before any delete.
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw describeFsError(err, prefix === "" ? "." : prefix, "read the folder");
    }
    const entries: DirEntry[] = [];
    for (const dirent of dirents) {
      const name = dirent.name.toString("utf8");
      const path = join(dir, name);
      if (!Buffer.from(name, "utf8").equals(dirent.name)) {
        // S3 keys are UTF-8; a name that is not has no key (and its path cannot be rebuilt from a string).
        this.warn(`skipped ${this.display(prefix + name)}: its name is not valid UTF-8`);
        continue;
      }
      if (isTempName(name)) {
        // A download in progress, or an interrupted one's leftover: never data. Nothing else ever
        // removes a leftover (it is never listed, so never deleted), so a run writing here does.
        if (this.cleanup) await removeIfStale(path);
        else if (this.tempsSeen.length < MAX_REMEMBERED_TEMPS) this.tempsSeen.push(path);
        continue;
      }
      let isDir = dirent.isDirectory();
      if (dirent.isSymbolicLink()) {
        if (!this.follow) {
          this.warn(`skipped symbolic link ${this.display(prefix + name)} (use --follow-symlinks to follow it)`);
          continue;
        }
        const target = statSyncIfExists(path);
        if (!target) {
          this.warn(`skipped broken symbolic link ${this.display(prefix + name)}`);
          continue;
        }
        if (!target.isDirectory() && !target.isFile()) {
          this.warn(`skipped ${this.display(prefix + name)}: not a regular file or folder`);
          continue;
        }
        isDir = target.isDirectory();
      } else if (!isDir && !dirent.isFile()) {
        // FIFOs, sockets, devices: reading one could block forever or never end.
        this.warn(`skipped ${this.display(prefix + name)}: not a regular file or folder`);
        continue;
      }
      entries.push({ name, dir: isDir, sortKey: isDir ? `${name}/` : name });
    }
    return entries.sort((a, b) => compareKeys(a.sortKey, b.sortKey));
  }

  private async fileInfo(path: string, key: string, own: OwnFiles | undefined): Promise<ObjectInfo | undefined> {
    // The symlink decision was made when the directory was read; stat follows only when allowed.
    // A plain system call: a few microseconds, against tens for a round trip through the thread
    // pool, and a listing asks for one file at a time.
    const st = this.follow ? statSyncIfExists(path) : lstatSyncIfExists(path);
    if (!st?.isFile()) return undefined; // vanished or replaced since the directory was read
    if (own && (await isOwnFile(own, path, st))) return undefined; // the run's report, being written: not data
    return { key, size: st.size, lastModified: mtimeOf(st), accessedAt: Math.round(st.atimeMs) };
  }

  /** `ownFiles` as they resolve now; the ones that do not exist (yet) cannot be met. */
  private async resolveOwnFiles(): Promise<OwnFiles | undefined> {
    const given = this.options.ownFiles ?? [];
    if (given.length === 0) return undefined;
    const own: OwnFiles = { real: new Set(), ids: new Set(), names: new Set() };
    for (const file of given) {
      try {
        const real = await fs.realpath(resolve(file));
        const st = await fs.stat(real);
        own.real.add(real);
        own.ids.add(devIno(st));
        own.names.add(foldName(basename(real)));
      } catch (err) {
        if (!isMissing(err)) throw err;
      }
    }
    return own.real.size > 0 ? own : undefined;
  }

  // ------------------------------------------------------------------ reading

  async head(key: string): Promise<ObjectDetails | undefined> {
    const { segments, marker } = requireKeyPath(key);
    const path = this.existingPath(segments);
    if (path === undefined) return undefined;
    const st = this.follow ? statSyncIfExists(path) : lstatSyncIfExists(path);
    if (marker) return st?.isDirectory() ? { key, size: 0, lastModified: mtimeOf(st) } : undefined;
    if (!st?.isFile()) return undefined;
    return { key, size: st.size, lastModified: mtimeOf(st), ...contentTypeOf(segments) };
  }

  async get(key: string): Promise<{ body: Readable | Buffer; details: ObjectDetails }> {
    const { segments, marker } = requireKeyPath(key);
    const path = this.existingPath(segments);
    if (path === undefined) throw noSuchKey(key);
    if (marker) {
      const st = this.pathKind(path) === "dir" ? statSyncIfExists(path) : undefined;
      if (!st) throw noSuchKey(key);
      return { body: Readable.from([]), details: { key, size: 0, lastModified: mtimeOf(st) } };
    }
    // Opened, checked and (when small) read with plain system calls: a few microseconds each,
    // less than a round trip through the thread pool. O_NONBLOCK: a FIFO put in the file's place
    // since the listing must not block the process (it is refused below; files ignore the flag).
    let fd: number;
    try {
      fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | (this.follow ? 0 : O_NOFOLLOW));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ELOOP") throw noSuchKey(key);
      throw describeFsError(err, key, "read");
    }
    let keepOpen = false;
    try {
      // Size and time of the file actually opened; the read is capped at that size, so a file
      // growing meanwhile cannot send more bytes than announced.
      const st = fstatSync(fd);
      if (!st.isFile()) throw noSuchKey(key);
      const details: ObjectDetails = { key, size: st.size, lastModified: mtimeOf(st), ...contentTypeOf(segments) };
      if (st.size > WHOLE_READ_BYTES) {
        // Streamed; the stream closes the descriptor.
        keepOpen = true;
        return { body: createReadStream("", { fd, start: 0, end: st.size - 1 }), details };
      }
      // A small file is read whole: one read, no stream.
      const data = Buffer.allocUnsafe(st.size);
      let filled = 0;
      while (filled < st.size) {
        const bytesRead = readSync(fd, data, filled, st.size - filled, filled);
        if (bytesRead === 0) break; // shrunk meanwhile: the write's size check catches it
        filled += bytesRead;
      }
      return { body: filled === st.size ? data : data.subarray(0, filled), details };
    } catch (err) {
      if ((err as Error).name === "NoSuchKey") throw err;
      throw describeFsError(err, key, "read");
    } finally {
      if (!keepOpen) closeSync(fd);
    }
  }

  /**
   * MD5 of a file's content, read as a stream; for `--checksum` against a local side. With
   * `multipartEtag`, the file is also hashed in parts for each candidate part size, and that
   * ETag is returned when one candidate reproduces it (the file has the same bytes in the same
   * parts); otherwise undefined (cannot decide).
   */
  async checksum(key: string, multipartEtag?: string): Promise<string | undefined> {
    if (keyPath(key).ok && key.endsWith("/")) return EMPTY_MD5;
    const { body, details } = await this.get(key);
    const parts = multipartParts(multipartEtag);
    const hasher = new ContentHasher(parts ? candidatePartSizes(details.size, parts) : [], { size: details.size });
    await pipeline(bodyStream(body), hasher, new Writable({ write: (_chunk, _enc, done) => done() }));
    const { md5, multipart } = await hasher.result();
    if (parts === undefined) return md5;
    return [...multipart.values()].includes(multipartEtag!) ? multipartEtag : undefined;
  }

  // ------------------------------------------------------------------ writing

  /** Writes a file (atomically, through a temporary name) with the source's time as its mtime, so a re-sync is a no-op. */
  async put(
    key: string,
    body: Readable | Buffer,
    size: number,
    props: ObjectProperties,
    opts: WriteOptions,
  ): Promise<void> {
    const { segments, marker } = this.writableKey(key, size);
    try {
      await this.startWriting();
      if (marker) {
        await this.writeMarker(key, segments, props.lastModified);
        return;
      }
      const dir = await this.makeParents(key, segments);
      await this.writeFile(key, dir, segments, body, size, props.lastModified, opts);
    } finally {
      if (!Buffer.isBuffer(body)) body.destroy();
    }
  }

  /** Why a key can never be written here (unsafe, or under a file of the source); undefined when it can. */
  refusal(object: ObjectInfo): { code: string; message: string } | undefined {
    try {
      this.writableKey(object.key, object.size);
      return undefined;
    } catch (err) {
      const e = err as Error & { code: string };
      return { code: e.code, message: e.message };
    }
  }

  /** Called by the pairing of listings when the source has both a file `fileKey` and keys under `fileKey/`. */
  refuseUnder(fileKey: string): void {
    this.conflicts.add(fileKey);
  }

  /** Creates the folder itself (a missing target is created by a sync that is not a dry run). */
  async ensureRoot(): Promise<void> {
    try {
      await fs.mkdir(this.root, { recursive: true });
    } catch (err) {
      throw new UsageError(`cannot create target folder ${this.root}: ${(err as Error).message}`);
    }
    await this.startWriting();
  }

  /**
   * This store is written to: temporary files the listings passed so far are removed when stale
   * (see removeIfStale), and later listings remove stale ones as they pass them. Once per store;
   * every write waits for it, so a run's first writes find the folder already clean.
   */
  private startWriting(): Promise<void> {
    return (this.cleanup ??= (async () => {
      for (const path of this.tempsSeen.splice(0)) await removeIfStale(path);
    })());
  }

  private writableKey(key: string, size: number): { segments: string[]; marker: boolean } {
    const path = requireKeyPath(key);
    if (path.marker && size > 0) {
      throw keyError(
        UNSAFE_KEY,
        `unsafe key refused: ${JSON.stringify(key)}: it ends in '/' but has ${size} bytes of content, and a folder cannot hold them; nothing written`,
      );
    }
    for (let i = key.indexOf("/"); i >= 0; i = key.indexOf("/", i + 1)) {
      const file = key.slice(0, i);
      if (this.conflicts.has(file)) {
        throw keyError(
          PATH_CONFLICT,
          `cannot write ${JSON.stringify(key)}: the source also has a file ${JSON.stringify(file)}, and a folder cannot hold both a file and a folder of that name (the file is kept)`,
        );
      }
    }
    return path;
  }

  private async writeMarker(key: string, segments: string[], lastModified: number | undefined): Promise<void> {
    const dir = await this.makeParents(key, segments, true);
    // The directory's mtime becomes the marker's time, so comparing the two again finds them equal.
    if (lastModified) await fs.utimes(dir, new Date(), new Date(lastModified)).catch(() => undefined);
    this.markersWritten.add(key);
  }

  /**
   * Writes to a temporary file beside the final name and renames it into place: a reader, or an
   * interrupted run, never sees a partial file under the real name.
   */
  private async writeFile(
    key: string,
    dir: string,
    segments: string[],
    body: Readable | Buffer,
    size: number,
    lastModified: number | undefined,
    opts: WriteOptions,
  ): Promise<void> {
    const final = join(dir, segments[segments.length - 1]!);
    const own = await (this.own ??= this.resolveOwnFiles());
    const existing = own && lstatSyncIfExists(final);
    // A link at the final name is replaced by the rename, not followed: only the file itself counts.
    if (own && existing?.isFile() && (await isOwnFile(own, final, existing))) {
      throw keyError(
        PATH_CONFLICT,
        `cannot write ${JSON.stringify(key)}: ${final} is this run's own file (its --report file); nothing written`,
      );
    }
    let tmp: string | undefined;
    try {
      let written: number;
      if (Buffer.isBuffer(body) && body.length <= WHOLE_READ_BYTES) {
        // Held whole (a small object): written with plain system calls, no stream, no round
        // trips through the thread pool (a few microseconds each; the pool costs more than that).
        const fd = createTempSync(dir);
        tmp = fd.tmp;
        try {
          written = 0;
          while (written < body.length) written += writeSync(fd.fd, body, written, body.length - written);
          if (lastModified && written === size) futimesSync(fd.fd, accessTime(opts), new Date(lastModified));
        } finally {
          closeSync(fd.fd);
        }
        if (written === size) {
          renameSync(tmp, final);
          return;
        }
      } else {
        const fd = createTempSync(dir);
        tmp = fd.tmp;
        try {
          written = await writeInBlocks(fd.fd, Buffer.isBuffer(body) ? Readable.from([body]) : body, opts.signal);
          if (lastModified && written === size) futimesSync(fd.fd, accessTime(opts), new Date(lastModified));
        } finally {
          closeSync(fd.fd);
        }
      }
      if (written !== size) {
        // Most likely a connection that closed early: worth another try ($retryable).
        throw new StoreError(
          "IncompleteBody",
          `short read of ${JSON.stringify(key)}: got ${written} of ${size} bytes; nothing written`,
          { retryable: true },
        );
      }
      await fs.rename(tmp, final);
    } catch (err) {
      if (tmp !== undefined) await fs.rm(tmp, { force: true }).catch(() => undefined);
      throw describeFsError(err, key);
    }
  }

  /**
   * Makes sure the directories a key needs exist, creating missing ones, and returns the last.
   * Refuses to go through a file (`a` when writing `a/b`) or, unless symlinks are followed,
   * through a symbolic link, which could point anywhere outside the folder.
   */
  private async makeParents(key: string, segments: string[], all = false): Promise<string> {
    const dirs = all ? segments : segments.slice(0, -1);
    const whole = join(this.root, ...dirs);
    if (this.knownFolders.has(whole)) return whole;
    if (this.knownFolders.size >= MAX_KNOWN_FOLDERS) this.knownFolders.clear();
    if (!this.knownFolders.has(this.root)) {
      await fs.mkdir(this.root, { recursive: true });
      this.knownFolders.add(this.root);
    }
    let path = this.root;
    for (let i = 0; i < dirs.length; i++) {
      path = join(path, dirs[i]!);
      if (this.knownFolders.has(path)) continue;
      const kind = this.pathKind(path);
      if (kind === "dir") {
        this.knownFolders.add(path);
        continue;
      }
      if (kind === "missing") {
        try {
          await fs.mkdir(path);
          this.knownFolders.add(path);
          continue;
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw describeFsError(err, key);
          if (this.pathKind(path) === "dir") {
            this.knownFolders.add(path);
            continue; // created meanwhile by another write
          }
        }
      }
      const name = JSON.stringify(dirs.slice(0, i + 1).join("/"));
      if (kind === "symlink")
        throw keyError(
          PATH_CONFLICT,
          `cannot write ${JSON.stringify(key)}: ${name} is a symbolic link, and links are not followed (use --follow-symlinks)`,
        );
      throw keyError(
        PATH_CONFLICT,
        `cannot write ${JSON.stringify(key)}: ${name} is a file, so it cannot be a folder too`,
      );
    }
    return path;
  }

  /** What is at a path, as far as using it as a directory goes (plain system calls: see get). */
  private pathKind(path: string): "dir" | "missing" | "symlink" | "other" {
    const st = lstatSyncIfExists(path);
    if (!st) return "missing";
    if (st.isDirectory()) return "dir";
    if (st.isSymbolicLink()) {
      if (!this.follow) return "symlink";
      return statSyncIfExists(path)?.isDirectory() ? "dir" : "other";
    }
    return "other";
  }

  /** The path of a key when every folder above it is a real folder (or a followed link); else undefined. */
  private existingPath(segments: string[]): string | undefined {
    let path = this.root;
    for (let i = 0; i < segments.length - 1; i++) {
      path = join(path, segments[i]!);
      if (this.pathKind(path) !== "dir") return undefined;
    }
    return join(path, segments[segments.length - 1]!);
  }

  // ------------------------------------------------------------------ deleting

  /**
   * Removes files (and empty folders, for `d/` markers). A folder a delete leaves empty is removed
   * too, up to the root, unless this run wrote its marker: otherwise it would list as a `d/`
   * marker and be deleted on the next run, so a re-sync would not be a no-op.
   */
  async deleteMany(keys: string[]): Promise<DeleteFailure[]> {
    await this.startWriting();
    this.knownFolders.clear();
    const failures: DeleteFailure[] = [];
    for (const key of keys) {
      const path = keyPath(key);
      if (!path.ok) {
        failures.push({ key, code: UNSAFE_KEY, message: `unsafe key refused: ${JSON.stringify(key)}: ${path.reason}` });
        continue;
      }
      const file = this.existingPath(path.segments);
      if (file === undefined) continue; // a folder above it is gone, so it is gone
      try {
        if (path.marker) await fs.rmdir(file);
        else await fs.unlink(file);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== "ENOENT") {
          const info = describeFsError(err, key, "delete");
          failures.push({ key, code: info.code, message: info.message });
          continue;
        }
      }
      await this.pruneEmptyParents(path.segments);
    }
    return failures;
  }

  private async pruneEmptyParents(segments: string[]): Promise<void> {
    for (let depth = segments.length - 1; depth > 0; depth--) {
      const dirKey = segments.slice(0, depth).join("/") + "/";
      if (this.markersWritten.has(dirKey)) return;
      try {
        await fs.rmdir(join(this.root, ...segments.slice(0, depth)));
      } catch {
        return; // not empty (or not ours to remove): stop here
      }
    }
  }

  // ------------------------------------------------------------------ helpers

  private warn(message: string): void {
    this.options.onWarning?.(message);
  }

  private display(key: string): string {
    return this.description + key;
  }
}

/**
 * The mtime for a downloaded file. A GET's Last-Modified is an HTTP date (whole seconds) while
 * listings may carry milliseconds (radosgw's do): when both name the same second, the listing's
 * time is used, so the next comparison with that listing finds the times equal. Otherwise the
 * object changed after it was listed, and the GET's time is the one of the bytes written.
 */
/**
 * A file's mtime in whole milliseconds, as S3 times are. Rounded, not truncated: utimes takes
 * seconds as a double, so a time set to ...758 ms can read back as ...757.999.
 */
function mtimeOf(st: Stats): number {
  return Math.round(st.mtimeMs);
}

/** The access time a written file gets: the one asked for (a download's mark), else now. */
function accessTime(opts: WriteOptions): Date {
  return opts.accessedAt !== undefined ? new Date(opts.accessedAt) : new Date();
}

function devIno(st: Stats): string {
  return `${st.dev}:${st.ino}`;
}

/**
 * Names compared the way a case-insensitive or normalizing file system might: only to pick the
 * entries whose real path is worth resolving, never to decide.
 */
function foldName(name: string): string {
  return name.normalize("NFC").toLowerCase();
}

/**
 * Whether a file listed at `path` is one of the run's own. The real path decides; the device and
 * inode (from the stat made anyway) or the name pick the few entries worth resolving, and a
 * followed link is always resolved.
 */
async function isOwnFile(own: OwnFiles, path: string, st: Stats): Promise<boolean> {
  const candidate = own.ids.has(devIno(st)) || own.names.has(foldName(basename(path)));
  if (!candidate) return false;
  try {
    return own.real.has(await fs.realpath(path));
  } catch (err) {
    if (isMissing(err)) return false;
    throw err;
  }
}

/** Creates a new temporary file in `dir`, named for this process (see keys.ts). */
/** A stream's chunks are written this many bytes at a time (one system call, no thread pool). */
const WRITE_BLOCK = 1024 * 1024;

/**
 * Writes a stream to `fd` in blocks of WRITE_BLOCK, gathered from its chunks without copying
 * (writev): a 512 MiB download is about 500 system calls instead of 16,000 thread-pool
 * round trips. Returns the bytes written; `signal` stops it (the stream is destroyed).
 */
async function writeInBlocks(fd: number, body: Readable, signal?: AbortSignal): Promise<number> {
  const onAbort = () => body.destroy(signal!.reason instanceof Error ? signal!.reason : new Error("aborted"));
  if (signal?.aborted) onAbort();
  else signal?.addEventListener("abort", onAbort, { once: true });
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let written = 0;
  const flush = () => {
    while (pending.length > 0) {
      let n = writevSync(fd, pending);
      written += n;
      pendingBytes -= n;
      // A partial write: drop what went out and write the rest.
      while (pending.length > 0 && n >= pending[0]!.length) n -= pending.shift()!.length;
      if (n > 0) pending[0] = pending[0]!.subarray(n);
    }
    pending = [];
  };
  try {
    for await (const chunk of body) {
      pending.push(chunk as Buffer);
      pendingBytes += (chunk as Buffer).length;
      if (pendingBytes >= WRITE_BLOCK || pending.length >= 512) flush();
    }
    flush();
    return written;
  } finally {
    signal?.removeEventListener("abort", onAbort);
  }
}

/** createTemp with a plain file descriptor, opened synchronously (see writeFile). */
function createTempSync(dir: string): { tmp: string; fd: number } {
  for (let attempt = 1; ; attempt++) {
    const tmp = join(dir, tempName(process.pid, tempSeq));
    tempSeq = (tempSeq + 1) % 0x10000;
    try {
      return { tmp, fd: openSync(tmp, "wx") };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST" || attempt >= 16) throw err;
    }
  }
}

/**
 * Removes a temporary file whose writer is gone, or that nobody has touched for ABANDONED_MS.
 * One a live process may still be writing stays (another run into this folder, or this one).
 */
async function removeIfStale(path: string): Promise<void> {
  try {
    const st = await fs.lstat(path);
    if (!st.isFile()) return; // not ours, whatever its name
    if (!writerGone(tempWriter(basename(path))) && Date.now() - st.mtimeMs < ABANDONED_MS) return;
    await fs.unlink(path);
  } catch {
    // Gone already (renamed into place, removed by another run), or not ours to remove.
  }
}

/** True only when no process with this pid runs (here). */
function writerGone(pid: number): boolean {
  // This process: one of its writes, perhaps from another worker thread (they share the pid).
  // 0 and out-of-range values would name process groups or be refused; the age decides those.
  if (pid === process.pid || !(pid > 0 && pid <= 0x7fffffff)) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    // EPERM: it runs, as another user.
    return (err as NodeJS.ErrnoException).code === "ESRCH";
  }
}

function lstatSyncIfExists(path: string): Stats | undefined {
  try {
    return lstatSync(path, { throwIfNoEntry: false });
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

function statSyncIfExists(path: string): Stats | undefined {
  try {
    return statSync(path, { throwIfNoEntry: false });
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw err;
  }
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  // ENOTDIR: a path component is a file, so nothing exists below it. ELOOP: a symlink loop.
  return code === "ENOENT" || code === "ENOTDIR" || code === "ELOOP";
}

/** Content-Type from the file name, for uploads (`mime` knows the registered extensions). */
function contentTypeOf(segments: string[]): ObjectProperties {
  const type = mime.getType(segments[segments.length - 1]!);
  return type ? { contentType: type } : {};
}

function noSuchKey(key: string): Error {
  return new StoreError("NoSuchKey", `no such file: ${JSON.stringify(key)}`);
}

/** File system errors as one clear line naming the key, with a code the executor classifies as per-object. */
function describeFsError(
  err: unknown,
  key: string,
  action: "write" | "delete" | "read" | "read the folder" = "write",
): Error & { code: string } {
  const e = err as NodeJS.ErrnoException;
  if (typeof e?.code !== "string" || !/^E[A-Z]+$/.test(e.code)) return e as Error & { code: string };
  const k = JSON.stringify(key);
  const messages: Record<string, string> =
    action === "read" || action === "read the folder"
      ? {}
      : action === "write"
        ? {
            ENAMETOOLONG: `cannot write ${k}: a name in it is longer than this file system allows (usually 255 bytes per segment)`,
            EISDIR: `cannot write ${k}: a folder of that name is in the way`,
            ENOTEMPTY: `cannot write ${k}: a folder of that name is in the way`,
            EEXIST: `cannot write ${k}: a folder of that name is in the way`,
            ENOTDIR: `cannot write ${k}: a file is in the way of a folder it needs`,
          }
        : {
            ENOTEMPTY: `cannot delete ${k}: the folder is not empty`,
            EISDIR: `cannot delete ${k}: it is a folder`,
            ENOTDIR: `cannot delete ${k}: it is not a folder`,
          };
  const common: Record<string, string> = {
    EACCES: `cannot ${action} ${k}: permission denied`,
    EPERM: `cannot ${action} ${k}: not permitted`,
    ENOSPC: `no space left on the device to write ${k}`,
    EROFS: `the file system is read-only; cannot ${action} ${k}`,
  };
  const text = messages[e.code] ?? common[e.code] ?? `cannot ${action} ${k}: ${e.message}`;
  return new StoreError(e.code, text);
}
