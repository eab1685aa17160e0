#!/usr/bin/env node
import { main } from "./main.js";
import { BatchedOutput } from "./format/batched.js";

// `bucketsync ... | head` closes the pipe early: that is not an error worth a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
}

// No top-level await: the single-executable build (scripts/sea.ts) bundles this file as CommonJS.
// Lines to a pipe or a file are written in batches; a terminal gets each line as it comes.
const out = process.stdout.isTTY
  ? process.stdout
  : (new BatchedOutput(process.stdout) as unknown as NodeJS.WriteStream);
void main(process.argv.slice(2), { out, err: process.stderr }).then((code) => {
  process.exitCode = code;
  // The run is over: a timer nothing awaits any more (a --tpslimit wait given up after Ctrl-C or
  // a cut-off) must not hold the process. Output has long been flushed 200 ms later.
  setTimeout(() => process.exit(code), 200).unref();
});
