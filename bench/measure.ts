/**
 * Runs one command under GNU time and measures what it cost:
 *  - wall time (monotonic clock around the child),
 *  - client CPU (user + sys) and peak RSS of the child and every descendant it waited for, from
 *    `/usr/bin/time -f '%e %U %S %M'`,
 *  - the S3 server's CPU: utime + stime of its ceph-mon, ceph-osd and radosgw processes
 *    (/proc/PID/stat) before and after, and radosgw's request counters (its admin socket),
 *  - the latency proxy's CPU when one is in the path, and
 *  - "other" CPU: everything else the machine did meanwhile (/proc/stat), i.e. noise from
 *    other users of this 2-core machine.
 * Every child runs in its own process group and is killed (TERM, then KILL) on timeout.
 */
import { spawn } from "node:child_process";
import { closeSync, existsSync, openSync, readFileSync, readSync, readdirSync, rmSync, statSync } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { performance } from "node:perf_hooks";

const CLK_TCK = 100; // USER_HZ on Linux; `getconf CLK_TCK` says 100 here

function readStatTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 2 (comm) may contain spaces and parentheses: split after its closing parenthesis.
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return Number(rest[11]) + Number(rest[12]); // utime (field 14) + stime (field 15)
  } catch {
    return undefined;
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ").trim();
  } catch {
    return "";
  }
}

/** Busy ticks of the whole machine, all CPUs (user, nice, system, irq, softirq, steal). */
function machineBusyTicks(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0]!;
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return user! + nice! + system! + irq! + softirq! + (steal ?? 0);
}

export interface RgwCounters {
  requests: number;
  failedRequests: number;
}

/** The daemons of one local cluster (by its folder), found by pid file and checked by command line. */
export class ServerProbe {
  readonly pids: Record<string, number> = {};

  constructor(readonly serverDir: string) {
    const conf = join(serverDir, "ceph.conf");
    const names: Record<string, RegExp> = { mon: /ceph-mon/, osd: /ceph-osd/, rgw: /radosgw(?!-admin)/ };
    for (const [name, pattern] of Object.entries(names)) {
      const file = join(serverDir, "pids", name);
      const pid = existsSync(file) ? Number(readFileSync(file, "utf8").trim()) : NaN;
      if (pid > 0 && pattern.test(cmdline(pid)) && cmdline(pid).includes(conf)) {
        this.pids[name] = pid;
        continue;
      }
      // Fallback: scan /proc for the daemon started with our ceph.conf (another cluster may run beside it).
      for (const entry of readdirSync("/proc")) {
        if (!/^\d+$/.test(entry)) continue;
        const cl = cmdline(Number(entry));
        if (pattern.test(cl.split(" ")[0] ?? "") && cl.includes(conf)) this.pids[name] = Number(entry);
      }
    }
    for (const name of Object.keys(names))
      if (!this.pids[name]) throw new Error(`cannot find the ${name} daemon of ${serverDir}; is the server running?`);
  }

  /** CPU seconds used so far, per daemon. */
  cpu(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, pid] of Object.entries(this.pids)) out[name] = (readStatTicks(pid) ?? NaN) / CLK_TCK;
    return out;
  }

  alive(): boolean {
    return Object.values(this.pids).every((pid) => readStatTicks(pid) !== undefined);
  }

  /** radosgw's `perf dump` counters through its admin socket (the protocol `ceph --admin-daemon` speaks). */
  async rgwCounters(): Promise<RgwCounters | undefined> {
    const path = join(this.serverDir, "run", "client.rgw.bucketsync.asok");
    if (!existsSync(path)) return undefined;
    try {
      const body = await new Promise<Buffer>((resolve, reject) => {
        const sock = net.connect(path);
        const chunks: Buffer[] = [];
        sock.setTimeout(5000, () => sock.destroy(new Error("admin socket timeout")));
        sock.on("connect", () => sock.write(JSON.stringify({ prefix: "perf dump" }) + "\0"));
        sock.on("data", (c) => chunks.push(c));
        sock.on("error", reject);
        sock.on("close", () => resolve(Buffer.concat(chunks)));
      });
      const length = body.readUInt32BE(0);
      const dump = JSON.parse(body.subarray(4, 4 + length).toString("utf8"));
      return { requests: dump.rgw.req, failedRequests: dump.rgw.failed_req };
    } catch {
      return undefined;
    }
  }
}

export interface RequestCounts {
  total: number;
  byMethod: Record<string, number>;
  /** Responses with status 400 or above. */
  errors: number;
}

const MONTHS: Record<string, number> = {
  Jan: 0,
  Feb: 1,
  Mar: 2,
  Apr: 3,
  May: 4,
  Jun: 5,
  Jul: 6,
  Aug: 7,
  Sep: 8,
  Oct: 9,
  Nov: 10,
  Dec: 11,
};

/**
 * radosgw's access log (the `beast:` lines of its log file): counts the requests a run made to its
 * own buckets. Unlike radosgw's request counter, this ignores other clients of a shared server.
 */
