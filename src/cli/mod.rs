//! The command line: global options, dispatch, output formats and exit codes.
//!
//! One module per subcommand. Commands return `anyhow::Result`; [`exit_code`] turns errors
//! into the documented exit codes (1 failure, 2 usage or config error, 3 verification failed).

mod add;
mod agent;
mod alert;
mod backup;
mod blobs;
mod checkpoint;
mod collect;
mod config_check;
mod controls;
mod coverage;
mod erase;
mod export;
mod init;
mod man;
pub mod output;
mod population;
mod proof;
mod publish;
mod push;
mod query;
mod remote;
mod run;
mod runs;
mod sample;
mod serve;
mod show;
mod soa;
mod status;
mod token;
mod trace;
mod verify;
mod witness;

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use evident::catalog::UnknownControl;
use evident::config::{Config, ConfigError, DEFAULT_CONFIG};
use evident::ledger::state::StateDir;

/// Evident keeps an ISO/IEC 42001 AI management system audit-ready: it collects evidence
/// from the systems where AI work happens, records every artefact in a signed,
/// tamper-evident ledger, and maps it to the Annex A controls it supports.
#[derive(Debug, Parser)]
#[command(
    name = "evident",
    version,
    about,
    after_help = "Quick start:\n  evident --config config/quickstart.toml init\n  evident --config config/quickstart.toml collect\n  evident --config config/quickstart.toml query A.2\n  evident --config config/quickstart.toml verify\n  evident --config config/quickstart.toml coverage\n  evident --config config/quickstart.toml export --out audit.tar.gz\n  evident verify audit.tar.gz --key quickstart-state/verifier.vkey\n\nExit codes: 0 ok, 1 failure, 2 usage or config error, 3 verification failed, 4 coverage gate failed (--fail-on)."
)]
pub struct Cli {
    /// Config file.
    #[arg(long, short, global = true, env = "EVIDENT_CONFIG", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// State directory (overrides `[ledger] path`); enough on its own for commands that only
    /// read or sign the ledger.
    #[arg(long, global = true, env = "EVIDENT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Output format for commands that print data.
    #[arg(long, short, global = true, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// More log output (repeat for more).
    #[arg(long, short, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Writing commands (collect, add, checkpoint, export): refuse with exit 2 instead of
    /// waiting when another Evident process is doing the same job.
    #[arg(long, global = true)]
    pub no_wait: bool,
    /// Only errors; no progress bars.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Log format: `auto` is human text (plain under systemd's journal), `json` one object a line.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Auto)]
    pub log_format: LogFormat,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// JSON for scripts.
    Json,
    /// CSV for spreadsheets.
    Csv,
    /// A Markdown table for documents and tickets.
    Markdown,
}

