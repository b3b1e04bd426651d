//! Pagination, in the dialects the sources speak: `Link: <…>; rel="next"` (GitHub, Hugging
//! Face), `X-Next-Page` (GitLab), a page token in the body (Jira Cloud's `nextPageToken`,
//! MLflow's `next_page_token`) and an offset counted in items (Jira Data Center's
//! `startAt`, Redmine's `offset`). A source walks a list with [`Pages`] and handles each
//! page as it arrives, so a failure on page five keeps pages one to four.

use reqwest::Url;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Fetched, Http, same_origin};
use crate::CollectError;

/// Where a list says its next page is.
#[derive(Debug, Clone, Copy)]
pub enum Dialect {
    /// The `Link` header's `rel="next"` (resolved, and kept on this host).
    Link,
    /// GitLab's `X-Next-Page` header, sent back as `page`.
    PageHeader,
    /// A token in the body's field `field`, sent back as the query parameter `param`; an
    /// empty token, or `last` true in the body, ends the list.
    Token {
        /// The body field holding the token.
        field: &'static str,
        /// The query parameter taking it.
        param: &'static str,
        /// A body field that says the page is the last one (Jira's `isLast`).
        last: Option<&'static str>,
    },
    /// An offset counted in items, sent as `param`; the list ends on an empty page or once
    /// the body's `total` field is reached. (Not on a short page: servers may cap the page
    /// size below the one asked for.)
    Offset {
        /// The query parameter taking the offset.
        param: &'static str,
        /// The body field holding the total count.
        total: &'static str,
        /// The body field holding the page's item list (to count it).
        items: &'static str,
    },
}

/// A walk over the pages of one list.
#[derive(Debug)]
pub struct Pages<'h> {
    http: &'h Http,
    first: Url,
    next: Option<Url>,
    dialect: Dialect,
    offset: u64,
    /// Pages asked for so far: a server that sends one again would loop forever.
    seen: std::collections::HashSet<String>,
}

impl<'h> Pages<'h> {
    /// The pages of the list whose first page is `first`.
    pub fn new(http: &'h Http, first: Url, dialect: Dialect) -> Pages<'h> {
        let next = match dialect {
            Dialect::Offset { param, .. } => Some(with_query(&first, param, "0")),
            _ => Some(first.clone()),
        };
        Pages {
            http,
            first,
            next,
            dialect,
            offset: 0,
            seen: std::collections::HashSet::new(),
        }
    }

    /// The next page's body as `T`, or `None` after the last.
    pub async fn next<T: DeserializeOwned>(&mut self) -> Result<Option<T>, CollectError> {
        let Some(url) = self.next.take() else {
            return Ok(None);
        };
        if !self.seen.insert(url.to_string()) {
            return Err(CollectError::schema(format!(
                "GET {url}: the server pointed back to a page it already sent; stopping rather than looping"
            )));
        }
        let fetched = self.http.get(&url, None).await?;
        let body: Value = fetched.json()?;
        self.next = self.after(&fetched, &body)?;
        serde_json::from_value(body).map(Some).map_err(|e| {
            CollectError::schema(format!(
                "GET {url}: the response is not the JSON expected ({e}); is the URL that of the right service and version?"
            ))
        })
    }

    /// Every remaining item, for lists short enough to hold (a run's jobs, an issue's
    /// notes); `items` takes a page's body.
    pub async fn all<P: DeserializeOwned, T>(
        mut self,
        items: impl Fn(P) -> Vec<T>,
    ) -> Result<Vec<T>, CollectError> {
        let mut out = Vec::new();
        while let Some(page) = self.next::<P>().await? {
            out.extend(items(page));
        }
        Ok(out)
    }

    fn after(&mut self, fetched: &Fetched, body: &Value) -> Result<Option<Url>, CollectError> {
        Ok(match self.dialect {
            Dialect::Link => fetched.next_link()?,
            Dialect::PageHeader => {
                let now = query_number(&fetched.url, "page").unwrap_or(1);
                fetched
                    .next_page_number()
                    .filter(|n| *n > now)
                    .map(|n| with_query(&self.first, "page", &n.to_string()))
            }
            Dialect::Token { field, param, last } => {
                let done = last.is_some_and(|l| body[l].as_bool() == Some(true));
                body[field]
                    .as_str()
                    .filter(|t| !t.is_empty() && !done)
                    .map(|t| with_query(&self.first, param, t))
            }
            Dialect::Offset {
                param,
                total,
                items,
            } => {
                let n = body[items].as_array().map_or(0, |a| a.len() as u64);
                self.offset += n;
                let end = n == 0 || body[total].as_u64().is_none_or(|t| self.offset >= t);
                (!end).then(|| with_query(&self.first, param, &self.offset.to_string()))
            }
        })
    }
}

/// `url` with query parameter `key` set to `value` (replacing any earlier one).
fn with_query(url: &Url, key: &str, value: &str) -> Url {
    let mut u = url.clone();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != key)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    u.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(key, value);
    u
}

