/**
 * A local folder source's events (issue 18): file-system events through chokidar, with
 * write-completion settling (`awaitWriteFinish`): a file is reported once its size has not
 * changed for `settleMs`, so a file still being written is not uploaded half-way. Like bucket
 * notifications these are hints: each key is read again (stat) before anything is written or
 * deleted. A removed folder asks for a reconcile (a full listing) rather than guessing which
 * keys went with it.
 */
import { basename, relative, sep } from "node:path";
import { isTempName } from "../stores/local/keys.js";
import type { FSWatcher } from "chokidar";
import type { ChangeHint, EventSource } from "./events.js";

export const DEFAULT_SETTLE_MS = 2000;

export class FolderEventSource implements EventSource {
  private watcher?: FSWatcher;
  private problem?: string;
  readonly refused = 0;

  constructor(
    private readonly root: string,
    private readonly settings: { followSymlinks?: boolean; settleMs?: number },
    private readonly hooks: { onHints(hints: ChangeHint[]): void; onReconcile(reason: string): void },
  ) {}

  get description(): string {
    return `file-system events of ${this.root}`;
  }

  async start(): Promise<void> {
    const { watch } = await import("chokidar");
    const settle = this.settings.settleMs ?? DEFAULT_SETTLE_MS;
    const watcher = watch(this.root, {
      ignoreInitial: true,
      followSymlinks: this.settings.followSymlinks ?? false,
      awaitWriteFinish: { stabilityThreshold: settle, pollInterval: Math.min(100, settle) },
      // bucketsync's own temporary files in a local folder (stores/local/keys.ts names them).
      ignored: (path: string) => isTempName(basename(path)),
    });
    const hint = (path: string) => {
      const key = relative(this.root, path).split(sep).join("/");
      if (key === "" || key.startsWith("../")) return;
      this.hooks.onHints([{ key, time: Date.now() }]);
    };
    watcher.on("add", hint).on("change", hint).on("unlink", hint);
    watcher.on("unlinkDir", (path: string) =>
      this.hooks.onReconcile(`the folder ${relative(this.root, path).split(sep).join("/")} was removed or renamed`),
    );
    watcher.on("error", (err: unknown) => {
      this.problem = `the file-system watcher failed: ${(err as Error)?.message ?? String(err)}`;
    });
    await new Promise<void>((resolve) => watcher.once("ready", () => resolve()));
    this.watcher = watcher;
  }

  async check(): Promise<string | undefined> {
    return this.problem;
  }

  async stop(): Promise<void> {
    await this.watcher?.close();
    this.watcher = undefined;
  }
}