/// Log output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human text; without colours and timestamps when stderr goes to the journal.
    Auto,
    /// Human text.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Create the state directory, database and signing key; print the verifier key.
    #[command(long_about = init::LONG_ABOUT)]
    Init(init::Args),
    /// Run the daemon in the foreground: collectors on their schedules, signed checkpoints.
    #[command(long_about = run::LONG_ABOUT)]
    Run(run::Args),
    /// Run collectors here and forward what they record to a central server (remote agent).
    #[command(long_about = agent::LONG_ABOUT)]
    Agent(agent::Args),
    /// Serve the HTTP API and dashboard read-only over a state directory (no collecting).
    #[command(long_about = serve::LONG_ABOUT)]
    Serve(serve::Args),
    /// The collectors, the ledger, the checkpoint and coverage at a glance.
    #[command(long_about = status::LONG_ABOUT)]
    Status(status::Args),
    /// Create, list and revoke API tokens.
    #[command(subcommand, long_about = token::LONG_ABOUT)]
    Token(token::Command),
    /// Send a test message to an alert target.
    #[command(subcommand, long_about = alert::LONG_ABOUT)]
    Alert(alert::Command),
    /// Send evidence to a running server (from CI): files or metadata only.
    #[command(long_about = push::LONG_ABOUT)]
    Push(push::Args),
    /// Run collectors once and record what they find.
    #[command(long_about = collect::LONG_ABOUT)]
    Collect(collect::Args),
    /// Record files as manual evidence (meeting minutes, signed PDFs).
    #[command(long_about = add::LONG_ABOUT)]
    Add(add::Args),
    /// Show the evidence mapped to controls or clauses.
    #[command(long_about = query::LONG_ABOUT)]
    Query(query::Args),
    /// Readiness per control: fresh, stale, missing or not applicable (exit 4 with --fail-on).
    #[command(long_about = coverage::LONG_ABOUT)]
    Coverage(coverage::Args),
    /// The Statement of Applicability: every Annex A control, applicable or excluded, and how
    /// far it is evidenced.
    #[command(long_about = soa::LONG_ABOUT)]
    Soa(soa::Args),
    /// List the ISO/IEC 42001 catalogue: Annex A controls and clauses 4–10.
    #[command(long_about = controls::LONG_ABOUT)]
    Controls(controls::Args),
    /// Fix a provably complete population (filter, period) for sampling; record it in the log.
    #[command(long_about = population::LONG_ABOUT)]
    Population(population::Args),
    /// Draw a deterministic sample of a population with a seed no one could choose in advance.
    #[command(long_about = sample::LONG_ABOUT)]
    Sample(sample::Args),
    /// The lifecycle chain around an entry or identifier (model → run → deployment → approval).
    #[command(long_about = trace::LONG_ABOUT)]
    Trace(trace::Args),
    /// Erase entries' content (GDPR art. 17, retention) with a signed record; proofs stay valid.
    #[command(long_about = erase::LONG_ABOUT)]
    Erase(erase::Args),
    /// Sign a checkpoint of the current tree and print it.
    #[command(long_about = checkpoint::LONG_ABOUT)]
    Checkpoint(checkpoint::Args),
    /// Write the audit bundle (tar.gz or directory) an auditor verifies offline.
    #[command(long_about = export::LONG_ABOUT)]
    Export(export::Args),
    /// Publish the log as C2SP tiles to a directory a web server serves.
    #[command(long_about = publish::LONG_ABOUT)]
    Publish(publish::Args),
    /// Print an entry's inclusion proof (c2sp.org/tlog-proof@v1) against the latest checkpoint.
    #[command(long_about = proof::LONG_ABOUT)]
    Proof(proof::Args),
    /// Verify the ledger (leaves, tree, signatures, blobs), or an audit bundle offline.
    #[command(long_about = verify::LONG_ABOUT)]
    Verify(verify::Args),
    /// The run history: each collector run, what it found, and its error.
    #[command(long_about = runs::LONG_ABOUT)]
    Runs(runs::Args),
    /// Write an entry's stored content (re-hashed) or, with --meta, its leaf.
    #[command(long_about = show::LONG_ABOUT)]
    Show(show::Args),
    /// Where evidence content lives; copy it to object storage (`blobs migrate`).
    #[command(subcommand, long_about = blobs::LONG_ABOUT)]
    Blobs(blobs::Command),
    /// Copy the ledger, its blobs and keys into a directory, consistently, while it runs.
    #[command(long_about = backup::LONG_ABOUT)]
    Backup(backup::Args),
    /// Print the evident(1) manual page.
    #[command(long_about = man::MAN_ABOUT)]
    Man,
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(long_about = man::COMPLETIONS_ABOUT)]
    Completions(man::CompletionsArgs),
    /// Be a witness for other logs: cosign checkpoints that extend the last one seen.
    #[command(subcommand, long_about = witness::LONG_ABOUT)]
    Witness(witness::Command),
    /// Configuration commands.
    #[command(subcommand)]
    Config(ConfigCommand),
}

/// `evident config …`.
#[derive(Debug, Clone, Subcommand)]
pub enum ConfigCommand {
    /// Validate the config file and exit (0 valid, 2 invalid; with --connect, 1 when a
    /// source cannot be reached or refuses the credentials).
    #[command(long_about = config_check::LONG_ABOUT)]
    Check(config_check::Args),
}

/// An error that carries its own exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    /// Process exit code.
    pub code: u8,
    /// What to print (may be empty when the command already printed it).
    pub message: String,
}

/// What every command can reach: parsed options, lazily loaded config.
pub struct Ctx {
    /// The options.
    pub cli: Cli,
    config: Option<Config>,
}