export class RgwAccessLog {
  constructor(readonly file: string) {}

  size(): number {
    try {
      return statSync(this.file).size;
    } catch {
      return 0;
    }
  }

  /** Requests to `buckets` that started between startMs and endMs, logged after byte `offset`. */
  async count(offset: number, startMs: number, endMs: number, buckets: string[]): Promise<RequestCounts | undefined> {
    if (!existsSync(this.file)) return undefined;
    // The log is written by a background thread: wait until it stops growing (at most 3 s).
    let size = this.size();
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 300));
      const now = this.size();
      if (now === size) break;
      size = now;
    }
    const length = size - offset;
    if (length <= 0) return { total: 0, byMethod: {}, errors: 0 };
    const buf = Buffer.alloc(length);
    const fd = openSync(this.file, "r");
    try {
      readSync(fd, buf, 0, length, offset);
    } finally {
      closeSync(fd);
    }
    const wanted = new Set(buckets);
    const counts: RequestCounts = { total: 0, byMethod: {}, errors: 0 };
    const line =
      /beast: \S+: \S+ - \S* \[(\d\d)\/(\w{3})\/(\d{4}):(\d\d):(\d\d):(\d\d)(?:\.(\d+))? ([+-]\d{4})\] "(\w+) \/([^/?\s]*)[^"]*" (\d{3})/g;
    for (const m of buf.toString("utf8").matchAll(line)) {
      const [, dd, mon, yyyy, hh, mi, ss, frac = "0", tz, method, bucket, status] = m;
      if (!wanted.has(decodeURIComponent(bucket!))) continue;
      const tzMin = (tz![0] === "-" ? -1 : 1) * (Number(tz!.slice(1, 3)) * 60 + Number(tz!.slice(3)));
      const t =
        Date.UTC(
          Number(yyyy),
          MONTHS[mon!]!,
          Number(dd),
          Number(hh),
          Number(mi),
          Number(ss),
          Number(frac.padEnd(3, "0").slice(0, 3)),
        ) -
        tzMin * 60_000;
      if (t < startMs - 5 || t > endMs + 5) continue;
      counts.total++;
      counts.byMethod[method!] = (counts.byMethod[method!] ?? 0) + 1;
      if (Number(status) >= 400) counts.errors++;
    }
    return counts;
  }
}

/** Waits until the whole machine is nearly idle (other users' work must not land in a measurement). */
export async function waitForQuietMachine(
  maxWaitMs: number,
  busyCoresBelow = 0.3,
): Promise<{ waitedS: number; quiet: boolean }> {
  const started = performance.now();
  for (;;) {
    const a = machineBusyTicks();
    await new Promise((r) => setTimeout(r, 1000));
    const busyCores = (machineBusyTicks() - a) / CLK_TCK; // over one second
    const waitedS = round((performance.now() - started) / 1000, 1);
    if (busyCores < busyCoresBelow) return { waitedS, quiet: true };
    if (performance.now() - started > maxWaitMs) return { waitedS, quiet: false };
  }
}

export interface CommandSpec {
  /** For logs and the report. */
  label: string;
  cmd: string;
  args: string[];
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Exit codes that mean success (default [0]). */
  okExitCodes?: number[];
}

export interface Measurement {
  command: string;
  exitCode: number | null;
  ok: boolean;
  timedOut: boolean;
  wallS: number;
  userS: number;
  sysS: number;
  /** user + sys of the client process tree. */
  clientCpuS: number;
  peakRssMiB: number;
  serverCpuS: number;
  serverCpuByDaemon: Record<string, number>;
  /** Requests to this run's buckets, from radosgw's access log. */
  serverRequests: number | null;
  serverRequestsByMethod: Record<string, number>;
  serverRequestErrors: number | null;
  /** radosgw's request counter: every client of the server, including other users of a shared one. */
  serverRequestsAllClients: number | null;
  proxyCpuS: number | null;
  /** Machine-wide busy CPU not explained by client, server or proxy: other users' noise. */
  otherCpuS: number;
  stdoutFile: string;
  stderrFile: string;
  stderrTail: string;
  /** Set by the caller: how long it waited for an idle machine before the run, and whether it got one. */
  quietBefore?: { waitedS: number; quiet: boolean };
  /** Set by the caller: runs made to get this one (a disturbed run is repeated once). */
  attempts?: number;
  /** Wall times of discarded attempts. */
  discardedWallS?: number[];
}

/** Other work on the machine used more than a quarter of a core on average during the run. */
export function isNoisy(m: Measurement): boolean {
  return m.otherCpuS > 0.25 * m.wallS && m.otherCpuS > 0.5;
}

/** Children running now, so an interrupted bench can kill them. */
const running = new Set<number>();

export function killRunningChildren(): void {
  for (const pid of running) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      /* already gone */
    }
  }
}

/** Quotes a command line for display. */
export function displayCommand(cmd: string, args: string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(" ");
}

