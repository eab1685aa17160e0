/**
 * A bucket source's events (issue 18): an HTTP endpoint of the watcher's own that the S3 server
 * pushes bucket notifications to, a topic (SNS API on the same endpoint, as radosgw and other
 * SNS-compatible servers have it) whose push endpoint is that URL, and a notification
 * configuration on the source bucket for created and removed objects under the source prefix.
 *
 * Security: the push URL carries a random secret path token (32 bytes); any other path is 404
 * and counted, bodies are capped and validated, and an event only ever causes reads (HEADs) of
 * the key it names, never a write by itself. radosgw does not sign its pushes, so the token is
 * what proves a request came from the server the topic was given to.
 *
 * Names are deterministic (`bucketsync-watch-<hash of bucket, prefix, target>`), so a watcher
 * restarted after a kill finds its stale topic and notification and replaces them.
 *
 * Heartbeat: an endpoint the S3 server cannot reach (a wrong --advertise, a firewall) shows
 * nowhere in the server's API, so at each check the watcher deletes a key that never exists
 * (`<prefix>.bucketsync-heartbeat-<name>`): the server answers 204, writes nothing, and
 * notifies ObjectRemoved:Delete for it. A heartbeat that has not come back by the next check
 * is the event source failing. Only on an unversioned bucket (there such a delete would leave a
 * delete marker) and only with s3:DeleteObject on the source; otherwise off, said once.
 */
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { isLoopbackEndpoint, maskEndpoint } from "../core/endpoint.js";
import { classifyError } from "../core/errors.js";
import { UsageError } from "../core/types.js";
import { parseListenAddress } from "../options/parse.js";
import type { S3Connection } from "../stores/s3/client.js";
import {
  IgnoredRecords,
  MAX_BODY_BYTES,
  parseNotification,
  type EventSource,
  type EventSourceHooks,
} from "./events.js";

/** The name of a watch's topic and notification: the same for the same source and target. */
export function watchName(bucket: string, prefix: string, target: string): string {
  const hash = createHash("sha256").update(`${bucket}\0${prefix}\0${target}`).digest("hex").slice(0, 16);
  return `bucketsync-watch-${hash}`;
}

type NotificationConfig = {
  TopicConfigurations?: { Id?: string; TopicArn?: string; Events?: string[]; Filter?: unknown }[];
  QueueConfigurations?: unknown[];
  LambdaFunctionConfigurations?: unknown[];
  EventBridgeConfiguration?: unknown;
};

export class BucketEventSource implements EventSource {
  readonly name: string;
  private readonly token = randomBytes(32).toString("hex");
  private server?: http.Server;
  private pushUrl?: string;
  private topicArn?: string;
  private installed = false;
  refused = 0;
  private readonly ignored: IgnoredRecords;
  private sns?: import("@aws-sdk/client-sns").SNSClient;
  /** The key of the heartbeat, undefined while heartbeats are off. */
  private heartbeatKey?: string;
  private heartbeatSentAt?: number;
  private heartbeatHeardAt = 0;

  constructor(
    private readonly connection: S3Connection,
    private readonly where: { bucket: string; prefix: string; target: string },
    private readonly settings: { listen?: string; advertise?: string; heartbeats?: boolean },
    private readonly hooks: EventSourceHooks,
  ) {
    this.name = watchName(where.bucket, where.prefix, where.target);
    this.ignored = new IgnoredRecords(hooks);
  }

  get description(): string {
    return `bucket notifications of s3://${this.where.bucket}/${this.where.prefix} (topic ${this.name})`;
  }

  /** The endpoint's address without its token: safe to print. */
  get listeningAt(): string | undefined {
    return this.pushUrl?.slice(0, this.pushUrl.length - this.token.length);
  }

  async start(): Promise<void> {
    if (this.connection.endpointUrl === undefined)
      throw new Error(
        "AWS S3 cannot push notifications to an HTTP endpoint of the watcher: give --queue-url, an SQS queue the bucket notifies (README: Watch mode on AWS)",
      );
    await this.listen();
    await this.install();
    await this.startHeartbeats();
  }

