//! The dashboard: server-rendered pages over the same data as the API.
//!
//! Templates are Jinja (minijinja), HTML auto-escaped because their names end in `.html`;
//! one stylesheet, served from the binary; no script, no external asset, so a strict
//! Content-Security-Policy holds (`default-src 'none'; style-src 'self'`). Pages need a
//! session (a token pasted once into `/login`) or a bearer token, of read or admin scope;
//! the forms that change state (sign out, run a collector) carry the session's CSRF token.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, LazyLock};

use axum::Router;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use minijinja::{Environment, Value, context};
use serde::Serialize;

use super::extract::{P, Q};
use super::session::{COOKIE, csrf_ok, from_cookie};
use super::tokens::{Principal, Scope};
use super::v1::{collector_list, read};
use super::{Api, ApiError};
use crate::catalog::Catalog;
use crate::coverage::{self, Status};
use crate::ledger::query::QueryFilter;
use crate::ledger::reader::{Counting, Reader};

/// The Content-Security-Policy of every page.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Evidence rows a control page shows at most.
const CONTROL_ROWS: u64 = 200;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("base.html", include_str!("templates/base.html")),
        ("login.html", include_str!("templates/login.html")),
        ("overview.html", include_str!("templates/overview.html")),
        ("gaps.html", include_str!("templates/gaps.html")),
        ("control.html", include_str!("templates/control.html")),
        ("entry.html", include_str!("templates/entry.html")),
        ("collectors.html", include_str!("templates/collectors.html")),
        ("audit.html", include_str!("templates/audit.html")),
        ("error.html", include_str!("templates/error.html")),
    ] {
        // A template that does not parse fails the dashboard's unit test, not a release.
        if let Err(e) = env.add_template(name, source) {
            tracing::error!("dashboard template {name}: {e}");
        }
    }
    env
});

const STYLE: &str = include_str!("templates/style.css");

/// The dashboard's routes.
pub fn routes() -> Router<Arc<Api>> {
    Router::new()
        .route("/", get(overview))
        .route("/gaps", get(gaps))
        .route("/controls/{id}", get(control))
        .route("/entries/{index}", get(entry))
        .route("/collectors", get(collectors))
        .route("/collectors/{name}/run", post(run_collector))
        .route("/audit", get(audit))
        .route("/login", get(login_form).post(login))
        .route("/logout", post(logout))
        .route("/assets/style.css", get(style))
}

/// Who is looking: a signed-in session or a bearer token, of read or admin scope.
#[derive(Debug, Clone)]
pub struct Viewer {
    principal: Principal,
    /// The session's CSRF token (empty for bearer requests, which cannot post forms).
    csrf: String,
    sid: Option<String>,
}

#[derive(Serialize)]
struct ViewerOut<'a> {
    name: &'a str,
    scope: &'a str,
}

impl FromRequestParts<Arc<Api>> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, Response> {
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return super::auth::authorize(parts, api, Some(Scope::Read))
                .map(|principal| Viewer {
                    principal,
                    csrf: String::new(),
                    sid: None,
                })
                .map_err(IntoResponse::into_response);
        }
        let sid = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(from_cookie)
            .map(str::to_owned);
        let session = sid.as_deref().and_then(|s| api.sessions.get(s));
        let Some((token_id, csrf)) = session else {
            let next = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let to = format!("/login?next={}", urlencode(next));
            return Err(Redirect::to(&to).into_response());
        };
        let Some(principal) = api.tokens.live(&token_id) else {
            if let Some(s) = &sid {
                api.sessions.remove(s);
            }
            return Err(Redirect::to("/login").into_response());
        };
        if !principal.scope.allows(Scope::Read) {
            return Err(error_page(
                api,
                StatusCode::FORBIDDEN,
                "This token may push evidence, not read it. Sign in with a read or admin token.",
            ));
        }
        api.limiter.take(&principal.id).map_err(|_| {
            error_page(
                api,
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests; wait a moment.",
            )
        })?;
        Ok(Viewer {
            principal,
            csrf,
            sid,
        })
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// What every page's frame shows.
#[derive(Debug, Clone, Serialize, Default)]
struct Frame {
    origin: String,
    entries: u64,
    checkpoint: Option<u64>,
}

