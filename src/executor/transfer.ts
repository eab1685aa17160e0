import { classifyError } from "../core/errors.js";
import type { ObjectInfo, ObjectStore, WriteOptions } from "../core/types.js";

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

  /** "server-side" or "streaming": how objects travel now. */
  get route(): "server-side" | "streaming" {
    return this.serverSide ? "server-side" : "streaming";
  }

  async transfer(object: ObjectInfo, opts: WriteOptions): Promise<void> {
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

async function streamObject(source: ObjectStore, target: ObjectStore, object: ObjectInfo, opts: WriteOptions): Promise<void> {
  const { body, details } = await source.get(object.key);
  const { key: _key, size, lastModified: _lm, etag: _etag, ...props } = details;
  try {
    await target.put(object.key, body, size, props, opts);
  } finally {
    if (!Buffer.isBuffer(body)) body.destroy();
  }
}
