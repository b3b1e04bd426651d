//! Pagination: `Link: <…>; rel="next"` (GitHub, Hugging Face), `X-Next-Page` (GitLab); page
//! tokens and offsets are read from bodies by each collector.

use reqwest::Url;

use super::{Fetched, Http, same_origin};
use crate::CollectError;

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
    /// Every page of a `Link`-paginated list from `first`; `items` takes a page's body.
    pub async fn link_pages<T, L: serde::de::DeserializeOwned>(
        &self,
        first: Url,
        items: impl Fn(L) -> Vec<T>,
    ) -> Result<Vec<T>, CollectError> {
        let mut out = Vec::new();
        let mut next = Some(first);
        while let Some(url) = next {
            let page = self.get(&url, None).await?;
            out.extend(items(page.json()?));
            next = page.next_link()?;
        }
        Ok(out)
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
}
