import type { Command } from "commander";

/** Commands and their flags, read from the program itself so completion never drifts from it. */
function commandTable(program: Command): [string, string[]][] {
  const rows: [string, string[]][] = [];
  const walk = (cmd: Command, path: string[]) => {
    for (const sub of cmd.commands) {
      const name = [...path, sub.name()];
      rows.push([name.join(" "), sub.options.map((o) => o.long).filter((l): l is string => !!l)]);
      walk(sub, name);
    }
  };
  walk(program, []);
  return rows;
}

/** A completion script for bash or zsh: `eval "$(bucketsync completion bash)"`. */
export function completionScript(shell: "bash" | "zsh", program: Command): string {
  const rows = commandTable(program);
  const top = rows.filter(([name]) => !name.includes(" ")).map(([name]) => name);
  const cases = rows.map(([name, flags]) => `    "${name}") opts="${flags.join(" ")}" ;;`).join("\n");
  const body = `_bucketsync() {
  local cur cmd opts
  cur="\${COMP_WORDS[COMP_CWORD]}"
  cmd="\${COMP_WORDS[1]}"
  if [ "\${COMP_WORDS[1]}" = "acl" ] && [ "\${COMP_CWORD}" -gt 2 ]; then cmd="acl \${COMP_WORDS[2]}"; fi
  if [ "\${COMP_CWORD}" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${top.join(" ")} help" -- "$cur") )
    return
  fi
  case "$cmd" in
${cases}
    *) opts="" ;;
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=( $(compgen -W "$opts --help" -- "$cur") )
  else
    COMPREPLY=( $(compgen -f -- "$cur") )
  fi
}
`;
  if (shell === "bash")
    return `# bash completion for bucketsync\n${body}complete -o filenames -F _bucketsync bucketsync\n`;
  return `#compdef bucketsync\n# zsh completion for bucketsync (through bash completion emulation)\nautoload -U +X bashcompinit && bashcompinit\n${body}complete -o filenames -F _bucketsync bucketsync\n`;
}
