//! `evident witness serve`: the witness's HTTP side. `POST /add-checkpoint` (the spec's
//! submission endpoint); `GET /checkpoint?origin=O` (the latest checkpoint cosigned for a
//! log, with this witness's cosignature, for monitors); `GET /logs` and `GET /refusals`
//! (JSON: what it follows, and the checkpoints it refused as forks or rollbacks). Served by
//! the API's listener (bounded connections, request-head deadline).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::book::{Answer, Book};
use super::protocol::MAX_BODY;

/// The routes over `book`.
pub fn router(book: Arc<Book>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .route("/checkpoint", get(checkpoint))
        .route("/logs", get(logs))
        .route("/refusals", get(refusals))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(book)
}

fn answer(a: Answer) -> Response {
    let status = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, [(header::CONTENT_TYPE, a.content_type)], a.body).into_response()
}

async fn add_checkpoint(State(book): State<Arc<Book>>, body: Bytes) -> Response {
    // SQLite and a signature: off the async threads.
    match tokio::task::spawn_blocking(move || book.add_checkpoint(&body)).await {
        Ok(a) => answer(a),
        Err(_) => answer(Answer {
            status: 500,
            content_type: "text/plain; charset=utf-8",
            body: "witness task failed\n".into(),
        }),
    }
}

#[derive(serde::Deserialize)]
struct Origin {
    origin: String,
}

async fn checkpoint(State(book): State<Arc<Book>>, Query(q): Query<Origin>) -> Response {
    match book.latest(&q.origin) {
        Ok(Some(note)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            note,
        )
            .into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            "no checkpoint cosigned for that origin\n",
        )
            .into_response(),
        Err(e) => internal(&e),
    }
}

async fn logs(State(book): State<Arc<Book>>) -> Response {
    match book.followed() {
        Ok(l) => axum::Json(l).into_response(),
        Err(e) => internal(&e),
    }
}

async fn refusals(State(book): State<Arc<Book>>) -> Response {
    match book.refusals() {
        Ok(r) => axum::Json(r).into_response(),
        Err(e) => internal(&e),
    }
}

fn internal(e: &super::WitnessError) -> Response {
    tracing::error!("witness: {e}");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        "witness storage failed\n",
    )
        .into_response()
}
