//! Dashboard sessions: a browser signs in with a token once and then carries an HttpOnly,
//! SameSite=Strict cookie (Secure under TLS) naming a session held in memory. Each session
//! has its own CSRF token for the forms that change state, and re-checks its API token on
//! every request, so revoking the token ends the session. A restart signs everyone out.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use subtle::ConstantTimeEq;

use crate::ledger::leaf::hex;

/// The cookie's name.
pub const COOKIE: &str = "evident_session";
/// How long a session lasts without being used.
pub const IDLE: Duration = Duration::from_secs(8 * 3600);
/// Sessions kept at most; the oldest go first.
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Clone)]
struct Session {
    token_id: String,
    csrf: String,
    last: Instant,
}

/// The live sessions.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

fn random_hex() -> Option<String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).ok()?;
    Some(hex(&b))
}

impl Sessions {
    /// Starts a session for token `token_id`: (session id, CSRF token).
    pub fn create(&self, token_id: &str) -> Option<(String, String)> {
        let (sid, csrf) = (random_hex()?, random_hex()?);
        let mut map = self.map.lock().ok()?;
        map.retain(|_, s| s.last.elapsed() < IDLE);
        if map.len() >= MAX_SESSIONS {
            let oldest = map
                .iter()
                .min_by_key(|(_, s)| s.last)
                .map(|(k, _)| k.clone());
            if let Some(k) = oldest {
                map.remove(&k);
            }
        }
        map.insert(
            sid.clone(),
            Session {
                token_id: token_id.to_owned(),
                csrf: csrf.clone(),
                last: Instant::now(),
            },
        );
        Some((sid, csrf))
    }

    /// The session's token id and CSRF token, refreshing its idle time.
    pub fn get(&self, sid: &str) -> Option<(String, String)> {
        let mut map = self.map.lock().ok()?;
        let s = map.get_mut(sid)?;
        if s.last.elapsed() >= IDLE {
            map.remove(sid);
            return None;
        }
        s.last = Instant::now();
        Some((s.token_id.clone(), s.csrf.clone()))
    }

    /// Ends a session.
    pub fn remove(&self, sid: &str) {
        if let Ok(mut map) = self.map.lock() {
            map.remove(sid);
        }
    }
}

/// Constant-time equality of a submitted CSRF token with the session's.
pub fn csrf_ok(submitted: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(submitted.as_bytes().ct_eq(expected.as_bytes()))
}

/// The session id in a `Cookie` header.
pub fn from_cookie(header: &str) -> Option<&str> {
    header
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_are_random_and_csrf_compares_whole_tokens() {
        let s = Sessions::default();
        let (a, csrf) = s.create("t1").expect("session");
        let (b, _) = s.create("t1").expect("session");
        assert_ne!(a, b);
        assert_eq!(s.get(&a).map(|x| x.0), Some("t1".to_owned()));
        assert!(csrf_ok(&csrf, &csrf));
        assert!(!csrf_ok(&csrf[..10], &csrf));
        assert!(!csrf_ok("", ""));
        s.remove(&a);
        assert!(s.get(&a).is_none());
        assert_eq!(from_cookie("x=1; evident_session=abc; y=2"), Some("abc"));
        assert_eq!(from_cookie("evident_sessionx=abc"), None);
    }
}
