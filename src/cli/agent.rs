//! `evident agent`: run collectors on this host and forward what they record to a central
//! Evident server.

use super::{Ctx, Exit};

/// The long help of this command.
pub const LONG_ABOUT: &str = "Run as a remote agent: the collectors of this config run here, on \
the host or network that holds the sources, and everything they record is forwarded to a \
central Evident server's push API (POST /v1/evidence) with a push token.\n\n\
The agent is `evident run` with an [agent] table: its own ledger (the config's [ledger]) is \
the store-and-forward queue, durable on disk and in order, so when the centre is unreachable \
entries wait and are sent when it answers; restarts and SIGKILL lose nothing. A cursor file \
(agent.cursor in the state directory) records what the centre acknowledged; after a crash the \
few entries past it are sent again and the centre answers \"already recorded\" (one entry per \
URI and digest). The centre records which token sent each entry. Content goes with its \
entry; the agent's own collector-run records stay local.\n\n\
The queue is bounded: beyond max_pending unsent entries (default 100,000) collector runs are \
skipped until the centre takes them.\n\n\
[agent] settings: url (the centre, https:// or a loopback http://), token_env (default \
EVIDENT_AGENT_TOKEN) or token_file, ca_file (a private CA), interval (default 10s), timeout, \
max_pending.\n\
On the centre: `evident token create SITE-NAME --scope push`.\n\n\
Examples:\n  EVIDENT_AGENT_TOKEN=… evident --config /etc/evident/agent.toml agent";

/// Options of `evident agent`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

pub fn run(ctx: &mut Ctx, _args: Args) -> anyhow::Result<()> {
    super::private_umask();
    if ctx.config()?.agent.is_none() {
        return Err(Exit {
            code: 2,
            message: format!(
                "{} has no [agent] table: add one naming the centre, e.g.\n[agent]\nurl = \
                 \"https://evident.example.org:8742\"\ntoken_env = \"EVIDENT_AGENT_TOKEN\"",
                ctx.cli.config.display()
            ),
        }
        .into());
    }
    let config = ctx.cli.config.clone();
    let state = ctx.cli.state_dir.clone();
    evident::daemon::run(&config, state.as_deref())
}
