/**
 * Text -> value for option values, from flags and config files alike. Each parser reads the
 * whole text: `10x` is never 10, and every message quotes what the user wrote.
 */
import bytes from "bytes";
import ms from "ms";
import { UsageError } from "../core/types.js";
import type { BandwidthSchedule } from "../core/meter.js";

const SIZE = /^(\d+(?:\.\d+)?)\s*([kmgtp]i?b?|b)?$/i;

/**
 * Parses `8MB`, `5GiB`, `1048576` (units are powers of 1024, as in aws-cli). `range` bounds the
 * value.
 */
export function parseSize(flag: string, range: { min?: number; max?: number; why?: string } = {}) {
  return (value: string): number => {
    const m = SIZE.exec(value.trim());
    // bytes.parse reads a leading number and ignores the rest, so the whole text is checked first.
    const unit = (m?.[2] ?? "").toLowerCase().replace(/i?b$/, "").replace(/i$/, "");
    const n = m ? bytes.parse(`${m[1]}${unit}b`) : null;
    if (n === null || !Number.isFinite(n) || n < 0)
      throw new UsageError(`invalid ${flag} '${value}'; expected a size such as 8MB or 1GiB`);
    if ((range.min !== undefined && n < range.min) || (range.max !== undefined && n > range.max)) {
      throw new UsageError(`invalid ${flag} '${value}'; ${range.why ?? "out of range"}`);
    }
    return Math.floor(n);
  };
}

export function parseWholeNumber(flag: string, range: { min?: number; max?: number } = {}) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim())) throw new UsageError(`invalid ${flag} '${value}'; expected a whole number`);
    const n = Number(value.trim());
    if ((range.min !== undefined && n < range.min) || (range.max !== undefined && n > range.max)) {
      throw new UsageError(
        `invalid ${flag} '${value}'; expected a whole number from ${range.min ?? 0} to ${range.max ?? "any"}`,
      );
    }
    return n;
  };
}

// ISO 8601 dates and times (what S3 prints); Date.parse alone would read "2026-11-24 junk" as a date.
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;

/** `7d`, `12h` (ago), or an ISO timestamp, as epoch ms. */
export function parseTimeBound(flag: string, value: string, now = Date.now()): number {
  const duration = /^\d{4}-/.test(value) ? undefined : ms(value as ms.StringValue);
  if (typeof duration === "number" && Number.isFinite(duration) && duration >= 0) return now - duration;
  const time = TIMESTAMP.test(value.trim()) ? Date.parse(value) : NaN;
  if (Number.isNaN(time))
    throw new UsageError(
      `invalid ${flag} '${value}'; expected a duration such as 7d or 12h, or a timestamp such as 2026-11-24T12:00:00Z`,
    );
  return time;
}

/** `10%` -> "10%" (0 to 100, decimals allowed), kept as text: the share is taken of a count known only during the run. */
export function parsePercent(flag: string) {
  return (value: string): `${number}%` => {
    const m = /^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value);
    if (!m || Number(m[1]) > 100)
      throw new UsageError(`invalid ${flag} '${value}'; expected a percentage from 0% to 100%`);
    return `${Number(m[1])}%`;
  };
}

/** `30d`, `12h` (from now), or an ISO timestamp in the future, as epoch ms (Object Lock retention). */
export function parseTimeAhead(flag: string, value: string, now = Date.now()): number {
  const duration = /^\d{4}-/.test(value) ? undefined : ms(value as ms.StringValue);
  const time =
    typeof duration === "number" && Number.isFinite(duration) && duration > 0
      ? now + duration
      : TIMESTAMP.test(value.trim())
        ? Date.parse(value)
        : NaN;
  if (Number.isNaN(time))
    throw new UsageError(
      `invalid ${flag} '${value}'; expected a duration such as 30d, or a timestamp such as 2027-01-01T00:00:00Z`,
    );
  if (time <= now) throw new UsageError(`invalid ${flag} '${value}'; the time must be in the future`);
  return time;
}

// Issue 16: rates, durations and timetables.

