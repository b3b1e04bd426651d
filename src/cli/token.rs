//! `evident token`: create, list and revoke API tokens.

use serde::Serialize;

use super::{Ctx, Format, output};
use evident::api::tokens::{Scope, TokenStore};

/// The long help of this command.
pub const LONG_ABOUT: &str = "Manage the tokens the HTTP API and dashboard accept. A token is shown once, \
when it is created; only its SHA-256 is kept (in api-tokens.json in the state directory, not \
in the ledger). Scopes: `read` (evidence, proofs, content, coverage, metrics, the dashboard), \
`push` (POST /v1/evidence, `evident push`; nothing else), `admin` (everything, including \
starting collector runs). The token's name is recorded in every entry it pushes. Revoking \
takes effect on the next request, without a restart.\n\n\
Examples:\n  evident token create ci-main --scope push\n  \
evident token create auditor-2026 --scope read\n  evident token list\n  evident token revoke ci-main";

/// `evident token …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Create a token and print it (once).
    Create {
        /// Who or what holds it (letters, digits, '.', '_', '-'); recorded in what it pushes.
        name: String,
        /// What it may do.
        #[arg(long, value_enum, default_value_t = Scope::Read)]
        scope: Scope,
    },
    /// List tokens (names, scopes, dates; never the tokens).
    List,
    /// Revoke a token by name.
    Revoke {
        /// The token's name.
        name: String,
    },
}

#[derive(Serialize)]
struct Created<'a> {
    name: &'a str,
    scope: &'a str,
    token: &'a str,
}

pub fn run(ctx: &mut Ctx, cmd: Command) -> anyhow::Result<()> {
    super::private_umask();
    let state = ctx.state()?;
    let store = TokenStore::new(state.dir());
    match cmd {
        Command::Create { name, scope } => {
            let _lock = ctx.job_lock(&state, "tokens", "a token change")?;
            let (token, rec) = store.create(&name, scope)?;
            if ctx.cli.format == Format::Json {
                return output::json(&Created {
                    name: &rec.name,
                    scope: rec.scope.as_str(),
                    token: &token,
                });
            }
            println!("{token}");
            if !ctx.cli.quiet {
                eprintln!(
                    "token {:?} ({} scope) created; it is shown only now: store it in your secret manager \
                     (send it as `Authorization: Bearer <token>`)",
                    rec.name,
                    rec.scope.as_str()
                );
            }
            Ok(())
        }
        Command::List => {
            let list = store.list()?;
            if ctx.cli.format == Format::Json {
                return output::json(&list);
            }
            output::rows_hiding(
                ctx.cli.format,
                &["name", "scope", "id", "created_at", "revoked_at"],
                &list
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.scope.as_str().to_owned(),
                            t.id.clone(),
                            t.created_at.clone(),
                            t.revoked_at.clone().unwrap_or_default(),
                        ]
                    })
                    .collect::<Vec<_>>(),
                &["id"],
            )
        }
        Command::Revoke { name } => {
            let _lock = ctx.job_lock(&state, "tokens", "a token change")?;
            let rec = store.revoke(&name)?;
            if !ctx.cli.quiet {
                eprintln!(
                    "token {:?} revoked; the API refuses it from now on",
                    rec.name
                );
            }
            Ok(())
        }
    }
}
