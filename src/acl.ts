import { parseLocation } from "./core/location.js";
import type { ErrorInfo } from "./core/errors.js";
import { CANNED_ACLS, UsageError, type CannedAcl } from "./core/types.js";
import { TaskRunner } from "./executor/tasks.js";
import { compileFilters, includeOnlyMessage, includesThatSelectNothing, type FilterRule } from "./planner/filters.js";
import type { S3ConnectionOptions } from "./stores/s3/client.js";
import { StoreOpener } from "./stores/open.js";

export interface AclApplyOptions {
  /** `s3://bucket[/prefix]`: every object under it (after filters) gets the ACL. */
  location: string;
  acl: CannedAcl;
  filters?: FilterRule[];
  dryRun?: boolean;
  concurrency?: number;
  connection?: S3ConnectionOptions;
  onEvent?: (
    event:
      | { type: "acl"; key: string; acl: CannedAcl; dryRun: boolean }
      | { type: "error"; key: string; code: string; message: string },
  ) => void;
}

export interface AclApplyResult {
  applied: number;
  failed: number;
  fatal?: ErrorInfo & { context: string };
}

/**
 * Sets a canned ACL on every object under a prefix, concurrently: the seed's `applyAcl` task.
 * Object ACLs only; the bucket's own ACL and policy are never touched, so it stays private.
 */
export async function applyAcl(options: AclApplyOptions): Promise<AclApplyResult> {
  if (!CANNED_ACLS.includes(options.acl))
    throw new UsageError(`invalid --acl '${options.acl}'; expected one of: ${CANNED_ACLS.join(", ")}`);
  const location = parseLocation(options.location);
  if (location.kind !== "s3") throw new UsageError("acl apply works on s3:// locations");
  const filter = compileFilters(options.filters ?? []);
  // Setting an ACL is a change of exposure: an --include that selects nothing must not make
  // every object under the prefix public.
  const useless = includesThatSelectNothing(options.filters ?? []);
  if (useless.length > 0) throw new UsageError(includeOnlyMessage(useless));
  const opener = new StoreOpener();
  const result: AclApplyResult = { applied: 0, failed: 0 };
  try {
    const store = await opener.open(location, {
      connection: { maxSockets: options.concurrency ?? 64, ...options.connection },
    });
    async function* selected() {
      for await (const object of store.list()) if (filter(object.key)) yield object;
    }
    const runner = new TaskRunner({ concurrency: options.concurrency ?? 64 });
    await runner.run(selected(), async (object) => {
      if (!options.dryRun) {
        const done = await runner.attempt(`acl ${object.key}`, () => store.putAcl!(object.key, options.acl));
        if (!done.ok) {
          if (done.stopsRun) return;
          result.failed++;
          options.onEvent?.({ type: "error", key: object.key, code: done.info.code, message: done.info.message });
          return;
        }
      }
      result.applied++;
      options.onEvent?.({ type: "acl", key: object.key, acl: options.acl, dryRun: options.dryRun ?? false });
    });
    result.fatal = runner.fatal;
    return result;
  } finally {
    await opener.close();
  }
}
