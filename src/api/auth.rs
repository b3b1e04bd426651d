//! Who may call what: bearer tokens checked against the token file, scopes, and a request
//! budget per token.
//!
//! Handlers state what they need by taking [`Read`], [`Push`] or [`Admin`] as an argument;
//! the extractor answers 401 without a valid token, 403 when its scope does not allow the
//! route, 429 when the token spent its budget. The token itself is never logged.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};

use super::tokens::{Principal, Scope};
use super::{Api, ApiError};

/// A token bucket per token id: `rate` per second, bursts of twice that.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    /// A limiter allowing `rate` requests per second per token.
    pub fn new(rate: f64) -> Self {
        RateLimiter {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `id`'s budget; `Err(seconds)` when it is spent.
    pub fn take(&self, id: &str) -> Result<(), u64> {
        let burst = self.rate * 2.0;
        let now = Instant::now();
        let Ok(mut buckets) = self.buckets.lock() else {
            return Ok(());
        };
        let (level, last) = buckets.entry(id.to_owned()).or_insert((burst, now));
        *level = (*level + now.duration_since(*last).as_secs_f64() * self.rate).min(burst);
        *last = now;
        if *level >= 1.0 {
            *level -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *level) / self.rate).ceil().max(1.0) as u64)
        }
    }
}

/// The token presented in `Authorization: Bearer …`.
fn bearer(parts: &Parts) -> Option<&str> {
    let v = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The principal of the dashboard session the request's cookie names, if it is live.
pub fn session_principal(parts: &Parts, api: &Api) -> Option<Principal> {
    let sid = parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(super::session::from_cookie)?;
    let (token_id, _) = api.sessions.get(sid)?;
    api.tokens.live(&token_id)
}

/// Checks the request's credentials for `needed` (any valid token when `None`). Reads
/// (`needed` = read) also accept a dashboard session, so the dashboard's content and leaf
/// links work in a browser; nothing that changes state does (SameSite=Strict aside, a
/// cookie is ambient authority).
pub fn authorize(parts: &Parts, api: &Api, needed: Option<Scope>) -> Result<Principal, ApiError> {
    let presented = bearer(parts);
    let principal = match presented {
        Some(t) => api.tokens.check(t),
        None if needed == Some(Scope::Read) => session_principal(parts, api),
        None => None,
    };
    let principal = principal.ok_or_else(|| {
        let message = if presented.is_some() {
            "the token is not valid (mistyped, or revoked): `evident token list` shows the live ones"
        } else {
            "this route needs a token: send `Authorization: Bearer <token>` (`evident token \
             create NAME --scope read|push|admin` makes one)"
        };
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    })?;
    if let Some(needed) = needed.filter(|n| !principal.scope.allows(*n)) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!(
                "token {:?} has scope {}; this route needs {}",
                principal.name,
                principal.scope.as_str(),
                needed.as_str()
            ),
        ));
    }
    api.limiter.take(&principal.id).map_err(|wait| ApiError {
        retry_after: Some(wait),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "token {:?} sent more than [api] rate_limit requests per second; retry after {wait}s",
                principal.name
            ),
        )
    })?;
    Ok(principal)
}

macro_rules! scope_extractor {
    ($name:ident, $scope:expr, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $name(pub Principal);

        impl FromRequestParts<Arc<Api>> for $name {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                api: &Arc<Api>,
            ) -> Result<Self, Self::Rejection> {
                authorize(parts, api, $scope).map($name)
            }
        }
    };
}

scope_extractor!(
    Read,
    Some(Scope::Read),
    "A caller with a read (or admin) token."
);
scope_extractor!(
    Push,
    Some(Scope::Push),
    "A caller with a push (or admin) token."
);
scope_extractor!(Admin, Some(Scope::Admin), "A caller with an admin token.");
scope_extractor!(AnyToken, None, "A caller with any valid token.");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_refills_at_the_rate_and_bursts_to_twice_it() {
        let l = RateLimiter::new(5.0);
        for _ in 0..10 {
            assert!(l.take("a").is_ok());
        }
        assert!(l.take("a").is_err(), "burst of 2 × rate spent");
        assert!(l.take("b").is_ok(), "budgets are per token");
        std::thread::sleep(std::time::Duration::from_millis(250));
        assert!(l.take("a").is_ok(), "refilled");
    }
}
