//! `evident init`: create the state directory, database and signing key.

use serde::Serialize;

use super::{Ctx, Format, output};

/// The long help of this command.
pub const LONG_ABOUT: &str = "Create the state directory (database, blob store, Ed25519 signing key) and print \
the verifier key line `<origin>+<key id>+<public key>` on stdout. Give that line to whoever \
must check your checkpoints and export bundles (your auditor): they verify against it.\n\n\
On a state directory that already holds a ledger, init changes nothing and exits 2 (its \
verifier key is in verifier.vkey): a second key would fork the ledger's identity. If \
signing.key was lost, restore it from a backup (`evident backup`); init never replaces it.\n\n\
Examples:\n  evident --config config/quickstart.toml init\n  evident --config /etc/evident/evident.toml init --format json";

/// Options of `evident init`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {}

#[derive(Serialize)]
struct Out {
    state_dir: String,
    verifier_key: String,
    created: bool,
}

pub fn run(ctx: &mut Ctx, _args: Args) -> anyhow::Result<()> {
    super::private_umask();
    let state = ctx.state()?;
    let config = ctx.config()?.clone();
    let origin = config.ledger.origin.clone();
    let outcome = state.init(&origin)?;
    evident::ledger::blobs::apply_config(state.dir(), config.blobs.as_ref())?;
    let key = outcome.verifier.key_string();
    if ctx.cli.format == Format::Json {
        return output::json(&Out {
            state_dir: state.dir().display().to_string(),
            verifier_key: key,
            created: outcome.created,
        });
    }
    if !ctx.cli.quiet {
        eprintln!("initialised ledger {origin} in {}", state.dir().display());
        eprintln!("verifier key (also in {}):", state.vkey_path().display());
    }
    println!("{key}");
    Ok(())
}
