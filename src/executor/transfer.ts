import { classifyError } from "../core/errors.js";
import { UsageError, type ObjectInfo, type ObjectStore, type WriteOptions } from "../core/types.js";

/**
 * Puts source objects at the same keys in the target: server-side when the target can copy from
 * the source, otherwise streamed get -> put without buffering whole objects. Decided once per
 * run; when a server-side copy across accounts is refused (AccessDenied on the copy source), it
 * says so once and streams from then on instead of failing every object.
 */
export class Transferer {
  private serverSide: boolean;
  private readonly mayBeRefused: boolean;

  constructor(
    private readonly source: ObjectStore,
    private readonly target: ObjectStore,
    private readonly onWarning: (message: string) => void = () => undefined,
  ) {
    const can = target.copyFrom ? (target.canCopyFrom?.(source) ?? false) : false;
    this.serverSide = can !== false;
    this.mayBeRefused = can === "maybe";
  }

  private copyAcl(key: string): Promise<void> {
    return copyAclBetween(this.source, this.target, key);
  }

  /** "server-side" or "streaming": how objects travel now. */
  get route(): "server-side" | "streaming" {
    return this.serverSide ? "server-side" : "streaming";
  }

  async transfer(object: ObjectInfo, opts: WriteOptions): Promise<void> {
    await this.move(object, opts);
    if (opts.preserveAcl) await this.copyAcl(object.key);
  }

  private async move(object: ObjectInfo, opts: WriteOptions): Promise<void> {
    // A key the target can never hold (an unsafe path in a folder) fails before any byte is fetched.
    const refused = this.target.refusal?.(object);
    if (refused) throw Object.assign(new Error(refused.message), { name: refused.code, code: refused.code });
    if (this.serverSide) {
      try {
        await this.target.copyFrom!(this.source, object, opts);
        return;
      } catch (err) {
        if (!this.mayBeRefused || classifyError(err).code !== "AccessDenied") throw err;
        if (this.serverSide) {
          this.serverSide = false;
          this.onWarning(
            `server-side copy from ${this.source.description} to ${this.target.description} was refused (AccessDenied); streaming objects through this machine instead`,
          );
        }
      }
    }
    await streamObject(this.source, this.target, object, opts);
  }
}

/**
 * --preserve-acl: the source's grants on the copy. Grants to the source's owner become grants to
 * the target object's owner (another account owns the copy); group and other-user grants travel
 * as they are, and the target refuses the ones it cannot express.
 */
async function copyAclBetween(source: ObjectStore, target: ObjectStore, key: string): Promise<void> {
  if (!source.getAcl || !target.getAcl || !target.putAcl) throw new UsageError("--preserve-acl needs S3 on both sides");
  const [from, current] = await Promise.all([source.getAcl(key), target.getAcl(key)]);
  const grants = from.grants.map((g) =>
    g.grantee.type === "CanonicalUser" && g.grantee.id === from.ownerId && current.ownerId
      ? { ...g, grantee: { type: "CanonicalUser" as const, id: current.ownerId } }
      : g,
  );
  await target.putAcl(key, { ownerId: current.ownerId, grants });
}

async function streamObject(source: ObjectStore, target: ObjectStore, object: ObjectInfo, opts: WriteOptions): Promise<void> {
  const { body, details } = await source.get(object.key);
  const { key: _key, size, lastModified: _lm, etag: _etag, ...props } = details;
  try {
    // The listing's time is the one comparisons use, so a local target takes it as the file's mtime.
    await target.put(object.key, body, size, { ...props, lastModified: object.lastModified }, opts);
  } finally {
    if (!Buffer.isBuffer(body)) body.destroy();
  }
}
