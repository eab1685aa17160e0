/**
 * The tools under test and how each one is run: command line, environment, and a temporary
 * config file where the tool needs one. Nothing here touches the user's own config files
 * (~/.aws, ~/.config/rclone, ~/.s3cfg): every peer is pointed at a file under the run's temp dir.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO, baseChildEnv, log, type ServerInfo } from "./common.js";
import { runQuiet, type CommandSpec } from "./measure.js";

export interface Endpoint {
  /** "direct" or "proxy" (through the latency proxy). */
  network: string;
  url: string;
  port: number;
}

export interface ToolContext {
  server: ServerInfo;
  /** The compiled code to run: a snapshot of dist/ taken when the run started (others may rebuild dist meanwhile). */
  distDir: string;
  endpoint: Endpoint;
  tmpDir: string;
  peers: Peers;
}

/** One side of a sync: a bucket, or a local folder (uploads and downloads). */
export type Side = { bucket: string } | { dir: string };

export interface Tool {
  id: string;
  label: string;
  /** The settings it runs with, for the report. */
  settings: string;
  /** Whether it syncs local folders too (the upload and download benchmarks). */
  local: boolean;
  sync(src: Side, dst: Side, ctx: ToolContext): CommandSpec;
}

/** `s3://bucket` or the folder's path, as aws-cli, bucketsync and (with a trailing slash) s3cmd spell them. */
function s3Url(side: Side, slash = ""): string {
  return "bucket" in side ? `s3://${side.bucket}${slash}` : side.dir + slash;
}

/** rclone's spelling: `remote:bucket` or the folder's path. */
function rcloneSide(side: Side): string {
  return "bucket" in side ? `${RCLONE_REMOTE}:${side.bucket}` : side.dir;
}

function bucketOf(side: Side): string {
  if (!("bucket" in side)) throw new Error("this tool syncs buckets only");
  return side.bucket;
}

export interface Peer {
  path: string;
  version: string;
  /** Installed by this run (from Debian), or found on the machine. */
  installed: boolean;
}

export interface Peers {
  aws: Peer;
  rclone: Peer;
  s3cmd: Peer;
  /** Only for the uploads' and downloads' floor (bench/floor.ts), not a peer of its own. */
  curl: Peer;
}

// ------------------------------------------------------------------ config files

function writeOnce(file: string, text: string): string {
  if (!existsSync(file)) writeFileSync(file, text, { mode: 0o600 });
  return file;
}

function awsEnv(ctx: ToolContext, maxConcurrentRequests?: number): NodeJS.ProcessEnv {
  const name = maxConcurrentRequests ? `aws-config-c${maxConcurrentRequests}` : "aws-config-default";
  const s3Section = maxConcurrentRequests ? `s3 =\n    max_concurrent_requests = ${maxConcurrentRequests}\n` : "";
  const config = writeOnce(join(ctx.tmpDir, name), `[default]\nregion = ${ctx.server.region}\n${s3Section}`);
  const credentials = writeOnce(join(ctx.tmpDir, "aws-credentials-empty"), "");
  return {
    ...baseChildEnv(ctx.server),
    AWS_CONFIG_FILE: config,
    AWS_SHARED_CREDENTIALS_FILE: credentials,
    AWS_PAGER: "",
  };
}

export const RCLONE_REMOTE = "bench";

export function rcloneConfig(ctx: ToolContext): string {
  const { accessKeyId, secretAccessKey } = ctx.server.credentials;
  return writeOnce(
    join(ctx.tmpDir, `rclone-${ctx.endpoint.port}.conf`),
    [
      `[${RCLONE_REMOTE}]`,
      "type = s3",
      "provider = Ceph",
      "env_auth = false",
      `access_key_id = ${accessKeyId}`,
      `secret_access_key = ${secretAccessKey}`,
      `region = ${ctx.server.region}`,
      `endpoint = ${ctx.endpoint.url}`,
      "force_path_style = true",
      "",
    ].join("\n"),
  );
}

/** rclone refuses to start while AWS_CA_BUNDLE is set (see shared/notes/test-s3-server.md). */
export function rcloneEnv(ctx: ToolContext): NodeJS.ProcessEnv {
  const env = baseChildEnv(ctx.server);
  delete env.AWS_CA_BUNDLE;
  return env;
}

