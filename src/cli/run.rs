//! `evident run`: the daemon in the foreground.

use super::Ctx;

/// The long help of this command.
pub const LONG_ABOUT: &str = "Run Evident as a service in the foreground (systemd Type=notify).\n\n\
Each collector runs on its `schedule` (a crontab line; without one, once at start); failures \
are retried with exponential backoff and never stop the other collectors. Every \
`checkpoint_interval` (default 10m) a checkpoint is signed when the tree grew.\n\n\
Signals: SIGTERM or SIGINT stop scheduling, finish the batch in flight, sign a checkpoint and \
exit 0; SIGHUP reloads the config (an invalid one is refused and the running config stays).\n\
Only one `evident run` may use a state directory; `query` and `verify` work alongside it.\n\n\
Examples:\n  evident --config config/quickstart.toml run          # foreground; Ctrl-C stops it\n  \
EVIDENT_LOG=debug evident --config /etc/evident/evident.toml run\n  \
evident --config /etc/evident/evident.toml --log-format json run";

/// Options of `evident run`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

pub fn run(ctx: &mut Ctx, _args: Args) -> anyhow::Result<()> {
    super::private_umask();
    let config = ctx.cli.config.clone();
    let state = ctx.cli.state_dir.clone();
    evident::daemon::run(&config, state.as_deref())
}
