//! API tokens: who may read, push or administer through the HTTP API.
//!
//! A token is `evd_<id>_<secret>`: 12 hex digits that name it and 32 random bytes (base64url)
//! that prove it. Only the SHA-256 of the whole token is kept, in `api-tokens.json` in the
//! state directory (mode 0600, replaced atomically): not in the ledger, whose leaves are
//! exported to auditors. The secret is high-entropy, so a plain hash is enough (no password
//! stretching); the stored hash is compared in constant time.
//!
//! The server re-reads the file when its inode, size or modification time change, so
//! `evident token revoke` takes effect on the next request without a restart.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::ledger::leaf::hex;

/// The token file's name in the state directory.
pub const TOKENS_FILE: &str = "api-tokens.json";

/// What a token may do. Scopes are not nested: a CI token that pushes cannot read the
/// evidence of other teams, and a reader cannot push. `admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read evidence, proofs, content, coverage, metrics; the dashboard.
    Read,
    /// Submit evidence (`POST /v1/evidence`, `evident push`).
    Push,
    /// Everything, including triggering collector runs.
    Admin,
}

impl Scope {
    /// The printed name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Push => "push",
            Scope::Admin => "admin",
        }
    }

    /// Whether a token of this scope may do what `needed` guards.
    pub fn allows(self, needed: Scope) -> bool {
        self == Scope::Admin || self == needed
    }
}

/// One stored token: its name, scope and hash; never the token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    /// The public part of the token, which finds the record.
    pub id: String,
    /// Who or what holds it (`ci-main`, `auditor-2026`); recorded in the entries it pushes.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// Hex SHA-256 of the whole token.
    pub sha256: String,
    /// When it was created (RFC 3339 UTC).
    pub created_at: String,
    /// When it was revoked; a revoked token is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    version: u32,
    tokens: Vec<TokenRecord>,
}

/// Errors of the token store.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The file cannot be read or written.
    #[error("{what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The token file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a token file.
    #[error(
        "{path} is not a valid token file ({message}); restore it from a backup or move it \
         away and create the tokens again"
    )]
    Invalid {
        /// The token file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A name already used by a live token.
    #[error("a token named {0:?} already exists; revoke it first or choose another name")]
    Exists(String),
    /// No live token of that name.
    #[error("no token named {0:?}; `evident token list` shows them")]
    Unknown(String),
    /// A name that would be hard to show or record.
    #[error(
        "token name {0:?} is not allowed: use 1 to 64 letters, digits, '.', '_' or '-' (it is \
         recorded in the entries the token pushes)"
    )]
    BadName(String),
    /// No randomness.
    #[error("cannot draw random bytes for the token: {0}")]
    Random(String),
}

fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// The token file of a state directory.
#[derive(Debug, Clone)]
pub struct TokenStore {
    path: PathBuf,
}

impl TokenStore {
    /// The store in state directory `dir`.
    pub fn new(dir: &Path) -> Self {
        TokenStore {
            path: dir.join(TOKENS_FILE),
        }
    }

    /// The token file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn read(&self) -> Result<TokenFile, TokenError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(TokenFile::default()),
            Err(source) => {
                return Err(TokenError::Io {
                    what: "reading",
                    path: self.path.clone(),
                    source,
                });
            }
        };
        serde_json::from_str(&text).map_err(|e| TokenError::Invalid {
            path: self.path.clone(),
            message: e.to_string(),
        })
    }

    fn write(&self, file: &TokenFile) -> Result<(), TokenError> {
        // Atomic for a reading server; durable, since a token handed out must stay valid.
        crate::ledger::state::replace_private_json(&self.path, file, true).map_err(|source| {
            TokenError::Io {
                what: "writing",
                path: self.path.clone(),
                source,
            }
        })
    }

    /// All tokens, revoked ones included.
    pub fn list(&self) -> Result<Vec<TokenRecord>, TokenError> {
        Ok(self.read()?.tokens)
    }

    /// Creates a token; returns it (the only time it is seen) and its record.
    pub fn create(&self, name: &str, scope: Scope) -> Result<(String, TokenRecord), TokenError> {
        if !valid_name(name) {
            return Err(TokenError::BadName(name.to_owned()));
        }
        let mut file = self.read()?;
        if file
            .tokens
            .iter()
            .any(|t| t.name == name && t.revoked_at.is_none())
        {
            return Err(TokenError::Exists(name.to_owned()));
        }
        let mut random = [0u8; 38];
        getrandom::fill(&mut random).map_err(|e| TokenError::Random(e.to_string()))?;
        let id = hex(&random[..6]);
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&random[6..]);
        let token = format!("evd_{id}_{secret}");
        let record = TokenRecord {
            id,
            name: name.to_owned(),
            scope,
            sha256: token_hash(&token),
            created_at: crate::ledger::now_rfc3339(),
            revoked_at: None,
        };
        file.version = 1;
        file.tokens.push(record.clone());
        self.write(&file)?;
        Ok((token, record))
    }

    /// Revokes the live token called `name`.
    pub fn revoke(&self, name: &str) -> Result<TokenRecord, TokenError> {
        let mut file = self.read()?;
        let t = file
            .tokens
            .iter_mut()
            .find(|t| t.name == name && t.revoked_at.is_none())
            .ok_or_else(|| TokenError::Unknown(name.to_owned()))?;
        t.revoked_at = Some(crate::ledger::now_rfc3339());
        let record = t.clone();
        self.write(&file)?;
        Ok(record)
    }
}