fn frame(api: &Api, r: &Reader) -> Result<Frame, ApiError> {
    Ok(Frame {
        origin: api.origin(),
        entries: r.size()?,
        checkpoint: r.latest_checkpoint()?.map(|(s, _)| s),
    })
}

/// Renders `template` inside the frame, with the page's security headers.
fn render(
    status: StatusCode,
    template: &str,
    page: &str,
    viewer: Option<&Viewer>,
    frame: &Frame,
    data: Value,
) -> Response {
    let viewer_out = viewer.map(|v| ViewerOut {
        name: &v.principal.name,
        scope: v.principal.scope.as_str(),
    });
    let ctx = context! {
        page => page,
        viewer => viewer_out,
        csrf => viewer.map_or("", |v| v.csrf.as_str()),
        origin => frame.origin,
        entries => frame.entries,
        checkpoint => frame.checkpoint,
        ..data
    };
    let html = TEMPLATES.get_template(template).and_then(|t| t.render(ctx));
    match html {
        Ok(html) => {
            let mut r = (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response();
            r.headers_mut().insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CSP),
            );
            r
        }
        Err(e) => ApiError::internal(format!("rendering {template}: {e}")).into_response(),
    }
}

fn error_page(api: &Api, status: StatusCode, message: &str) -> Response {
    let frame = Frame {
        origin: api.origin(),
        ..Frame::default()
    };
    render(
        status,
        "error.html",
        "error",
        None,
        &frame,
        context! { status => status.as_u16(), message => message },
    )
}