impl Ctx {
    /// Whether progress bars may be drawn.
    pub fn progress(&self) -> bool {
        !self.cli.quiet && std::io::stderr().is_terminal()
    }

    /// The config, loaded on first use.
    pub fn config(&mut self) -> anyhow::Result<&Config> {
        if self.config.is_none() {
            self.config = Some(Config::load(&self.cli.config)?);
        }
        self.config.as_ref().context("config not loaded")
    }

    /// The state directory: `--state-dir`, else the config's `[ledger] path`.
    pub fn state(&mut self) -> anyhow::Result<StateDir> {
        if let Some(d) = &self.cli.state_dir {
            return Ok(StateDir::new(d.clone()));
        }
        Ok(StateDir::new(self.config()?.ledger.path.clone()))
    }

    /// Takes the writer lock of `job` (waiting with a message, or exit 2 under `--no-wait`).
    pub fn job_lock(
        &self,
        state: &StateDir,
        job: &str,
        what: &str,
    ) -> anyhow::Result<evident::lock::JobLock> {
        state.check_owner()?;
        let wait = if self.cli.no_wait {
            evident::lock::Wait::No
        } else {
            evident::lock::Wait::Yes
        };
        evident::lock::job_lock(state.dir(), job, what, wait).map_err(|e| match e {
            e @ evident::lock::JobLockError::Busy { .. } => Exit {
                code: 2,
                message: e.to_string(),
            }
            .into(),
            e => anyhow::Error::from(e),
        })
    }

    /// The config, or `None` when only `--state-dir` was given and there is no config file
    /// (commands that read or sign the ledger work without one).
    pub fn optional_config(&mut self) -> anyhow::Result<Option<&Config>> {
        if self.cli.state_dir.is_some() && !self.cli.config.exists() {
            return Ok(None);
        }
        self.config().map(Some)
    }

    /// Warns when current evidence comes from collectors the config no longer has (renamed
    /// or removed): nothing retires their artefacts, so they count as current until removed
    /// by hand. `evident add`'s manual evidence has no collector and is not warned about.
    pub fn warn_unconfigured_sources(
        &mut self,
        reader: &evident::ledger::reader::Reader,
    ) -> anyhow::Result<()> {
        if self.cli.quiet {
            return Ok(());
        }
        let Some(cfg) = self.optional_config()? else {
            return Ok(());
        };
        let stale: Vec<String> = reader
            .sources_present()?
            .into_iter()
            .filter(|(s, _)| s != add::MANUAL && !cfg.collectors.iter().any(|c| &c.name == s))
            .map(|(s, n)| format!("{s} ({n})"))
            .collect();
        if !stale.is_empty() {
            eprintln!(
                "warning: current evidence from collectors no longer in the config still counts: \
                 {}; restore the collector's name if it was renamed",
                stale.join(", ")
            );
        }
        Ok(())
    }

    /// Freshness and applicability settings: the config's, or the catalogue defaults.
    pub fn policies(&mut self) -> anyhow::Result<evident::coverage::Policies> {
        if let Some(c) = self.optional_config()? {
            return Ok(evident::coverage::Policies::from_config(c));
        }
        // Said every time: a readiness answer without the organisation's exclusions and
        // `min_items` looks authoritative and is not.
        eprintln!(
            "warning: no config ({} does not exist): freshness uses the catalogue's defaults, \
             and the config's [controls], [applicability] and exclusions are not applied; \
             pass --config FILE for your policies",
            self.cli.config.display()
        );
        Ok(evident::coverage::Policies::default())
    }

    /// `[anchoring]`, when configured.
    pub fn anchoring(&mut self) -> anyhow::Result<Option<evident::anchor::AnchorConfig>> {
        Ok(self.optional_config()?.and_then(|c| c.anchoring.clone()))
    }

    /// The log origin: from the config when there is one, else from the ledger itself.
    pub fn origin(&mut self, state: &StateDir) -> anyhow::Result<String> {
        if let Some(c) = self.optional_config()? {
            return Ok(c.ledger.origin.clone());
        }
        Ok(state.origin()?)
    }
}

