/**
 * Text -> value for option values, from flags and config files alike. Each parser reads the
 * whole text: `10x` is never 10, and every message quotes what the user wrote.
 */
import bytes from "bytes";
import ms from "ms";
import { UsageError } from "../core/types.js";

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
