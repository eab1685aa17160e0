/**
 * The distributed settings the CLI needs at every start, apart from job.ts so that loading the
 * CLI does not load the job schema's validation library.
 */

/** How long a worker holds a range before BullMQ considers it stalled (worker --lock-duration). */
export const DEFAULT_LOCK_DURATION_MS = 30_000;

export const DEFAULT_QUEUE_NAME = "bucketsync";

/** The URL without its password, for messages. */
export function redactRedisUrl(url: string): string {
  return url.replace(
    /^(rediss?:\/\/)([^@/]*)@/i,
    (_, scheme: string, auth: string) => `${scheme}${auth.includes(":") ? `${auth.split(":")[0]}:***` : "***"}@`,
  );
}