/// An API error as a page.
fn page_error(api: &Api, e: ApiError) -> Response {
    error_page(api, e.status, &e.message)
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

#[derive(Serialize)]
struct Cell {
    id: &'static str,
    title: &'static str,
    status: &'static str,
}

#[derive(Serialize)]
struct GroupOut {
    id: String,
    title: String,
    controls: Vec<Cell>,
    fresh: usize,
    total: usize,
}

#[derive(Serialize)]
struct Part {
    title: &'static str,
    groups: Vec<GroupOut>,
}

/// The clauses' themes: ISO/IEC 42001's harmonised structure.
const CLAUSE_THEMES: [(&str, &str); 7] = [
    ("4", "Context of the organization"),
    ("5", "Leadership"),
    ("6", "Planning"),
    ("7", "Support"),
    ("8", "Operation"),
    ("9", "Performance evaluation"),
    ("10", "Improvement"),
];

fn all_coverage(api: &Api, r: &Reader) -> Result<coverage::Coverage, ApiError> {
    Ok(coverage::all_now(r, &api.settings().policies, false)?)
}

async fn overview(viewer: Viewer, State(api): State<Arc<Api>>) -> Response {
    let out = read(&api, |api, r| {
        let cov = all_coverage(api, r)?;
        Ok((frame(api, r)?, cov))
    })
    .await;
    let (frame, cov) = match out {
        Ok(x) => x,
        Err(e) => return page_error(&api, e),
    };
    let status: HashMap<&str, Status> = cov.controls.iter().map(|c| (c.id, c.status)).collect();
    let cells = |pick: &dyn Fn(&crate::catalog::Requirement) -> bool| -> Vec<Cell> {
        Catalog::get()
            .all()
            .filter(|r| pick(r))
            .map(|r| Cell {
                id: &r.id,
                title: &r.title,
                status: status.get(r.id.as_str()).map_or("missing", |s| s.as_str()),
            })
            .collect()
    };
    let group = |id: &str, title: &str, controls: Vec<Cell>| GroupOut {
        id: id.to_owned(),
        title: title.to_owned(),
        fresh: controls.iter().filter(|c| c.status == "fresh").count(),
        total: controls.len(),
        controls,
    };
    let annex = Catalog::get()
        .groups
        .iter()
        .map(|g| {
            group(
                &g.id,
                &g.title,
                cells(&|r| r.is_annex_a() && r.group_id() == g.id),
            )
        })
        .collect();
    let clauses = CLAUSE_THEMES
        .iter()
        .map(|(id, title)| {
            group(
                id,
                title,
                cells(&|r| !r.is_annex_a() && r.group_id() == *id),
            )
        })
        .filter(|g| g.total > 0)
        .collect();
    let summary: Vec<BTreeMap<&str, Value>> = Status::ALL
        .into_iter()
        .map(|s| {
            BTreeMap::from([
                ("status", Value::from(s.as_str())),
                ("count", Value::from(cov.count(s))),
            ])
        })
        .collect();
    let parts = vec![
        Part {
            title: "Annex A controls",
            groups: annex,
        },
        Part {
            title: "Management system clauses 4–10",
            groups: clauses,
        },
    ];
    render(
        StatusCode::OK,
        "overview.html",
        "overview",
        Some(&viewer),
        &frame,
        context! { parts => parts, summary => summary, at => cov.at },
    )
}

async fn gaps(viewer: Viewer, State(api): State<Arc<Api>>) -> Response {
    let out = read(&api, |api, r| Ok((frame(api, r)?, all_coverage(api, r)?))).await;
    let (frame, cov) = match out {
        Ok(x) => x,
        Err(e) => return page_error(&api, e),
    };
    let gaps: Vec<_> = cov
        .controls
        .iter()
        .filter(|c| matches!(c.status, Status::Stale | Status::Missing))
        .collect();
    render(
        StatusCode::OK,
        "gaps.html",
        "gaps",
        Some(&viewer),
        &frame,
        context! { gaps => gaps },
    )
}

async fn control(viewer: Viewer, State(api): State<Arc<Api>>, P(id): P<String>) -> Response {
    let Some(req) = Catalog::get().find(&id) else {
        return error_page(
            &api,
            StatusCode::NOT_FOUND,
            "No such control or clause in the ISO/IEC 42001 catalogue.",
        );
    };
    let cid: &'static str = req.id.as_str();
    let out = read(&api, move |api, r| {
        let cov = r.snapshot(|r| {
            coverage::compute(
                r,
                &api.settings().policies,
                &[cid],
                chrono::Utc::now(),
                &Counting::all(false),
            )
        })?;
        let mut rows = Vec::new();
        r.query(
            &QueryFilter {
                controls: vec![cid],
                limit: Some(CONTROL_ROWS + 1),
                newest_first: true,
                ..QueryFilter::default()
            },
            |q| {
                rows.push(q.owned());
                Ok::<_, ApiError>(())
            },
        )?;
        Ok((frame(api, r)?, cov, rows))
    })
    .await;
    let (frame, cov, mut rows) = match out {
        Ok(x) => x,
        Err(e) => return page_error(&api, e),
    };
    let more = rows.len() as u64 > CONTROL_ROWS;
    rows.truncate(CONTROL_ROWS as usize);
    // Current evidence first, then what was superseded or removed; newest first in each.
    rows.sort_by_key(|q| q.state != crate::ledger::reader::State::Current);
    let rows: Vec<_> = rows
        .iter()
        .map(|q| {
            context! {
                index => q.row.index,
                state => q.state.as_str(),
                title => q.row.title,
                uri => q.row.uri,
                collected_at => q.row.collected_at,
                source => q.row.source,
                has_blob => q.row.has_blob,
                sha256 => q.row.sha256,
            }
        })
        .collect();
    render(
        StatusCode::OK,
        "control.html",
        "control",
        Some(&viewer),
        &frame,
        context! {
            control => context! { id => req.id, title => req.title },
            summary => req.summary,
            cov => cov.controls.first(),
            rows => rows,
            more => more,
        },
    )
}

async fn entry(viewer: Viewer, State(api): State<Arc<Api>>, P(index): P<u64>) -> Response {
    let out = read(&api, move |api, r| {
        let entry = r
            .entry(index)?
            .ok_or_else(|| ApiError::not_found(format!("There is no entry {index}.")))?;
        let (state, by) = r.entry_state(index, &entry.kind)?;
        let mut leaf = Vec::new();
        r.for_each_leaf_at(index, |b| leaf = b.to_vec())?;
        let value: serde_json::Value = serde_json::from_slice(&leaf).map_err(ApiError::internal)?;
        let submitted_by = value
            .pointer("/predicate/submittedBy")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let pretty = serde_json::to_string_pretty(&value).map_err(ApiError::internal)?;
        let verifier = api.state.verifier()?;
        let receipt = match crate::ledger::receipt::receipt(r, &verifier, index) {
            Ok(rc) => Some((rc.checkpoint_size, rc.proof.encode())),
            Err(crate::ledger::receipt::ReceiptError::NotCovered(_)) => None,
            Err(e) => return Err(ApiError::internal(e)),
        };
        Ok((
            frame(api, r)?,
            entry,
            state,
            by,
            pretty,
            submitted_by,
            receipt,
        ))
    })
    .await;
    let (frame, e, state, by, leaf, submitted_by, receipt) = match out {
        Ok(x) => x,
        Err(e) => return page_error(&api, e),
    };
    render(
        StatusCode::OK,
        "entry.html",
        "entry",
        Some(&viewer),
        &frame,
        context! {
            e => e,
            state => state.as_str(),
            superseded_by => by,
            leaf => leaf,
            submitted_by => submitted_by,
            checkpoint_size => receipt.as_ref().map(|r| r.0),
            receipt => receipt.map(|r| r.1),
        },
    )
}

/// Query of the collectors page: which run was started, or why not (a fixed code, so the
/// page never shows text from its address).
#[derive(Debug, serde::Deserialize)]
pub struct CollectorsParams {
    started: Option<String>,
    refused: Option<String>,
}

fn refusal(code: &str) -> &'static str {
    match code {
        "busy" => "That collector is running now; its next run starts when it is done.",
        "read-only" => "This server does not collect (evident serve).",
        _ => "There is no such collector here.",
    }
}