/// A verifier key given on the command line as `flag`: the key line itself, or a file
/// holding it.
pub fn key_arg(flag: &str, k: &str) -> anyhow::Result<evident::ledger::note::NoteVerifier> {
    let text = if std::path::Path::new(k).is_file() {
        std::fs::read_to_string(k).with_context(|| format!("{flag}: reading key file {k}"))?
    } else {
        k.to_owned()
    };
    Ok(
        evident::ledger::note::NoteVerifier::parse(&text).map_err(|e| Exit {
            code: 2,
            message: format!("{flag}: {e}"),
        })?,
    )
}

/// Runs the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut ctx = Ctx { cli, config: None };
    match ctx.cli.command.clone() {
        Command::Init(a) => init::run(&mut ctx, a),
        Command::Run(a) => run::run(&mut ctx, a),
        Command::Serve(a) => serve::run(&mut ctx, a),
        Command::Status(a) => status::run(&mut ctx, a),
        Command::Token(c) => token::run(&mut ctx, c),
        Command::Push(a) => push::run(&mut ctx, a),
        Command::Alert(c) => alert::run(&mut ctx, c),
        Command::Collect(a) => collect::run(&mut ctx, a),
        Command::Add(a) => add::run(&mut ctx, a),
        Command::Query(a) => query::run(&mut ctx, a),
        Command::Controls(a) => controls::run(&mut ctx, a),
        Command::Coverage(a) => coverage::run(&mut ctx, a),
        Command::Soa(a) => soa::run(&mut ctx, a),
        Command::Checkpoint(a) => checkpoint::run(&mut ctx, a),
        Command::Population(a) => population::run(&mut ctx, a),
        Command::Sample(a) => sample::run(&mut ctx, a),
        Command::Trace(a) => trace::run(&mut ctx, a),
        Command::Erase(a) => erase::run(&mut ctx, a),
        Command::Export(a) => export::run(&mut ctx, a),
        Command::Proof(a) => proof::run(&mut ctx, a),
        Command::Publish(a) => publish::run(&mut ctx, a),
        Command::Agent(a) => agent::run(&mut ctx, a),
        Command::Blobs(c) => blobs::run(&mut ctx, c),
        Command::Verify(a) => verify::run(&mut ctx, a),
        Command::Backup(a) => backup::run(&mut ctx, a),
        Command::Runs(a) => runs::run(&mut ctx, a),
        Command::Show(a) => show::run(&mut ctx, a),
        Command::Witness(c) => witness::run(&mut ctx, c),
        Command::Man => man::man(),
        Command::Completions(a) => man::completions(a),
        Command::Config(ConfigCommand::Check(a)) => config_check::run(&mut ctx, a),
    }
}

/// The exit code for an error: 2 for usage and config errors, its own for [`Exit`], else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    for cause in err.chain() {
        if let Some(e) = cause.downcast_ref::<Exit>() {
            return e.code;
        }
        if cause.is::<ConfigError>() || cause.is::<UnknownControl>() {
            return 2;
        }
        if let Some(evident::erasure::ErasureError::Refused(_)) = cause.downcast_ref() {
            return 2;
        }
        match cause.downcast_ref::<evident::sampling::SamplingError>() {
            Some(evident::sampling::SamplingError::Mismatch(_)) => return 3,
            Some(evident::sampling::SamplingError::Manifest { .. }) => return 2,
            _ => {}
        }
        if let Some(
            evident::ledger::LedgerError::AlreadyInitialised { .. }
            | evident::ledger::LedgerError::WrongUser { .. },
        ) = cause.downcast_ref::<evident::ledger::LedgerError>()
        {
            return 2;
        }
    }
    1
}

/// An error and its causes on one line, each cause once: library errors often print their
/// source in their own message too (`ledger database: disk full: disk full`).
pub fn error_text(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let full = cause.to_string();
        // Drop the trailing `: `-parts this line already said.
        let parts: Vec<&str> = full.split(": ").collect();
        let mut keep = parts.len();
        while keep > 0 && out.contains(&parts[keep - 1..].join(": ")) {
            keep -= 1;
        }
        let text = parts[..keep].join(": ");
        if text.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// Makes files this process creates private to its user.
pub fn private_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}
