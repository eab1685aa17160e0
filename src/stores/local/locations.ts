import * as fs from "node:fs/promises";
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from "node:path";
import type { Location } from "../../core/location.js";
import { UsageError } from "../../core/types.js";

/**
 * Checks local locations before anything is listed: a source folder must exist, a target must
 * be a folder if it exists (a missing one is created), and two local folders must not overlap
 * (one inside the other, through symlinks too): a sync would copy onto itself.
 */
export async function checkLocalLocations(source: Location | undefined, target: Location | undefined): Promise<void> {
  if (source?.kind === "local") {
    const st = await statFor(source.path, "source");
    if (!st) throw new UsageError(`source folder '${source.path}' does not exist`);
    if (!st.isDirectory()) throw new UsageError(`source '${source.path}' is not a folder`);
  }
  if (target?.kind === "local") {
    const st = await statFor(target.path, "target");
    if (st && !st.isDirectory()) throw new UsageError(`target '${target.path}' exists and is not a folder`);
    // A missing target is created only once something is written, so a run that fails changes
    // nothing; whether it can be created is checked now, on its nearest existing folder.
    if (!st) await checkCreatable(target.path);
  }
  if (source?.kind === "local" && target?.kind === "local") {
    const [a, b] = [await realPath(source.path), await realPath(target.path)];
    if (contains(a, b) || contains(b, a)) {
      throw new UsageError(
        `source ${source.path} and target ${target.path} overlap (one folder is inside the other); a sync would copy onto itself`,
      );
    }
  }
}

/** `cp` of one file: refuses a copy onto itself (resolved paths, symlinks followed). */
export async function refuseSameFile(
  source: Location,
  target: Location,
  object: { sourceKey: string; targetKey: string },
): Promise<void> {
  if (source.kind !== "local" || target.kind !== "local") return;
  const [a, b] = [
    await realPath(join(source.path, object.sourceKey)),
    await realPath(join(target.path, object.targetKey)),
  ];
  if (a === b) throw new UsageError(`source and target are the same file (${a}); nothing to copy`);
}

async function checkCreatable(path: string): Promise<void> {
  let dir = dirname(resolve(path));
  for (;;) {
    const st = await fs.stat(dir).catch(() => undefined);
    if (st) {
      if (!st.isDirectory()) throw new UsageError(`cannot create target folder '${path}': ${dir} is not a folder`);
      await fs.access(dir, fs.constants.W_OK).catch(() => {
        throw new UsageError(`cannot create target folder '${path}': ${dir} is not writable`);
      });
      return;
    }
    const parent = dirname(dir);
    if (parent === dir) return;
    dir = parent;
  }
}

async function statFor(path: string, side: string) {
  try {
    return await fs.stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    throw new UsageError(`cannot use ${side} '${path}': ${(err as Error).message}`);
  }
}

/** The real path of a folder, or of its nearest existing ancestor joined with the rest. */
async function realPath(path: string): Promise<string> {
  const full = resolve(path);
  try {
    return await fs.realpath(full);
  } catch {
    const parent = dirname(full);
    return parent === full ? full : join(await realPath(parent), basename(full));
  }
}

function contains(outer: string, inner: string): boolean {
  const rel = relative(outer, inner);
  return rel === "" || (rel.split(sep)[0] !== ".." && !isAbsolute(rel));
}

/** Where folder `inner` is inside folder `outer` (resolved, symlinks followed): "" for the same folder, a relative path with `/`, or undefined. */
export async function placeInside(outer: string, inner: string): Promise<string | undefined> {
  const [a, b] = [await realPath(outer), await realPath(inner)];
  if (!contains(a, b)) return undefined;
  const rel = relative(a, b).split(sep).join("/");
  return rel === "" ? "" : `${rel}/`;
}