function s3cmdConfig(ctx: ToolContext): string {
  const { accessKeyId, secretAccessKey } = ctx.server.credentials;
  const hostPort = `127.0.0.1:${ctx.endpoint.port}`;
  return writeOnce(
    join(ctx.tmpDir, `s3cmd-${ctx.endpoint.port}.cfg`),
    [
      "[default]",
      `access_key = ${accessKeyId}`,
      `secret_key = ${secretAccessKey}`,
      `host_base = ${hostPort}`,
      `host_bucket = ${hostPort}`, // no %(bucket)s: path-style requests
      `bucket_location = ${ctx.server.region}`,
      "use_https = False",
      "signature_v2 = False",
      "",
    ].join("\n"),
  );
}

// ------------------------------------------------------------------ the tools

export const TOOLS: Tool[] = [
  {
    id: "bucketsync",
    label: "bucketsync",
    settings: "defaults (64 requests in flight)",
    local: true,
    sync: (src, dst, ctx) => ({
      label: "bucketsync",
      cmd: process.execPath,
      args: [
        join(ctx.distDir, "src", "cli", "bin.js"),
        "sync",
        s3Url(src),
        s3Url(dst),
        "--endpoint-url",
        ctx.endpoint.url,
      ],
      env: baseChildEnv(ctx.server),
    }),
  },
  {
    id: "aws-cli",
    label: "aws-cli",
    settings: "defaults (10 requests)",
    local: true,
    sync: (src, dst, ctx) => ({
      label: "aws-cli",
      cmd: ctx.peers.aws.path,
      args: ["s3", "sync", s3Url(src), s3Url(dst), "--endpoint-url", ctx.endpoint.url],
      env: awsEnv(ctx),
    }),
  },
  {
    id: "aws-cli-64",
    label: "aws-cli (64 requests)",
    settings: "max_concurrent_requests = 64",
    local: true,
    sync: (src, dst, ctx) => ({
      label: "aws-cli (64 requests)",
      cmd: ctx.peers.aws.path,
      args: ["s3", "sync", s3Url(src), s3Url(dst), "--endpoint-url", ctx.endpoint.url],
      env: awsEnv(ctx, 64),
    }),
  },
  {
    id: "rclone",
    label: "rclone",
    settings: "defaults (--transfers 4 --checkers 8)",
    local: true,
    sync: (src, dst, ctx) => ({
      label: "rclone",
      cmd: ctx.peers.rclone.path,
      args: ["--config", rcloneConfig(ctx), "sync", rcloneSide(src), rcloneSide(dst)],
      env: rcloneEnv(ctx),
    }),
  },
  {
    id: "rclone-64",
    label: "rclone (64 transfers)",
    settings: "--transfers 64 --checkers 64 --fast-list",
    local: true,
    sync: (src, dst, ctx) => ({
      label: "rclone (64 transfers)",
      cmd: ctx.peers.rclone.path,
      args: [
        "--config",
        rcloneConfig(ctx),
        "sync",
        rcloneSide(src),
        rcloneSide(dst),
        "--transfers",
        "64",
        "--checkers",
        "64",
        "--fast-list",
      ],
      env: rcloneEnv(ctx),
    }),
  },
  {
    id: "s3cmd",
    label: "s3cmd",
    settings: "defaults (one request at a time)",
    local: true,
    sync: (src, dst, ctx) => ({
      label: "s3cmd",
      cmd: ctx.peers.s3cmd.path,
      args: ["-c", s3cmdConfig(ctx), "sync", s3Url(src, "/"), s3Url(dst, "/")],
      env: baseChildEnv(ctx.server),
    }),
  },
  {
    id: "bare-sdk",
    label: "bare SDK loop",
    settings: "SDK v3 ListObjectsV2 + CopyObject, 64 in flight",
    local: false,
    sync: (src, dst, ctx) => ({
      label: "bare SDK loop",
      cmd: process.execPath,
      args: [
        join(ctx.distDir, "bench", "bare-sdk.js"),
        "sync",
        bucketOf(src),
        bucketOf(dst),
        "--endpoint-url",
        ctx.endpoint.url,
        "--concurrency",
        "64",
      ],
      env: baseChildEnv(ctx.server),
    }),
  },
];

