//! `evident man` and `evident completions SHELL`: the manual page and shell completions,
//! generated from the command line's own definition so they never drift from `--help`.

use std::io::Write;

use clap::CommandFactory;

use super::Cli;

/// The long help of `evident man`.
pub const MAN_ABOUT: &str = "Print the evident(1) manual page (roff) on stdout: every command and \
option, as --help describes them. install.sh installs it, so `man evident` works and the \
unit's Documentation=man:evident(1) resolves.\n\n\
Examples:\n  evident man | man -l -\n  evident man > /usr/local/share/man/man1/evident.1";

/// The long help of `evident completions`.
pub const COMPLETIONS_ABOUT: &str = "Print a completion script for SHELL on stdout.\n\n\
Examples:\n  evident completions bash > /usr/share/bash-completion/completions/evident\n  \
evident completions zsh > \"${fpath[1]}/_evident\"\n  evident completions fish > ~/.config/fish/completions/evident.fish";

/// Options of `evident completions`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompletionsArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Writes the manual page.
pub fn man() -> anyhow::Result<()> {
    let mut out = Vec::new();
    // One page for the tool: name, synopsis, options, a SUBCOMMANDS section (each
    // command's `--help` has the rest), exit codes and the quick start from `after_help`.
    clap_mangen::Man::new(Cli::command()).render(&mut out)?;
    std::io::stdout().lock().write_all(&out)?;
    Ok(())
}

/// Writes the completion script.
pub fn completions(args: CompletionsArgs) -> anyhow::Result<()> {
    let mut cmd = Cli::command();
    // Into memory first: the generator panics on a write error (a closed pipe).
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "evident", &mut out);
    std::io::stdout().lock().write_all(&out)?;
    Ok(())
}