async fn collectors(
    viewer: Viewer,
    State(api): State<Arc<Api>>,
    Q(p): Q<CollectorsParams>,
) -> Response {
    let out = read(&api, |api, r| {
        let live = api
            .status
            .as_ref()
            .map(|s| s.snapshot())
            .unwrap_or_default();
        Ok((frame(api, r)?, collector_list(&api.settings(), &live, r)?))
    })
    .await;
    let (frame, list) = match out {
        Ok(x) => x,
        Err(e) => return page_error(&api, e),
    };
    let settings = api.settings();
    let notice = match (p.started, p.refused) {
        (Some(n), _) if settings.collectors.iter().any(|c| c.name == n) => {
            Some(format!("A run of {n} has started."))
        }
        (_, Some(code)) => Some(refusal(&code).to_owned()),
        _ => None,
    };
    let admin =
        viewer.principal.scope == Scope::Admin && api.write.is_some() && !viewer.csrf.is_empty();
    render(
        StatusCode::OK,
        "collectors.html",
        "collectors",
        Some(&viewer),
        &frame,
        context! { collectors => list, admin => admin, notice => notice },
    )
}

type Form = axum::extract::Form<HashMap<String, String>>;

async fn run_collector(
    viewer: Viewer,
    State(api): State<Arc<Api>>,
    P(name): P<String>,
    form: Form,
) -> Response {
    if !csrf_ok(form.get("csrf").map_or("", String::as_str), &viewer.csrf) {
        return error_page(
            &api,
            StatusCode::FORBIDDEN,
            "The form expired; reload the page and try again.",
        );
    }
    if viewer.principal.scope != Scope::Admin {
        return error_page(
            &api,
            StatusCode::FORBIDDEN,
            "Starting a collector run needs an admin token.",
        );
    }
    let known = api.settings().collectors.iter().any(|c| c.name == name);
    let started = match (&api.status, &api.write) {
        (Some(s), Some(_)) if known => s.trigger(&name).map_err(|_| "busy"),
        (_, None) => Err("read-only"),
        _ => Err("unknown"),
    };
    let to = match started {
        Ok(()) => {
            tracing::info!(collector = %name, token = %viewer.principal.name, "collector run requested from the dashboard");
            format!("/collectors?started={}", urlencode(&name))
        }
        Err(code) => format!("/collectors?refused={code}"),
    };
    Redirect::to(&to).into_response()
}

