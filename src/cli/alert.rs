//! `evident alert test NAME`: send a test message to an alert target.

use anyhow::Context as _;

use super::{Ctx, Exit};
use evident::alerts::send::{Message, send};

/// The long help of this command.
pub const LONG_ABOUT: &str = "Check that alerts reach their target: `evident alert test NAME` sends a test \
message to the [[alerts]] target called NAME (webhook, Slack, Teams or e-mail) and says whether \
it was accepted. The daemon sends real alerts when a control turns stale or missing, a \
collector fails `collector_failures` runs in a row, the newest checkpoint is older than \
`checkpoint_max_age`, anchoring fails, or `[ledger] self_verify` finds a problem; once when it \
happens and once when it clears, at most one message per `min_interval`.\n\n\
Examples:\n  evident alert test compliance-slack\n  evident alert test oncall-mail";

/// `evident alert …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Send a test message to one target.
    Test {
        /// The target's name (`[[alerts]] name`).
        name: String,
    },
}

pub fn run(ctx: &mut Ctx, cmd: Command) -> anyhow::Result<()> {
    let Command::Test { name } = cmd;
    let config = ctx.config()?;
    let target = config
        .alerts
        .iter()
        .find(|a| a.name == name)
        .cloned()
        .ok_or_else(|| Exit {
            code: 2,
            message: format!(
                "no [[alerts]] target named {name:?}; the config has: {}",
                if config.alerts.is_empty() {
                    "none".to_owned()
                } else {
                    config
                        .alerts
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        })?;
    let message = Message::new(&config.ledger.origin, &[], target.dashboard_url.as_deref());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(send(&target, &message))
        .map_err(|e| Exit {
            code: 1,
            message: e.to_string(),
        })?;
    if !ctx.cli.quiet {
        eprintln!("test message accepted by alert target {name:?}");
    }
    Ok(())
}
