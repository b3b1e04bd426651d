//! `evident witness`: be a witness (`c2sp.org/tlog-witness`) for other parties' logs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;

use super::{Ctx, Format, output};
use evident::witness::book::Book;

/// The long help of this command.
pub const LONG_ABOUT: &str = "Run a witness: a service, kept by someone other than the log's operator (the \
certification body, an internal audit team), that cosigns a log's checkpoints only when each \
one extends the last it cosigned. A log that showed two histories (a fork: the same origin \
and key, a different tree) or went back (a rollback) cannot get both cosigned, so auditors \
who require cosignatures (`evident verify --witness VKEY`) are never shown either.\n\n\
The witness speaks C2SP tlog-witness: POST /add-checkpoint, answering 404 for an unknown \
log, 403 for a bad signature, 409 with its size when the log's idea of it is stale, 409 or \
422 for a fork. Refused checkpoints whose signature verified are kept as evidence \
(GET /refusals, `evident witness logs`). GET /checkpoint?origin=O gives the latest \
checkpoint it cosigned for a log; GET /logs lists what it follows.\n\n\
State (its Ed25519 cosigner key and SQLite database) lives in --dir, private to its user. \
It listens on loopback by default; to serve other hosts, put it behind a TLS reverse proxy.\n\n\
Examples:\n  evident witness init --dir /var/lib/evident-witness --name witness.example.org/audit\n  \
evident witness serve --dir /var/lib/evident-witness --log aims.example.org/log+1a2b3c4d+AX…\n  \
evident witness logs --dir /var/lib/evident-witness";

/// `evident witness …`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Command {
    /// Make a witness key and state directory; prints the cosigner key logs configure.
    Init {
        /// The witness's state directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// The witness's name, a schema-less URL (witness.example.org/audit).
        #[arg(long)]
        name: String,
    },
    /// Serve the witness until SIGTERM or Ctrl-C.
    Serve {
        /// The witness's state directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
        /// A log to follow: its verifier key (the line `evident init` printed), or a file
        /// holding it. Repeat for each log.
        #[arg(long = "log", value_name = "VKEY|FILE", required = true)]
        logs: Vec<String>,
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8743")]
        listen: SocketAddr,
    },
    /// What the witness follows, and the checkpoints it refused.
    Logs {
        /// The witness's state directory.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

pub fn run(ctx: &mut Ctx, cmd: Command) -> anyhow::Result<()> {
    super::private_umask();
    match cmd {
        Command::Init { dir, name } => {
            let vkey = Book::init(&dir, &name)?;
            if ctx.cli.format == Format::Json {
                return output::json(&serde_json::json!({ "vkey": vkey.key_string() }));
            }
            eprintln!(
                "witness key made in {}; give logs this line for their [[witnesses]] vkey:",
                dir.display()
            );
            println!("{}", vkey.key_string());
            Ok(())
        }
        Command::Logs { dir } => {
            let book = Book::open(&dir, Vec::new())?;
            let (logs, refusals) = (book.followed()?, book.refusals()?);
            if ctx.cli.format == Format::Json {
                return output::json(&serde_json::json!({ "logs": logs, "refusals": refusals }));
            }
            println!("witness {}", book.verifier().key_string());
            for l in &logs {
                println!(
                    "{}  size {}  root {}  cosigned at {}",
                    l.origin, l.size, l.root, l.cosigned_at
                );
            }
            for r in &refusals {
                println!(
                    "REFUSED {} (HTTP {}) at {}: {}",
                    r.origin, r.status, r.at, r.reason
                );
            }
            Ok(())
        }
        Command::Serve { dir, logs, listen } => {
            let keys = logs
                .iter()
                .map(|k| super::key_arg("--log", k))
                .collect::<anyhow::Result<Vec<_>>>()?;
            serve(Book::open(&dir, keys)?, listen)
        }
    }
}

fn serve(book: Book, listen: SocketAddr) -> anyhow::Result<()> {
    if !listen.ip().is_loopback() {
        eprintln!(
            "warning: serving {listen} in plain HTTP; put a TLS reverse proxy in front of it"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let book = Arc::new(book);
    runtime.block_on(async move {
        let listener = evident::api::listen::bind(listen).await?;
        let addr = listener.local_addr()?;
        eprintln!(
            "witness {} listening at http://{addr}/ (Ctrl-C stops)",
            book.verifier().key_string()
        );
        super::serve::until_signal(listener, None, evident::witness::serve::router(book)).await
    })
}
