/** Text of the distributed commands' output. */
import type { RunStatus } from "../../distributed/status.js";
import { humanBytes } from "./render.js";

export function formatRun(run: RunStatus): string {
  const when = new Date(run.finishedAt ?? run.createdAt).toISOString();
  let text =
    `run ${run.runId}#${run.generation}: ${run.source} -> ${run.target}: ${run.state}${run.finishedAt ? ` at ${when}` : `, started ${when}`}${run.note && run.state !== "done" ? ` (${run.note})` : ""}\n` +
    `  ranges: ${run.ranges} total, ${run.pending} pending, ${run.running} running, ${run.done} done, ${run.failed} failed\n`;
  if (run.summary) {
    const s = run.summary;
    text += `  summary: ${s.copied} copied, ${s.updated} updated, ${s.deleted} deleted, ${s.skipped} unchanged, ${s.failed} failed, ${humanBytes(s.bytes)} in ${(s.durationMs / 1000).toFixed(1)}s\n`;
  }
  for (const f of run.failedRanges) text += `  failed range ${f.index + 1} (${f.range}): ${f.reason}\n`;
  return text;
}
