/**
 * A bucket source's events from an SQS queue (issue 18, `--queue-url`): the route for AWS S3,
 * which cannot push to an HTTP endpoint of the watcher but notifies an SQS queue (directly, or
 * through an SNS topic, or EventBridge). The user sets up the queue and the bucket's
 * notification (README: "Watch mode on AWS"); the watcher only reads the queue.
 *
 * Messages are long-polled by a few pollers, parsed (events.ts parseQueueMessage: S3 records,
 * an SNS envelope, EventBridge, S3's test event) and deleted once their keys are in the pending
 * set. A message that is not an S3 event is deleted too (counted as refused), so a stray message
 * cannot come back forever. Keys are hints as always: each is read again before anything is
 * written or deleted, so anyone able to send to the queue can at most cause reads. A watcher
 * killed before it applied the keys it took loses nothing: its start-up sync after a restart
 * catches up, as after any kill.
 */
import type { SQSClient } from "@aws-sdk/client-sqs";
import { sleep } from "../core/async.js";
import { maskEndpoint } from "../core/endpoint.js";
import { classifyError, isUnreachable } from "../core/errors.js";
import { UsageError } from "../core/types.js";
import type { S3Connection } from "../stores/s3/client.js";
import { IgnoredRecords, parseQueueMessage, type EventSource, type EventSourceHooks } from "./events.js";

/** Long polls in flight at once: each returns up to 10 messages as soon as there are any. */
const POLLERS = 4;
/** SQS's longest long poll. */
const WAIT_SECONDS = 20;
/** A failing receive is retried after this long, doubling up to MAX_BACKOFF_MS. */
const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 5_000;
/** The first receive after a failure waits this long only: a queue that is back says so within a second. */
const PROBE_WAIT_SECONDS = 1;

/** The region a queue URL names (`https://sqs.eu-west-1.amazonaws.com/...`), if it names one. */
export function queueRegion(url: string): string | undefined {
  const host = new URL(url).hostname;
  return (
    /^sqs[.-]([a-z0-9-]+)\.amazonaws\.com(\.cn)?$/.exec(host)?.[1] ??
    (host === "queue.amazonaws.com" ? "us-east-1" : undefined)
  );
}

/** Codes of SQS for a queue that is not there (JSON protocol, and the older query protocol). */
const NO_QUEUE = new Set(["QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue"]);

export class QueueEventSource implements EventSource {
  refused = 0;
  private sqs?: SQSClient;
  private queueArn?: string;
  private problem?: string;
  private stopping = new AbortController();
  private pollers: Promise<void>[] = [];
  private readonly ignored: IgnoredRecords;
  private refusedWarned = 0;

  constructor(
    private readonly connection: S3Connection,
    private readonly where: { bucket: string; prefix: string },
    private readonly queueUrl: string,
    private readonly hooks: EventSourceHooks,
  ) {
    this.ignored = new IgnoredRecords(hooks);
  }

  get description(): string {
    return `events of s3://${this.where.bucket}/${this.where.prefix} from the queue ${maskEndpoint(this.queueUrl)}`;
  }

  private async client(): Promise<SQSClient> {
    if (!this.sqs) {
      const { SQSClient } = await import("@aws-sdk/client-sqs");
      this.sqs = new SQSClient({
        endpoint: new URL(this.queueUrl).origin,
        region: queueRegion(this.queueUrl) ?? this.connection.region,
        credentials: this.connection.credentials,
        maxAttempts: 3,
      });
    }
    return this.sqs;
  }

