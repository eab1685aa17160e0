/**
 * `cp`: one object (or file) to another place or name, or with `recursive` every object under a
 * prefix (new and changed ones, as rclone's `copy`; never a delete). It is a sync underneath: the
 * same stores, write options, verification, retries and events; one object is read with a HEAD
 * on each side instead of listings (see SyncOptions.object).
 */
import { stat } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { parseLocation } from "./core/location.js";
import { UsageError } from "./core/types.js";
import { sync, type SyncOptions, type SyncResult } from "./sync.js";

export interface CopyOptions extends Omit<SyncOptions, "source" | "target" | "object" | "delete"> {
  /** `s3://bucket/key` or a file; with `recursive`, `s3://bucket[/prefix]` or a folder. */
  source: string;
  /**
   * Where the copy goes: `s3://bucket/key` or a file path names the copy; `s3://bucket`,
   * a location ending in `/`, or an existing folder keeps the source's name (as aws s3 cp).
   */
  target: string;
  recursive?: boolean;
}

/** The sync that a cp is: its two roots, and for one object its key on each side. */
export interface CopyPlan {
  source: string;
  target: string;
  object?: { sourceKey: string; targetKey: string };
}

export async function planCopy(source: string, target: string, recursive = false): Promise<CopyPlan> {
  if (recursive) return { source, target };
  const from = await splitSource(source);
  const to = await splitTarget(target, from.key);
  return { source: from.root, target: to.root, object: { sourceKey: from.key, targetKey: to.key } };
}

async function splitSource(source: string): Promise<{ root: string; key: string }> {
  const loc = parseLocation(source);
  if (loc.kind === "s3") {
    const key = loc.prefix.replace(/\/$/, "");
    if (key === "" || source.endsWith("/"))
      throw new UsageError(`${loc.url} names a prefix, not an object; add --recursive to copy every object under it`);
    const name = key.slice(key.lastIndexOf("/") + 1);
    return { root: `s3://${loc.bucket}/${key.slice(0, key.length - name.length)}`, key: name };
  }
  const st = await stat(source).catch(() => undefined);
  if (!st) throw new UsageError(`source file '${source}' does not exist`);
  if (st.isDirectory()) throw new UsageError(`'${source}' is a folder; add --recursive to copy every file in it`);
  return { root: dirname(source), key: basename(source) };
}

async function splitTarget(target: string, name: string): Promise<{ root: string; key: string }> {
  const loc = parseLocation(target);
  if (loc.kind === "s3") {
    const key = loc.prefix.replace(/\/$/, "");
    if (key === "" || target.endsWith("/")) return { root: loc.url, key: name };
    const last = key.slice(key.lastIndexOf("/") + 1);
    return { root: `s3://${loc.bucket}/${key.slice(0, key.length - last.length)}`, key: last };
  }
  const st = await stat(target).catch(() => undefined);
  if (st?.isDirectory() || /[/\\]$/.test(target)) return { root: target, key: name };
  return { root: dirname(target), key: basename(target) };
}

/** Copies one object, or with `recursive` a prefix or folder (never deleting). */
export async function cp(options: CopyOptions): Promise<SyncResult> {
  const plan = await planCopy(options.source, options.target, options.recursive);
  const { recursive: _recursive, ...rest } = options;
  return sync({ ...rest, ...plan, delete: false });
}