  /** Heartbeats on where they write nothing (see the header); the first one goes out now. */
  private async startHeartbeats(): Promise<void> {
    if (this.settings.heartbeats === false) return;
    const { GetBucketVersioningCommand } = await import("@aws-sdk/client-s3");
    const client = await this.connection.sdkClient();
    try {
      const { Status } = await client.send(new GetBucketVersioningCommand({ Bucket: this.where.bucket }));
      if (Status !== undefined) {
        this.hooks.onWarning?.(
          `no heartbeats: s3://${this.where.bucket} is versioned (a heartbeat would leave delete markers); an endpoint the server cannot reach is found by the reconciles only`,
        );
        return;
      }
    } catch {
      return; // not allowed to read it: no heartbeats, as on a versioned bucket
    }
    this.heartbeatKey = `${this.where.prefix}.bucketsync-heartbeat-${this.name}`;
    await this.sendHeartbeat();
  }

  private async sendHeartbeat(): Promise<void> {
    if (this.heartbeatKey === undefined) return;
    try {
      await this.connection.lean.deleteObject(this.where.bucket, this.heartbeatKey);
      this.heartbeatSentAt = Date.now();
    } catch (err) {
      const info = classifyError(err);
      if (info.code === "AccessDenied") {
        this.heartbeatKey = undefined;
        this.heartbeatSentAt = undefined;
        this.hooks.onWarning?.(
          `no heartbeats: no s3:DeleteObject on s3://${this.where.bucket} (a heartbeat deletes a key that never exists); an endpoint the server cannot reach is found by the reconciles only`,
        );
      }
      // Any other failure: this heartbeat is skipped; the next check sends another.
    }
  }