  /** The queue must answer before anything starts: a wrong URL is bad input (exit 2), not a fallback. */
  async start(): Promise<void> {
    const { GetQueueAttributesCommand } = await import("@aws-sdk/client-sqs");
    const sqs = await this.client();
    const shown = maskEndpoint(this.queueUrl);
    try {
      const { Attributes } = await sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: this.queueUrl, AttributeNames: ["QueueArn"] }),
      );
      this.queueArn = Attributes?.QueueArn;
    } catch (err) {
      const info = classifyError(err);
      const code = (err as { name?: string }).name ?? info.code;
      if (NO_QUEUE.has(code) || NO_QUEUE.has(info.code))
        throw new UsageError(`--queue-url ${shown}: the queue does not exist; nothing changed`);
      if (info.code === "AccessDenied" || code === "AccessDeniedException" || /AccessDenied/.test(info.code))
        throw new UsageError(`--queue-url ${shown}: access denied (${info.message}); nothing changed`);
      if (isUnreachable(info.code))
        throw new UsageError(`--queue-url ${shown}: cannot reach the queue (${info.code}); nothing changed`);
      throw err;
    }
    await this.warnWithoutNotification();
    for (let i = 0; i < POLLERS; i++) this.pollers.push(this.poll());
  }

  /**
   * A bucket that sends nothing to the queue is the usual set-up mistake: say so once (only when
   * the bucket's notifications can be read and name neither this queue nor any topic or
   * EventBridge, which may forward to it).
   */
  private async warnWithoutNotification(): Promise<void> {
    try {
      const { GetBucketNotificationConfigurationCommand } = await import("@aws-sdk/client-s3");
      const client = await this.connection.sdkClient();
      const config = await client.send(new GetBucketNotificationConfigurationCommand({ Bucket: this.where.bucket }));
      const toQueue = (config.QueueConfigurations ?? []).some((c) => c.QueueArn === this.queueArn);
      const forwarded = (config.TopicConfigurations ?? []).length > 0 || config.EventBridgeConfiguration !== undefined;
      if (!toQueue && !forwarded)
        this.hooks.onWarning?.(
          `s3://${this.where.bucket} has no notification to ${this.queueArn ?? "the queue"}: no events will arrive (see the README, "Watch mode on AWS"); reconciles still run`,
        );
    } catch {
      // Not allowed to read it (s3:GetBucketNotification), or the server has no such call: nothing to say.
    }
  }

  private async poll(): Promise<void> {
    const { ReceiveMessageCommand, DeleteMessageBatchCommand } = await import("@aws-sdk/client-sqs");
    const sqs = await this.client();
    const signal = this.stopping.signal;
    let backoff = FIRST_BACKOFF_MS;
    while (!signal.aborted) {
      try {
        const { Messages } = await sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: this.queueUrl,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: this.problem === undefined ? WAIT_SECONDS : PROBE_WAIT_SECONDS,
          }),
          { abortSignal: signal },
        );
        this.problem = undefined;
        backoff = FIRST_BACKOFF_MS;
        if (!Messages || Messages.length === 0) continue;
        const hints = [];
        for (const message of Messages) {
          const parsed = parseQueueMessage(message.Body ?? "", this.where);
          if (!parsed.ok) {
            this.refused++;
            continue;
          }
          this.ignored.add(parsed.ignored);
          hints.push(...parsed.hints);
        }
        if (hints.length > 0) this.hooks.onHints(hints);
        // Deleted once the keys are held (a delete that fails only means the message comes back: hints again).
        const entries = Messages.filter((m) => m.ReceiptHandle).map((m, i) => ({
          Id: String(i),
          ReceiptHandle: m.ReceiptHandle!,
        }));
        if (entries.length > 0)
          await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: this.queueUrl, Entries: entries }));
      } catch (err) {
        if (signal.aborted) break;
        this.problem = `cannot receive from the queue ${maskEndpoint(this.queueUrl)}: ${classifyError(err).message}`;
        await sleep(backoff, signal);
        backoff = Math.min(MAX_BACKOFF_MS, backoff * 2);
      }
    }
  }

  async check(): Promise<string | undefined> {
    this.ignored.report();
    if (this.refused > 0 && this.refused !== this.refusedWarned) {
      this.hooks.onWarning?.(`${this.refused} message(s) of the queue were not S3 events; they were deleted`);
      this.refusedWarned = this.refused;
    }
    try {
      const { GetQueueAttributesCommand } = await import("@aws-sdk/client-sqs");
      await (
        await this.client()
      ).send(new GetQueueAttributesCommand({ QueueUrl: this.queueUrl, AttributeNames: ["QueueArn"] }));
    } catch (err) {
      return `cannot read the queue ${maskEndpoint(this.queueUrl)}: ${classifyError(err).message}`;
    }
    return this.problem;
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    await Promise.allSettled(this.pollers);
    this.pollers = [];
    this.sqs?.destroy();
    this.sqs = undefined;
  }
}