async fn audit(viewer: Viewer, State(api): State<Arc<Api>>) -> Response {
    let out = read(&api, |api, r| {
        let settings = api.settings();
        let cov = coverage::all_now(r, &settings.policies, true)?;
        let soa = crate::soa::statement(&cov, &settings.policies);
        Ok((frame(api, r)?, soa, r.latest_checkpoint()?.map(|(_, n)| n)))
    })
    .await;
    let (frame, soa, note) = match out {
        Ok(x) => x,
        Err(e) => return page_error(&api, e),
    };
    render(
        StatusCode::OK,
        "audit.html",
        "audit",
        Some(&viewer),
        &frame,
        context! { soa => soa, note => note },
    )
}

/// Query of the login page.
#[derive(Debug, serde::Deserialize)]
pub struct LoginParams {
    next: Option<String>,
}

/// Only paths on this site: `//evil.example` or `https://…` would make the login an open
/// redirect.
fn safe_next(next: Option<&str>) -> String {
    match next {
        // Browsers drop tabs and newlines from URLs (`/\t/evil` is `//evil`): none allowed.
        Some(n)
            if n.starts_with('/')
                && !n.starts_with("//")
                && !n.contains('\\')
                && n.len() <= 2048
                && !n.chars().any(|c| c.is_control() || c.is_whitespace()) =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

async fn login_form(State(api): State<Arc<Api>>, Q(p): Q<LoginParams>) -> Response {
    let frame = Frame {
        origin: api.origin(),
        ..Frame::default()
    };
    render(
        StatusCode::OK,
        "login.html",
        "login",
        None,
        &frame,
        context! { next => safe_next(p.next.as_deref()), error => None::<String> },
    )
}

async fn login(State(api): State<Arc<Api>>, form: Form) -> Response {
    let next = safe_next(form.get("next").map(String::as_str));
    let principal = form.get("token").and_then(|t| api.tokens.check(t.trim()));
    let frame = Frame {
        origin: api.origin(),
        ..Frame::default()
    };
    let refuse = |message: &str| {
        render(
            StatusCode::UNAUTHORIZED,
            "login.html",
            "login",
            None,
            &frame,
            context! { next => next, error => message },
        )
    };
    let Some(principal) = principal else {
        return refuse("That token is not valid (or was revoked).");
    };
    if !principal.scope.allows(Scope::Read) {
        return refuse("That token may only push evidence; sign in with a read or admin token.");
    }
    let Some((sid, _)) = api.sessions.create(&principal.id) else {
        return ApiError::internal("no randomness for a session").into_response();
    };
    tracing::info!(token = %principal.name, "dashboard sign-in");
    let mut r = Redirect::to(&next).into_response();
    // A browser-session cookie: the server ends the session after IDLE without use.
    let cookie = format!(
        "{COOKIE}={sid}; Path=/; HttpOnly; SameSite=Strict{}",
        if api.tls { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

async fn logout(viewer: Viewer, State(api): State<Arc<Api>>, form: Form) -> Response {
    if !csrf_ok(form.get("csrf").map_or("", String::as_str), &viewer.csrf) {
        return error_page(
            &api,
            StatusCode::FORBIDDEN,
            "The form expired; reload the page and try again.",
        );
    }
    if let Some(s) = &viewer.sid {
        api.sessions.remove(s);
    }
    let mut r = Redirect::to("/login").into_response();
    let cookie = format!(
        "{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if api.tls { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_parses_and_escapes_html() {
        for name in [
            "base.html",
            "login.html",
            "overview.html",
            "gaps.html",
            "control.html",
            "entry.html",
            "collectors.html",
            "audit.html",
            "error.html",
        ] {
            assert!(
                TEMPLATES.get_template(name).is_ok(),
                "{name} does not parse"
            );
        }
        let html = TEMPLATES
            .get_template("error.html")
            .and_then(|t| {
                t.render(context! { status => 404, message => "<script>alert(1)</script>", origin => "o", entries => 0 })
            })
            .expect("renders");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn login_redirects_stay_on_this_site() {
        assert_eq!(safe_next(Some("/controls/A.2.2")), "/controls/A.2.2");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(Some("/\\evil.example")), "/");
        assert_eq!(safe_next(None), "/");
        assert_eq!(safe_next(Some("/\t/evil.example")), "/");
        assert_eq!(safe_next(Some("/\n/evil.example")), "/");
        assert_eq!(safe_next(Some("/ /evil.example")), "/");
    }
}
