import http from "node:http";
import https from "node:https";
import type { S3Client } from "@aws-sdk/client-s3";
import { defaultProvider } from "@aws-sdk/credential-provider-node";
import type { AwsCredentialIdentity } from "@aws-sdk/types";
import { LeanS3Client, type Reachability } from "./lean-client.js";
import { UsageError } from "../../core/types.js";
import { canonicalEndpoint, checkEndpointUrl, maskEndpoint } from "../../core/endpoint.js";
import { kindOfCommand, type RequestMeter } from "../../core/meter.js";

// The SDK warns on Node 20 that future releases need Node 22; we pin the SDK, so the warning
// would only pollute users' terminals and --json streams.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";

/** How to reach one S3 endpoint. Credentials come from the standard AWS chain unless given. */
export interface S3ConnectionOptions {
  endpointUrl?: string;
  region?: string;
  profile?: string;
  /** Path-style addressing; defaults to true when an endpoint URL is given (S3-compatible servers). */
  forcePathStyle?: boolean;
  /** For library users who hold credentials already. Never logged. */
  credentials?: AwsCredentialIdentity;
  /** Sockets per endpoint; sized to the run's concurrency. */
  maxSockets?: number;
  /** Request timeout in milliseconds (0 = none). */
  requestTimeoutMs?: number;
}

const SILENT_LOGGER = { trace() {}, debug() {}, info() {}, warn() {}, error() {} };

/** How long a server that has never answered gets for its first answer. */
export const FIRST_ANSWER_TIMEOUT_MS = 20_000;

/** Whether an endpoint has answered yet; every error of the connection is annotated with it. */
class EndpointReachability implements Reachability {
  reached = false;
  constructor(
    private readonly endpoint: string,
    readonly firstAnswerTimeoutMs: number,
  ) {}
  answered(): void {
    this.reached = true;
  }
  annotate(err: unknown): unknown {
    if (err && typeof err === "object") Object.assign(err, { $endpoint: this.endpoint, $reachedBefore: this.reached });
    return err;
  }
}

/**
 * The full SDK loads on first use only: a sync between buckets needs just the lean client, and
 * loading @aws-sdk/client-s3 costs ~0.2 s of CPU at every start.
 */
let sdk: Promise<typeof import("@aws-sdk/client-s3")> | undefined;
export function sdkModule(): Promise<typeof import("@aws-sdk/client-s3")> {
  return (sdk ??= import("@aws-sdk/client-s3"));
}

export interface S3Connection {
  /** The SDK client, created on first use (head, get, put, multipart, tags, ACLs, versions). */
  sdkClient(): Promise<S3Client>;
  close(): Promise<void>;
  /** The hot calls (list, copy, delete) without the SDK's per-request overhead. */
  lean: LeanS3Client;
  /** Two stores can copy server-side only when they share this: same endpoint and identity. */
  identity: string;
  endpointUrl?: string;
  /** The region and the one credential provider both clients sign with (for another service on the same endpoint, e.g. SNS). Never logged. */
  region: string;
  credentials: S3ConnectionOptions["credentials"] | ReturnType<typeof defaultProvider>;
}

/**
 * A named profile must exist in the shared config or credentials file (aws-cli's rule): a typo
 * is one line naming it, not the SDK's "could not load credentials from any providers".
 */
async function requireProfile(profile: string | undefined): Promise<void> {
  if (profile === undefined) return;
  const { loadSharedConfigFiles } = await import("@smithy/core/config");
  type Files = { configFile?: Record<string, unknown>; credentialsFile?: Record<string, unknown> };
  const files: Files = await loadSharedConfigFiles({ ignoreCache: false }).catch((): Files => ({}));
  if (files.configFile?.[profile] || files.credentialsFile?.[profile]) return;
  throw new UsageError(`the profile '${profile}' was not found in the AWS config or credentials file`);
}

