//! `evident serve`: the API and dashboard, read-only, over a state directory.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;

use super::{Ctx, Exit};
use evident::ledger::reader::Reader;

/// The long help of this command.
pub const LONG_ABOUT: &str = "Serve the HTTP API and dashboard read-only over a state directory, without \
collecting: for an auditor's copy of the ledger (`evident backup`), or a second, read-only \
view beside the daemon. Pushes and collector runs are refused (409); everything else is as \
under `evident run`, with the same tokens (`evident token create NAME --scope read \
--state-dir DIR`).\n\n\
It listens on --listen, else [api] listen, else 127.0.0.1:8742. An address other than \
loopback needs [api] tls_cert and tls_key, or --insecure-http behind a TLS proxy.\n\n\
Examples:\n  evident serve --state-dir /srv/audit-copy --listen 127.0.0.1:8743\n  \
evident --config /etc/evident/evident.toml serve";

/// Options of `evident serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct Args {
    /// Address and port (default: [api] listen, else 127.0.0.1:8742).
    #[arg(long, value_name = "ADDR:PORT")]
    pub listen: Option<SocketAddr>,
    /// Allow plain HTTP on a non-loopback address (only behind a TLS-terminating proxy).
    #[arg(long)]
    pub insecure_http: bool,
}

pub fn run(ctx: &mut Ctx, args: Args) -> anyhow::Result<()> {
    super::private_umask();
    let state = ctx.state()?;
    // Fails early, naming the directory, when there is no ledger to serve.
    Reader::open(&state)?;
    let config = ctx.optional_config()?.cloned();
    if config.is_none() {
        eprintln!(
            "warning: no config: coverage and the SoA use the catalogue's defaults, without the \
             owner's [controls] and [applicability]; pass --config with a copy of theirs"
        );
    }
    if evident::api::tokens::TokenStore::new(state.dir())
        .list()?
        .iter()
        .all(|t| t.revoked_at.is_some())
    {
        eprintln!(
            "warning: {} has no live API token; create one with `evident token create NAME \
             --scope read --state-dir {}`",
            state.dir().display(),
            state.dir().display()
        );
    }
    let mut api_config = config.as_ref().map(|c| c.api.clone()).unwrap_or_default();
    if let Some(l) = args.listen {
        api_config.listen = Some(l);
    }
    api_config.insecure_http |= args.insecure_http;
    api_config.enabled = true;
    let base = ctx
        .cli
        .config
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    api_config.validate(&base).map_err(|(_, m)| Exit {
        code: 2,
        message: m,
    })?;
    let mut config = config;
    if let Some(c) = &mut config {
        c.api = api_config.clone();
    }
    let settings = evident::api::Settings::new(
        config.as_ref(),
        Arc::new(evident::mapping::Mapper::new(
            config.as_ref().map(|c| c.rules.clone()).unwrap_or_default(),
        )),
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let tls = match (&api_config.tls_cert, &api_config.tls_key) {
            (Some(c), Some(k)) => Some(evident::api::listen::tls_acceptor(c, k)?),
            _ => None,
        };
        let listener = evident::api::listen::bind(api_config.listen()).await?;
        let addr = listener.local_addr()?;
        let mut api = evident::api::Api::new(state.clone(), config.as_ref(), settings, None, None);
        api.config = api_config;
        api.tls = tls.is_some();
        let url = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
        tracing::info!(url = %url, state = %state.dir().display(), "serving read-only");
        eprintln!(
            "serving {} read-only at {url}/ (Ctrl-C stops)",
            state.dir().display()
        );
        until_signal(listener, tls, evident::api::router(Arc::new(api))).await
    })
}

/// Serves `app` on `listener` until SIGTERM or Ctrl-C, then stops accepting and lets the
/// connections in flight end.
pub async fn until_signal(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: axum::Router,
) -> anyhow::Result<()> {
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(evident::api::listen::serve(listener, tls, app, stop_rx));
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    let _ = stop.send(true);
    let _ = server.await;
    Ok(())
}
