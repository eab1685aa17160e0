import type { ObjectInfo, ObjectStore, WriteOptions } from "../core/types.js";

/**
 * Puts one source object at the same key in the target: server-side when the target can copy
 * from this source, otherwise streamed get -> put without buffering the whole object.
 */
export async function transferObject(source: ObjectStore, target: ObjectStore, object: ObjectInfo, opts: WriteOptions): Promise<void> {
  if (target.copyFrom && target.canCopyFrom?.(source)) {
    await target.copyFrom(source, object, opts);
    return;
  }
  const { body, details } = await source.get(object.key);
  const { key: _key, size, lastModified: _lm, etag: _etag, ...props } = details;
  try {
    await target.put(object.key, body, size, props, opts);
  } finally {
    if (!Buffer.isBuffer(body)) body.destroy();
  }
}