// ------------------------------------------------------------------ installing and finding the peers

async function which(name: string): Promise<string | undefined> {
  const r = await runQuiet("bash", ["-c", `command -v ${name}`]);
  return r.code === 0 ? r.stdout.trim() : undefined;
}

/** A pyenv shim re-execs through bash and pyenv on every call; measure the real program instead. */
async function resolveShim(path: string): Promise<string> {
  if (!path.includes("/.pyenv/shims/")) return path;
  const r = await runQuiet("pyenv", ["which", path.split("/").pop()!]).catch(() => undefined);
  return r && r.code === 0 && r.stdout.trim() ? r.stdout.trim() : path;
}

async function versionOf(cmd: string, args: string[], env?: NodeJS.ProcessEnv): Promise<string> {
  const r = await runQuiet(cmd, args, env);
  return (r.stdout + r.stderr).trim().split("\n")[0] ?? "unknown";
}

let aptUpdated = false;
async function aptInstall(packages: string[]): Promise<void> {
  if (packages.length === 0) return;
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  if (!aptUpdated) {
    log("apt-get update");
    const u = await runQuiet("apt-get", ["update"], env);
    if (u.code !== 0) throw new Error(`apt-get update failed: ${u.stderr.slice(-500)}`);
    aptUpdated = true;
  }
  log(`apt-get install -y ${packages.join(" ")}`);
  const r = await runQuiet("apt-get", ["install", "-y", "--no-install-recommends", ...packages], env);
  if (r.code !== 0) throw new Error(`apt-get install ${packages.join(" ")} failed: ${r.stderr.slice(-500)}`);
}

/** Installs what is missing (Debian packages only), then records paths and versions. */
export async function ensurePeers(): Promise<Peers> {
  const wanted: [keyof Peers, string][] = [
    ["aws", "awscli"],
    ["rclone", "rclone"],
    ["s3cmd", "s3cmd"],
    ["curl", "curl"],
  ];
  const found: Partial<Record<keyof Peers, string>> = {};
  const missing: string[] = [];
  for (const [bin, pkg] of wanted) {
    const path = await which(bin);
    if (path) found[bin] = path;
    else missing.push(pkg);
  }
  if (!existsSync("/usr/bin/time")) missing.push("time");
  await aptInstall(missing);

  const peer = async (bin: keyof Peers, versionArgs: string[], env?: NodeJS.ProcessEnv): Promise<Peer> => {
    const path = await resolveShim(found[bin] ?? (await which(bin)) ?? "");
    if (!path) throw new Error(`${bin} is not installed and could not be installed`);
    return { path, version: await versionOf(path, versionArgs, env), installed: !found[bin] };
  };
  const noCaBundle = { ...process.env };
  delete noCaBundle.AWS_CA_BUNDLE;
  return {
    aws: await peer("aws", ["--version"]),
    rclone: await peer("rclone", ["version"], noCaBundle),
    s3cmd: await peer("s3cmd", ["--version"]),
    curl: await peer("curl", ["--version"]),
  };
}

/** Versions of bucketsync and its runtime, for the report. */
export async function ownVersions(): Promise<{ bucketsync: string; node: string; sdk: string }> {
  const pkg = JSON.parse(readFileSync(join(REPO, "package.json"), "utf8"));
  const sdk = JSON.parse(
    readFileSync(join(REPO, "node_modules", "@aws-sdk", "client-s3", "package.json"), "utf8"),
  ).version;
  const head = await runQuiet("git", ["-C", REPO, "rev-parse", "--short", "HEAD"]).catch(() => undefined);
  const dirty = await runQuiet("git", ["-C", REPO, "status", "--porcelain", "--untracked-files=no"]).catch(
    () => undefined,
  );
  const commit = head?.code === 0 ? head.stdout.trim() + (dirty?.stdout.trim() ? "+dirty" : "") : "unknown";
  return { bucketsync: `${pkg.version} (${commit})`, node: process.version, sdk: `@aws-sdk/client-s3 ${sdk}` };
}
