/**
 * The run's --backup-dir: where it is, and the refusals before anything is written. A backup
 * location inside the source or the sync root is refused unless the run's filters exclude it
 * (its backups would otherwise be synced, or deleted, as data); one that holds the source or the
 * sync root is always refused. Locations are compared by what they name (endpoints, resolved
 * folders), never by spelling.
 */
import { couldBeSameServer } from "./core/endpoint.js";
import type { Location } from "./core/location.js";
import { UsageError } from "./core/types.js";
import type { KeyFilter } from "./planner/filters.js";
import { placeInside } from "./stores/local/locations.js";

/** Where `inner` lies inside `outer` ("" the same place, else a key prefix), or undefined when it does not. */
async function inside(
  outer: Location,
  inner: Location,
  outerEndpoint: string | undefined,
  innerEndpoint: string | undefined,
): Promise<string | undefined> {
  if (outer.kind === "local" && inner.kind === "local") return placeInside(outer.path, inner.path);
  if (outer.kind !== "s3" || inner.kind !== "s3") return undefined;
  if (outer.bucket.toLowerCase() !== inner.bucket.toLowerCase() || !inner.prefix.startsWith(outer.prefix))
    return undefined;
  if (!(await couldBeSameServer(outerEndpoint, innerEndpoint, [outer.bucket, inner.bucket]))) return undefined;
  return inner.prefix.slice(outer.prefix.length);
}

export async function refuseBackupOverlap(
  backup: Location,
  sides: { role: "source" | "target"; location: Location | undefined; endpoint: string | undefined }[],
  backupEndpoint: string | undefined,
  filter: KeyFilter,
): Promise<void> {
  for (const side of sides) {
    if (!side.location) continue;
    const holds = await inside(backup, side.location, backupEndpoint, side.endpoint);
    if (holds !== undefined)
      throw new UsageError(
        `--backup-dir ${backup.url} ${holds === "" ? "is" : "contains"} the ${side.role} ${side.location.url}; backups would overwrite what they save`,
      );
    const within = await inside(side.location, backup, side.endpoint, backupEndpoint);
    // Inside a side, the backups are keys of that side: allowed only when the run's filters leave them out.
    if (within !== undefined && filter(`${within}bucketsync-backup-probe`))
      throw new UsageError(
        `--backup-dir ${backup.url} is inside the ${side.role} ${side.location.url}; exclude it from the sync (--exclude "${within}*") or choose another place`,
      );
  }
}
