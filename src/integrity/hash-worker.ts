/**
 * The worker thread of an off-thread ContentHasher (etag.ts): hashes the buffers it is sent, in
 * order, and sends each one back to be filled again; at "end" it sends the hashes.
 */
import { parentPort, workerData } from "node:worker_threads";
import { PartHashes } from "./etag.js";

const hashes = new PartHashes((workerData as { partSizes: number[] }).partSizes);

parentPort!.on("message", (m: { buffer: Uint8Array; length: number } | "end") => {
  if (m === "end") {
    parentPort!.postMessage({ hashes: hashes.result() });
    return;
  }
  hashes.update(m.buffer.subarray(0, m.length));
  parentPort!.postMessage({ buffer: m.buffer }, [m.buffer.buffer as ArrayBuffer]);
});