fn query_number(url: &Url, key: &str) -> Option<u64> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .and_then(|(_, v)| v.parse().ok())
}

/// The `rel="next"` target of a `Link` header value.
pub fn link_next(link: &str) -> Option<&str> {
    link.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| matches!(p.trim().split_once('='), Some((k, v)) if k.trim() == "rel" && v.trim().trim_matches('"').split_whitespace().any(|r| r == "next")));
        let t = target.trim();
        is_next.then(|| t.strip_prefix('<')?.strip_suffix('>')).flatten()
    })
}

impl Http {
    /// The pages of the list at `first`, in `dialect`.
    pub fn pages(&self, first: Url, dialect: Dialect) -> Pages<'_> {
        Pages::new(self, first, dialect)
    }
}

impl Fetched {
    /// The next page from the `Link` header, resolved against this URL. A next page on
    /// another host is refused: the token must not follow it there.
    pub fn next_link(&self) -> Result<Option<Url>, CollectError> {
        let Some(raw) = self.header("link").and_then(link_next) else {
            return Ok(None);
        };
        let next = self.url.join(raw).map_err(|e| {
            CollectError::schema(format!(
                "GET {}: Link header has a bad next URL {raw:?}: {e}",
                self.url
            ))
        })?;
        if !same_origin(&self.url, &next) {
            return Err(CollectError::schema(format!(
                "GET {}: the next page points to another host ({}); refusing to send credentials there",
                self.url,
                next.host_str().unwrap_or("?")
            )));
        }
        Ok(Some(next))
    }

    /// GitLab's `X-Next-Page` (empty on the last page).
    pub fn next_page_number(&self) -> Option<u64> {
        self.header("x-next-page")?.trim().parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_header_next() {
        let h = r#"<https://api.github.com/repositories/1/actions/runs?page=2>; rel="next", <https://api.github.com/repositories/1/actions/runs?page=5>; rel="last""#;
        assert_eq!(
            link_next(h),
            Some("https://api.github.com/repositories/1/actions/runs?page=2")
        );
        assert_eq!(
            link_next(r#"<https://x/?page=1>; rel="prev", <https://x/?page=1>; rel="first""#),
            None
        );
        assert_eq!(
            link_next("<https://huggingface.co/api/models?cursor=abc>; rel=\"next\""),
            Some("https://huggingface.co/api/models?cursor=abc")
        );
        assert_eq!(link_next("garbage"), None);
    }

    /// A server whose every page names the same next token: the walk stops with an error
    /// after two pages instead of looping.
    #[tokio::test]
    async fn a_server_that_repeats_its_next_page_is_not_followed_forever() {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let body = r#"{"items": [1], "next": "again"}"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(format!("{head}{body}").as_bytes()).await;
            }
        });
        let http = Http::new(
            "t",
            super::super::Auth::None,
            super::super::HttpOptions::default(),
        )
        .unwrap();
        let first = Url::parse(&format!("http://{addr}/list")).unwrap();
        let dialect = Dialect::Token {
            field: "next",
            param: "page",
            last: None,
        };
        let mut pages = http.pages(first, dialect);
        assert!(pages.next::<Value>().await.unwrap().is_some());
        assert!(pages.next::<Value>().await.unwrap().is_some());
        let e = pages.next::<Value>().await.unwrap_err().to_string();
        assert!(e.contains("pointed back to a page it already sent"), "{e}");
        assert_eq!(http.requests(), 2);
    }
}
