/** `bucketsync completion bash|zsh`. */
import type { Command } from "commander";
import { UsageError } from "../../core/types.js";
import type { CliContext } from "../context.js";
import { completionScript } from "../format/completion.js";

export function registerCompletion(program: Command, ctx: CliContext): void {
  program
    .command("completion")
    .description('print a shell completion script: eval "$(bucketsync completion bash)"')
    .argument("<shell>", "bash or zsh")
    .action((shell: string) => {
      if (shell !== "bash" && shell !== "zsh")
        throw new UsageError(`unsupported shell '${shell}'; expected bash or zsh`);
      ctx.io.out.write(completionScript(shell, program));
    });
}