export async function connectS3(
  given: S3ConnectionOptions,
  run: { signal?: AbortSignal; meter?: RequestMeter } = {},
): Promise<S3Connection> {
  await requireProfile(given.profile);
  // One spelling per endpoint: `http://h:80/` and `http://h` are one server (and may copy server-side).
  const options = { ...given, endpointUrl: canonicalEndpoint(given.endpointUrl) };
  const region = await resolveRegion(options);
  const forcePathStyle = options.forcePathStyle ?? options.endpointUrl !== undefined;
  // One credential provider for both clients: resolved once, refreshed by the SDK's chain.
  const credentials = options.credentials ?? defaultProvider(options.profile ? { profile: options.profile } : {});
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 64, keepAliveMsecs: 10_000 };
  const requestTimeoutMs = options.requestTimeoutMs ?? 120_000;
  const reachability = new EndpointReachability(
    maskEndpoint(options.endpointUrl ?? `https://s3.${region}.amazonaws.com`),
    Math.min(FIRST_ANSWER_TIMEOUT_MS, requestTimeoutMs || FIRST_ANSWER_TIMEOUT_MS),
  );
  let client: Promise<S3Client> | undefined;
  const makeClient = async () => {
    const { NodeHttpHandler } = await import("@smithy/node-http-handler");
    const sdkClient = new (await sdkModule()).S3Client({
      region,
      endpoint: options.endpointUrl,
      forcePathStyle,
      credentials,
      // Follows 301s to the bucket's real region on AWS.
      followRegionRedirects: true,
      // aws-chunked uploads with trailing checksums break radosgw, MinIO versions and other S3-compatible servers.
      requestChecksumCalculation: "WHEN_REQUIRED",
      responseChecksumValidation: "WHEN_REQUIRED",
      maxAttempts: 1, // the executor retries by error class; the SDK must not multiply that
      // The SDK's own warnings (e.g. on a failed streaming upload) would go to the console,
      // through --json streams; every failure is reported by the executor instead.
      logger: SILENT_LOGGER,
      requestHandler: new NodeHttpHandler({
        httpAgent: new http.Agent(agentOptions),
        httpsAgent: new https.Agent(agentOptions),
        connectionTimeout: 10_000,
        requestTimeout: requestTimeoutMs,
      }),
    });
    // Any HTTP answer (errors included) proves the endpoint is there; a failure without one is
    // annotated like the lean client's, so both classify the same way.
    sdkClient.middlewareStack.add(
      (next) => async (args) => {
        try {
          const out = await next(args);
          reachability.answered();
          return out;
        } catch (err) {
          if ((err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode !== undefined) {
            reachability.answered();
            const bucket = (args.input as { Bucket?: string })?.Bucket;
            if (err && typeof err === "object" && bucket) Object.assign(err, { $bucket: bucket });
          }
          reachability.annotate(err);
          throw err;
        }
      },
      // Outermost, so it sees the errors the deserializer and the retries throw.
      { step: "initialize", name: "bucketsyncReachability", priority: "high" },
    );
    // Every request of the SDK client is counted and held to --tpslimit like the lean client's
    // (one send is one request: the SDK does not retry, maxAttempts 1). Before signing ("build").
    const meter = run.meter;
    if (meter)
      sdkClient.middlewareStack.add(
        (next, context) => async (args) => {
          const kind = kindOfCommand(context.commandName ?? "");
          await meter.begin(kind);
          try {
            const out = await next(args);
            meter.end(kind, (out.response as { statusCode?: number })?.statusCode ?? 200);
            return out;
          } catch (err) {
            meter.end(kind, (err as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode ?? "error");
            throw err;
          }
        },
        { step: "build", name: "bucketsyncMeter", priority: "low" },
      );
    return sdkClient;
  };
  const identity = JSON.stringify([
    options.endpointUrl ?? "aws",
    options.profile ?? "",
    options.credentials?.accessKeyId ?? "",
  ]);
  const lean = new LeanS3Client({
    endpoint: options.endpointUrl,
    region,
    forcePathStyle,
    credentials,
    connections: options.maxSockets ?? 64,
    requestTimeoutMs,
    reachability,
    signal: run.signal,
    meter: run.meter,
  });
  return {
    sdkClient: () => (client ??= makeClient()),
    close: async () => {
      if (client) (await client).destroy();
      await lean.close();
    },
    lean,
    identity,
    endpointUrl: options.endpointUrl,
    region,
    credentials,
  };
}

/**
 * The endpoint as aws-cli and the SDK find it: the given one (--endpoint-url), else
 * AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL, then `endpoint_url` of the profile (or of its `services`
 * section's s3 settings); none of them when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS is true.
 * Undefined means AWS itself.
 */
export async function resolveEndpointUrl(options: S3ConnectionOptions): Promise<string | undefined> {
  if (options.endpointUrl !== undefined) return options.endpointUrl;
  const env = process.env;
  if (/^true$/i.test(env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS ?? "")) return undefined;
  const fromEnv = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL;
  if (fromEnv) {
    checkEndpointUrl(env.AWS_ENDPOINT_URL_S3 ? "AWS_ENDPOINT_URL_S3" : "AWS_ENDPOINT_URL", fromEnv);
    return fromEnv;
  }
  // The SDK's own shared-config loader (the files aws-cli reads), with the SDK's selectors' rules.
  const { loadConfig } = await import("@smithy/core/config");
  const found = await loadConfig<string | undefined>(
    {
      environmentVariableSelector: () => undefined,
      configFileSelector: (profile, config) => {
        const services = profile.services ? config?.[`services.${profile.services}`] : undefined;
        return services?.["s3.endpoint_url"] ?? profile.endpoint_url ?? undefined;
      },
      default: undefined,
    },
    { profile: options.profile },
  )().catch(() => undefined);
  if (found) checkEndpointUrl(`endpoint_url of profile '${options.profile ?? env.AWS_PROFILE ?? "default"}'`, found);
  return found || undefined;
}

/** Region: flag, then the SDK's chain (environment, profile); us-east-1 when none is set. */
async function resolveRegion(options: S3ConnectionOptions): Promise<string> {
  if (options.region) return options.region;
  if (!options.profile && (process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION))
    return (process.env.AWS_REGION || process.env.AWS_DEFAULT_REGION)!;
  // The SDK's own region loader, without loading the SDK's S3 client (about 60 ms of every start).
  const { loadConfig, NODE_REGION_CONFIG_OPTIONS, NODE_REGION_CONFIG_FILE_OPTIONS } =
    await import("@smithy/core/config");
  try {
    return (
      (await loadConfig(NODE_REGION_CONFIG_OPTIONS, {
        ...NODE_REGION_CONFIG_FILE_OPTIONS,
        profile: options.profile,
      })()) || "us-east-1"
    );
  } catch {
    return "us-east-1";
  }
}