  private async listen(): Promise<void> {
    const { host, port } = parseListenAddress("--listen", this.settings.listen ?? "127.0.0.1:0");
    const server = http.createServer((req, res) => this.receive(req, res));
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", (err: NodeJS.ErrnoException) =>
        reject(
          new UsageError(
            `--listen ${this.settings.listen ?? "127.0.0.1:0"}: cannot listen (${err.code ?? err.message})`,
          ),
        ),
      );
      server.listen(port, host ?? "127.0.0.1", () => resolve());
    });
    this.server = server;
    const address = server.address() as AddressInfo;
    let pushHost = address.family === "IPv6" ? `[${address.address}]` : address.address;
    // Every address of this machine (0.0.0.0, ::) is no address to push to: on this machine
    // its loopback, else the user must say which address the server reaches.
    if (this.settings.advertise === undefined && (address.address === "0.0.0.0" || address.address === "::")) {
      if (!isLoopbackEndpoint(this.connection.endpointUrl))
        throw new UsageError(
          `--listen ${this.settings.listen}: listens on every address of this machine; give --advertise http://HOST:${address.port}, the address the S3 server at ${maskEndpoint(this.connection.endpointUrl ?? "AWS")} reaches this watcher at`,
        );
      pushHost = address.family === "IPv6" ? "[::1]" : "127.0.0.1";
    }
    const base = this.settings.advertise?.replace(/\/$/, "") ?? `http://${pushHost}:${address.port}`;
    this.pushUrl = `${base}/${this.token}`;
  }

  private authorized(url: string | undefined): boolean {
    const given = Buffer.from((url ?? "").split("?")[0]!);
    const expected = Buffer.from(`/${this.token}`);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private receive(req: http.IncomingMessage, res: http.ServerResponse): void {
    const refuse = (status: number) => {
      this.refused++;
      res.writeHead(status, { connection: "close" }).end();
      req.resume();
    };
    if (req.method !== "POST" || !this.authorized(req.url)) return refuse(404);
    if (Number(req.headers["content-length"] ?? 0) > MAX_BODY_BYTES) return refuse(413);
    const chunks: Buffer[] = [];
    let size = 0;
    let over = false;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) over = true;
      else chunks.push(chunk);
    });
    req.on("error", () => undefined);
    req.on("end", () => {
      if (over) return refuse(413);
      const parsed = parseNotification(Buffer.concat(chunks).toString("utf8"), this.where);
      if (!parsed.ok) return refuse(400);
      res.writeHead(200).end();
      this.ignored.add(parsed.ignored);
      const beat = this.heartbeatKey?.slice(this.where.prefix.length);
      const hints = parsed.hints.filter((h) => h.key !== beat);
      if (hints.length < parsed.hints.length) this.heartbeatHeardAt = Date.now();
      if (hints.length > 0) this.hooks.onHints(hints);
    });
  }

  private async snsClient() {
    if (!this.sns) {
      const { SNSClient } = await import("@aws-sdk/client-sns");
      this.sns = new SNSClient({
        endpoint: this.connection.endpointUrl,
        region: this.connection.region,
        credentials: this.connection.credentials,
        maxAttempts: 3,
      });
    }
    return this.sns;
  }

  private async readConfig(): Promise<NotificationConfig> {
    const { GetBucketNotificationConfigurationCommand } = await import("@aws-sdk/client-s3");
    const client = await this.connection.sdkClient();
    const { $metadata: _, ...config } = await client.send(
      new GetBucketNotificationConfigurationCommand({ Bucket: this.where.bucket }),
    );
    return config as NotificationConfig;
  }

  /** Topic, then the notification (a stale one of an earlier watcher of the same pair removed first). */
  private async install(): Promise<void> {
    const { CreateTopicCommand } = await import("@aws-sdk/client-sns");
    const { PutBucketNotificationConfigurationCommand } = await import("@aws-sdk/client-s3");
    // First a read of the bucket's notifications: a bucket that does not exist is bad input, before anything is created.
    let existing: NotificationConfig;
    try {
      existing = await this.readConfig();
    } catch (err) {
      const info = classifyError(err);
      if (info.code === "NoSuchBucket")
        throw new UsageError(`the source bucket s3://${this.where.bucket} does not exist; nothing changed`);
      throw err;
    }
    const sns = await this.snsClient();
    await this.refuseLiveTwin(existing);
    // A notification holds a copy of its topic's endpoint: an earlier watcher's must go first.
    await this.removeNotification();
    const topic = await sns.send(
      new CreateTopicCommand({
        Name: this.name,
        // Not persistent: radosgw 16 then pushes within milliseconds, from inside the S3 request
        // (a persistent topic's queue took more than 6 s to deliver its first events there).
        Attributes: { "push-endpoint": this.pushUrl! },
      }),
    );
    this.topicArn = topic.TopicArn;
    if (!this.topicArn) throw new Error(`the server did not return an ARN for the topic ${this.name}`);
    const others = (existing.TopicConfigurations ?? []).filter((c) => c.Id !== this.name);
    const client = await this.connection.sdkClient();
    await client.send(
      new PutBucketNotificationConfigurationCommand({
        Bucket: this.where.bucket,
        NotificationConfiguration: {
          ...(existing as object),
          TopicConfigurations: [
            ...(others as never[]),
            {
              Id: this.name,
              TopicArn: this.topicArn,
              Events: ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
              ...(this.where.prefix !== "" && {
                Filter: { Key: { FilterRules: [{ Name: "prefix", Value: this.where.prefix }] } },
              }),
            },
          ],
        },
      }),
    );
    this.installed = true;
  }

  /**
   * Another watcher of the same source and target (same names) that is still running would lose
   * its events to this one, and the two would take the topic from each other at every check: its
   * endpoint is asked first (an empty batch of records, with its token; 2 s), and one that
   * answers is refused. An endpoint that does not answer is a dead watcher's, replaced as before.
   */
  private async refuseLiveTwin(existing: NotificationConfig): Promise<void> {
    const ours = (existing.TopicConfigurations ?? []).find((c) => c.Id === this.name);
    if (!ours?.TopicArn) return;
    let url: string | undefined;
    try {
      const { GetTopicAttributesCommand } = await import("@aws-sdk/client-sns");
      const attributes = (
        await (await this.snsClient()).send(new GetTopicAttributesCommand({ TopicArn: ours.TopicArn }))
      ).Attributes;
      url = pushEndpointOf(attributes);
    } catch {
      return; // no topic behind it: stale
    }
    if (!url || url.includes(this.token)) return;
    try {
      const res = await fetch(url, {
        method: "POST",
        body: JSON.stringify({ Records: [] }),
        headers: { "content-type": "application/json" },
        signal: AbortSignal.timeout(2000),
      });
      await res.arrayBuffer();
      if (res.status !== 200) return;
    } catch {
      return; // nothing answers there: a dead watcher's
    }
    throw new UsageError(
      `another watcher of s3://${this.where.bucket}/${this.where.prefix} into the same target is running (its endpoint ${url.replace(/[0-9a-f]{64}$/, "<secret token>")} answers); stop it first, or watch another target`,
    );
  }

  /** Our notification only: radosgw deletes one by id; the bucket's others stay as they are. */
  private async removeNotification(): Promise<void> {
    try {
      await this.connection.lean.deleteBucketNotification(this.where.bucket, this.name);
    } catch (err) {
      const info = classifyError(err);
      if (info.code !== "NoSuchKey" && info.code !== "NotFound" && info.code !== "NoSuchConfiguration") throw err;
    }
  }

  async check(): Promise<string | undefined> {
    this.ignored.report();
    try {
      const config = await this.readConfig();
      const ours = (config.TopicConfigurations ?? []).find((c) => c.Id === this.name);
      if (!ours || ours.TopicArn !== this.topicArn)
        return `the bucket notification ${this.name} on s3://${this.where.bucket} is gone`;
      const { GetTopicAttributesCommand } = await import("@aws-sdk/client-sns");
      const attributes = (
        await (await this.snsClient()).send(new GetTopicAttributesCommand({ TopicArn: this.topicArn }))
      ).Attributes;
      if (!pushEndpointOf(attributes)?.includes(this.token))
        return `the topic ${this.name} no longer pushes to this watcher`;
      const sent = this.heartbeatSentAt;
      await this.sendHeartbeat();
      if (sent !== undefined && this.heartbeatHeardAt < sent)
        return `no event came back for a heartbeat sent ${Math.round((Date.now() - sent) / 1000)}s ago: the S3 server does not reach ${this.listeningAt ?? "the endpoint"} (see --listen, --advertise)`;
      return undefined;
    } catch (err) {
      return `cannot read the notification set-up: ${classifyError(err).message}`;
    }
  }

  /** Sets the topic and notification up again (after check() found them gone). */
  async reinstall(): Promise<void> {
    // Only where the set-up can work at all: an SNS-compatible endpoint, with the receiver listening.
    if (this.connection.endpointUrl === undefined || !this.server) throw new Error("no push endpoint to set up");
    await this.install();
  }

  async stop(keep: boolean): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    try {
      if (!keep && this.installed) await this.removeNotification();
      this.installed = false;
      if (!keep && this.topicArn) {
        const { DeleteTopicCommand } = await import("@aws-sdk/client-sns");
        await (await this.snsClient()).send(new DeleteTopicCommand({ TopicArn: this.topicArn }));
        this.topicArn = undefined;
      }
    } finally {
      this.sns?.destroy();
    }
  }
}

/** The push URL a topic's attributes name (radosgw: `EndPoint` is JSON with `EndpointAddress`). */
function pushEndpointOf(attributes: Record<string, string> | undefined): string | undefined {
  if (!attributes) return undefined;
  try {
    const parsed = JSON.parse(attributes.EndPoint ?? "") as { EndpointAddress?: unknown };
    if (typeof parsed.EndpointAddress === "string") return parsed.EndpointAddress;
  } catch {
    // not JSON: the plain attribute below
  }
  return attributes["push-endpoint"] ?? attributes.EndPoint;
}