/** A positive number (decimals allowed), e.g. --tpslimit 0.5. */
export function parsePositiveNumber(flag: string, max = 1e9) {
  return (value: string): number => {
    const n = /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value.trim()) : NaN;
    if (!Number.isFinite(n) || n <= 0 || n > max)
      throw new UsageError(`invalid ${flag} '${value}'; expected a number above 0`);
    return n;
  };
}

/** A duration such as 90s, 30m, 2h or 1.5h (a bare number is seconds), as milliseconds. */
export function parseDuration(flag: string) {
  return (value: string): number => {
    const text = value.trim();
    const n = /^\d+(\.\d+)?$/.test(text) ? Number(text) * 1000 : ms(text as ms.StringValue);
    if (typeof n !== "number" || !Number.isFinite(n) || n <= 0)
      throw new UsageError(`invalid ${flag} '${value}'; expected a duration such as 90s, 30m or 2h`);
    return Math.round(n);
  };
}

const DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const RATE = /^(\d+(?:\.\d+)?)\s*([kmgt])?(?:i?b)?$/i;

/** A bandwidth in bytes per second, as rclone reads it: `10M` is 10 MiB/s, a bare number KiB/s; `off` is undefined. */
function parseRate(flag: string, text: string, whole: string): number | undefined {
  if (/^off$/i.test(text)) return undefined;
  const m = RATE.exec(text);
  if (!m) throw new UsageError(`invalid ${flag} '${whole}'; expected a rate such as 10M, 512k or off, or a timetable`);
  const unit = { k: 1, m: 2, g: 3, t: 4 }[(m[2] ?? "k").toLowerCase() as "k"] ?? 1;
  const rate = Number(m[1]) * 1024 ** unit;
  if (!(rate >= 1)) throw new UsageError(`invalid ${flag} '${whole}'; a rate must be at least 1 byte per second`);
  return rate;
}

/**
 * --bwlimit: one rate (`10M`, `off`), or rclone's timetable: space-separated `HH:MM,RATE` entries,
 * each optionally prefixed by a weekday (`Mon-08:00,10M`); every entry sets the rate from its time
 * on, until the next one (the last entry also covers the time before the first).
 */
export function parseBandwidth(flag: string) {
  return (value: string): BandwidthSchedule => {
    const text = value.trim();
    const parts = text.split(/\s+/).filter(Boolean);
    if (parts.length === 0) throw new UsageError(`invalid ${flag} '${value}'; expected a rate such as 10M`);
    if (parts.length === 1 && !parts[0]!.includes(","))
      return { text, entries: [{ minuteOfWeek: 0, rate: parseRate(flag, parts[0]!, value) }] };
    const entries: BandwidthSchedule["entries"] = [];
    for (const part of parts) {
      const m = /^(?:([A-Za-z]{3})-)?(\d{1,2}):(\d{2}),(.+)$/.exec(part);
      const day = m?.[1] === undefined ? undefined : DAYS.indexOf(m[1].toLowerCase());
      const hours = Number(m?.[2]);
      const minutes = Number(m?.[3]);
      if (!m || day === -1 || hours > 23 || minutes > 59)
        throw new UsageError(
          `invalid ${flag} '${value}'; timetable entries look like 08:00,10M or Mon-08:00,10M (at '${part}')`,
        );
      const rate = parseRate(flag, m[4]!, value);
      // An entry without a weekday applies every day.
      for (const d of day === undefined ? [0, 1, 2, 3, 4, 5, 6] : [day])
        entries.push({ minuteOfWeek: d * 24 * 60 + hours * 60 + minutes, rate });
    }
    entries.sort((a, b) => a.minuteOfWeek - b.minuteOfWeek);
    return { text, entries };
  };
}

/** `127.0.0.1:9090`, `localhost:9090`, `:9090` (all interfaces), `[::1]:9090`. */
export function parseListenAddress(flag: string, value: string): { host?: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value.trim());
  const port = Number(m?.[3]);
  if (!m || !(port >= 0 && port <= 65535))
    throw new UsageError(`invalid ${flag} '${value}'; expected HOST:PORT such as 127.0.0.1:9090`);
  const host = m[1] ?? m[2];
  return { host: host === "" ? undefined : host, port };
}