export async function runMeasured(
  spec: CommandSpec,
  opts: {
    server: ServerProbe;
    proxyPid?: number;
    timeoutMs: number;
    logBase: string;
    accessLog?: RgwAccessLog;
    buckets?: string[];
  },
): Promise<Measurement> {
  const timeFile = `${opts.logBase}.time`;
  const stdoutFile = `${opts.logBase}.out`;
  const stderrFile = `${opts.logBase}.err`;
  rmSync(timeFile, { force: true });
  const out = openSync(stdoutFile, "w");
  const err = openSync(stderrFile, "w");

  const rgwBefore = await opts.server.rgwCounters();
  const logOffset = opts.accessLog?.size() ?? 0;
  const startedMs = Date.now();
  const serverBefore = opts.server.cpu();
  const proxyBefore = opts.proxyPid ? readStatTicks(opts.proxyPid) : undefined;
  const machineBefore = machineBusyTicks();
  const started = performance.now();

  let timedOut = false;
  const exit = await new Promise<{ code: number | null }>((resolve, reject) => {
    const child = spawn("/usr/bin/time", ["-f", "%e %U %S %M", "-o", timeFile, "--", spec.cmd, ...spec.args], {
      cwd: spec.cwd,
      env: spec.env,
      stdio: ["ignore", out, err],
      detached: true, // own process group: a timeout kills the whole tree
    });
    const pid = child.pid!;
    running.add(pid);
    let killTimer: NodeJS.Timeout | undefined;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        process.kill(-pid, "SIGTERM");
      } catch {
        /* gone */
      }
      killTimer = setTimeout(() => {
        try {
          process.kill(-pid, "SIGKILL");
        } catch {
          /* gone */
        }
      }, 5000);
    }, opts.timeoutMs);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (killTimer) clearTimeout(killTimer);
      running.delete(pid);
      resolve({ code });
    });
  });

  const wallS = (performance.now() - started) / 1000;
  const endedMs = Date.now();
  const machineAfter = machineBusyTicks();
  const proxyAfter = opts.proxyPid ? readStatTicks(opts.proxyPid) : undefined;
  const serverAfter = opts.server.cpu();
  const rgwAfter = await opts.server.rgwCounters();
  const requests =
    opts.accessLog && opts.buckets
      ? await opts.accessLog.count(logOffset, startedMs, endedMs, opts.buckets)
      : undefined;
  closeSync(out);
  closeSync(err);

  // GNU time writes "Command exited with non-zero status N" or "Command terminated by signal N" first.
  const timeLines = existsSync(timeFile) ? readFileSync(timeFile, "utf8").trim().split("\n") : [];
  const [, userS = NaN, sysS = NaN, maxRssKiB = NaN] = (timeLines.at(-1) ?? "").split(" ").map(Number);
  const serverCpuByDaemon: Record<string, number> = {};
  for (const name of Object.keys(serverBefore))
    serverCpuByDaemon[name] = round(serverAfter[name]! - serverBefore[name]!, 2);
  const serverCpuS = Object.values(serverCpuByDaemon).reduce((a, b) => a + b, 0);
  const proxyCpuS = proxyBefore !== undefined && proxyAfter !== undefined ? (proxyAfter - proxyBefore) / CLK_TCK : null;
  const clientCpuS = userS + sysS;
  const machineS = (machineAfter - machineBefore) / CLK_TCK;
  const stderrText = readFileSync(stderrFile, "utf8");
  const okCodes = spec.okExitCodes ?? [0];
  return {
    command: displayCommand(spec.cmd, spec.args),
    exitCode: exit.code,
    ok: !timedOut && exit.code !== null && okCodes.includes(exit.code),
    timedOut,
    wallS: round(wallS, 3),
    userS,
    sysS,
    clientCpuS: round(clientCpuS, 2),
    peakRssMiB: round(maxRssKiB / 1024, 1),
    serverCpuS: round(serverCpuS, 2),
    serverCpuByDaemon,
    serverRequests: requests?.total ?? null,
    serverRequestsByMethod: requests?.byMethod ?? {},
    serverRequestErrors: requests?.errors ?? null,
    serverRequestsAllClients: rgwBefore && rgwAfter ? rgwAfter.requests - rgwBefore.requests : null,
    proxyCpuS: proxyCpuS === null ? null : round(proxyCpuS, 2),
    otherCpuS: round(Math.max(0, machineS - clientCpuS - serverCpuS - (proxyCpuS ?? 0)), 2),
    stdoutFile,
    stderrFile,
    stderrTail: stderrText.slice(-600),
  };
}

/** Runs a short helper command (installs, version probes); not measured. */
export function runQuiet(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  timeoutMs = 600_000,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"], detached: true });
    const pid = child.pid;
    if (pid) running.add(pid);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c) => (stdout += c));
    child.stderr.on("data", (c) => (stderr += c));
    const timer = setTimeout(() => {
      try {
        process.kill(-pid!, "SIGKILL");
      } catch {
        /* gone */
      }
    }, timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      if (pid) running.delete(pid);
      reject(e);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      if (pid) running.delete(pid);
      resolve({ code, stdout, stderr });
    });
  });
}

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
