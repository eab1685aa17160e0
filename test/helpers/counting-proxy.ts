/**
 * A counting proxy (issue 16): the fault proxy with no faults, read as S3 bills requests. Tests
 * compare what bucketsync says it sent (its summary, its dry-run estimate) with what really
 * arrived, and check --tpslimit against arrival times, never against the tool's own output.
 */
import { startFaultProxy, type FaultProxy, type LoggedRequest } from "./fault-proxy.js";

export type Kind = "LIST" | "HEAD" | "GET" | "PUT" | "COPY" | "UploadPartCopy" | "DELETE";

/** The billing kind of an S3 operation as the fault proxy names it. */
export function kindOf(operation: string): Kind {
  if (/^List/.test(operation)) return "LIST";
  if (/^Head/.test(operation)) return "HEAD";
  if (operation === "CopyObject") return "COPY";
  if (operation === "UploadPartCopy") return "UploadPartCopy";
  if (/^(Delete|Abort)/.test(operation)) return "DELETE";
  if (/^Get/.test(operation)) return "GET";
  return "PUT";
}

export interface CountingProxy {
  proxy: FaultProxy;
  endpoint: string;
  /** Requests seen by kind (kinds with none left out). */
  kinds(from?: LoggedRequest[]): Partial<Record<Kind, number>>;
  /** Requests seen since the last reset. */
  total(): number;
  /** The most requests that arrived within any window of `windowMs` (sliding). */
  maxInWindow(windowMs?: number): number;
  reset(): void;
  close(): Promise<void>;
}

export async function startCountingProxy(target: string): Promise<CountingProxy> {
  const proxy = await startFaultProxy({ target, faultRate: 0 });
  const endpoint = proxy.url;
  return {
    proxy,
    endpoint,
    kinds(from = proxy.log) {
      const out: Partial<Record<Kind, number>> = {};
      for (const r of from) out[kindOf(r.operation)] = (out[kindOf(r.operation)] ?? 0) + 1;
      return out;
    },
    total: () => proxy.log.length,
    maxInWindow(windowMs = 1000) {
      const times = proxy.log.map((r) => r.at).sort((a, b) => a - b);
      let max = 0;
      for (let i = 0, j = 0; i < times.length; i++) {
        while (times[i]! - times[j]! >= windowMs) j++;
        max = Math.max(max, i - j + 1);
      }
      return max;
    },
    reset: () => {
      proxy.log.length = 0;
    },
    close: () => proxy.close(),
  };
}