/// Who made a request: the token's name and scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's id.
    pub id: String,
    /// The token's name.
    pub name: String,
    /// Its scope.
    pub scope: Scope,
}

/// The file's identity: a change of any part means it was rewritten.
type Stamp = (u64, i64, i64, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.mtime(), m.mtime_nsec(), m.len()))
}

/// The server's view of the token file, re-read when the file changes.
#[derive(Debug)]
pub struct TokenCache {
    store: TokenStore,
    cached: Mutex<(Option<Stamp>, Vec<TokenRecord>)>,
}

impl TokenCache {
    /// A cache over `store`; the file is read on first use.
    pub fn new(store: TokenStore) -> Self {
        TokenCache {
            store,
            cached: Mutex::new((None, Vec::new())),
        }
    }

    /// The records, re-read first when the file changed. An unreadable token file refuses
    /// every token (and says why in the log once per change).
    fn with_records<T>(&self, f: impl FnOnce(&[TokenRecord]) -> Option<T>) -> Option<T> {
        let now = stamp(self.store.path());
        let mut cached = self.cached.lock().ok()?;
        if cached.0 != now || now.is_none() {
            let tokens = match self.store.list() {
                Ok(t) => t,
                Err(e) => {
                    if cached.0 != now {
                        tracing::error!("API tokens refused: {e}");
                    }
                    Vec::new()
                }
            };
            *cached = (now, tokens);
        }
        f(&cached.1)
    }

    /// Checks a presented token: the principal when it is live and matches.
    pub fn check(&self, token: &str) -> Option<Principal> {
        let id = token.strip_prefix("evd_")?.split('_').next()?;
        let presented = token_hash(token);
        self.with_records(|records| {
            let record = records
                .iter()
                .find(|t| t.id == id && t.revoked_at.is_none())?;
            let equal: bool = presented.as_bytes().ct_eq(record.sha256.as_bytes()).into();
            equal.then(|| Principal {
                id: record.id.clone(),
                name: record.name.clone(),
                scope: record.scope,
            })
        })
    }

    /// The principal of token `id` if it is still live (a dashboard session re-checks its
    /// token on every request, so revoking it ends the session too).
    pub fn live(&self, id: &str) -> Option<Principal> {
        self.with_records(|records| {
            records
                .iter()
                .find(|t| t.id == id && t.revoked_at.is_none())
                .map(|r| Principal {
                    id: r.id.clone(),
                    name: r.name.clone(),
                    scope: r.scope,
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_checked_by_hash_and_revocation_is_seen_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = TokenStore::new(dir.path());
        let (token, rec) = store.create("ci-main", Scope::Push).expect("create");
        assert!(token.starts_with(&format!("evd_{}_", rec.id)));
        let text = std::fs::read_to_string(store.path()).expect("file");
        assert!(!text.contains(&token), "the token itself is never stored");
        assert!(!text.contains(token.rsplit('_').next().expect("secret")));
        let cache = TokenCache::new(store.clone());
        let who = cache.check(&token).expect("valid token");
        assert_eq!((who.name.as_str(), who.scope), ("ci-main", Scope::Push));
        let mut wrong = token.clone();
        let last = wrong.pop().expect("non-empty");
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        assert!(cache.check(&wrong).is_none());
        assert!(cache.check("evd_000000000000_x").is_none());
        assert!(cache.check("Bearer nonsense").is_none());
        assert!(matches!(
            store.create("ci-main", Scope::Read),
            Err(TokenError::Exists(_))
        ));
        store.revoke("ci-main").expect("revoke");
        assert!(cache.check(&token).is_none(), "revoked on the next request");
        // The name is free again once revoked.
        store.create("ci-main", Scope::Read).expect("recreate");
        assert!(matches!(
            store.create("no spaces", Scope::Read),
            Err(TokenError::BadName(_))
        ));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(store.path())
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn scopes_do_not_nest_except_admin() {
        assert!(Scope::Admin.allows(Scope::Push));
        assert!(Scope::Admin.allows(Scope::Read));
        assert!(!Scope::Read.allows(Scope::Push));
        assert!(!Scope::Push.allows(Scope::Read));
        assert!(Scope::Read.allows(Scope::Read));
    }
}
