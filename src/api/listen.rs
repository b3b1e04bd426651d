//! The listener: TCP (or TLS over TCP) connections served by hyper, one task each.
//!
//! One loop for both, so plain HTTP and HTTPS share the same limits: a bounded number of
//! connections, a deadline for the request head (slow-loris clients) and for the TLS
//! handshake, and a stop signal that ends accepting.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio_rustls::TlsAcceptor;

/// Connections served at once; more wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 1024;
/// Time for a client to send a request head, and for a TLS handshake.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the listener cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// The address cannot be bound.
    #[error(
        "cannot listen on {addr}: {source}; choose another port with [api] listen, or stop what \
         uses it"
    )]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The certificate or key cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
}

/// Builds the TLS acceptor from PEM files.
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, ListenError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<_, _>>())
        .map_err(|e| {
            ListenError::Tls(format!(
                "cannot read the certificate chain {}: {e}",
                cert.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(ListenError::Tls(format!(
            "{} holds no PEM certificate",
            cert.display()
        )));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        ListenError::Tls(format!(
            "cannot read the private key {}: {e}",
            key.display()
        ))
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ListenError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            ListenError::Tls(format!("the certificate and key do not go together: {e}"))
        })?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Binds `addr`.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ListenError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ListenError::Bind { addr, source })
}

/// Serves `app` on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: axum::Router,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.wait_for(|s| *s) => return,
        };
        let (tcp, _peer) = match accepted {
            Ok(c) => c,
            Err(e) => {
                // EMFILE and friends: wait instead of spinning on the error.
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let service = TowerToHyperService::new(app);
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .keep_alive(true);
            let served = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(HEAD_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            http.serve_connection(TokioIo::new(stream), service).await
                        }
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake failed: {e}");
                            return;
                        }
                        Err(_) => return,
                    }
                }
                None => http.serve_connection(TokioIo::new(tcp), service).await,
            };
            if let Err(e) = served {
                tracing::debug!("connection ended: {e}");
            }
        });
    }
}
