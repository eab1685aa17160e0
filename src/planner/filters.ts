import picomatch from "picomatch";
import { UsageError } from "../core/types.js";

export type { FilterRule } from "../options/table.js";
import type { FilterRule } from "../options/table.js";

/** Decides whether a relative key takes part in a sync. */
export type KeyFilter = (key: string) => boolean;

/**
 * aws-cli filter semantics: every key is included until a rule matches it; later rules win.
 * Patterns match the key relative to the sync root; `*` also matches `/` (as in aws-cli's
 * fnmatch), hence picomatch's `bash` mode. Applied to both sides, so an excluded target key is
 * never deleted.
 */
export function compileFilters(rules: readonly FilterRule[]): KeyFilter {
  if (rules.length === 0) return () => true;
  const compiled = rules.map((rule) => {
    if (rule.pattern === "") throw new UsageError(`empty --${rule.type} pattern`);
    let matcher: (key: string) => boolean;
    try {
      matcher = picomatch(rule.pattern, { bash: true, dot: true, strictBrackets: true });
    } catch (err) {
      throw new UsageError(`invalid --${rule.type} pattern '${rule.pattern}': ${(err as Error).message}`);
    }
    return { include: rule.type === "include", matcher };
  });
  return (key) => {
    let included = true;
    for (const rule of compiled) if (rule.matcher(key)) included = rule.include;
    return included;
  };
}

/**
 * Include rules that cannot narrow anything: under aws-cli's rules every key is included until
 * a rule excludes it, so an --include with no --exclude before it changes nothing. Users who
 * write `--include "*.png"` alone mean "only *.png"; they are told the form that says that.
 */
export function includesThatSelectNothing(rules: readonly FilterRule[]): FilterRule[] {
  const out: FilterRule[] = [];
  for (const rule of rules) {
    if (rule.type === "exclude") break;
    out.push(rule);
  }
  return out;
}

/** The one-line explanation for includesThatSelectNothing's result. */
export function includeOnlyMessage(rules: readonly FilterRule[]): string {
  const shown = rules.map((r) => `--include "${r.pattern}"`).join(" ");
  return `${shown} narrows nothing on its own: every key is included until an --exclude removes it (aws-cli rules); to select only those keys write --exclude "*" ${shown}`;
}
