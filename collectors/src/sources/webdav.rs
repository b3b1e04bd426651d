//! The `webdav` collector: a WebDAV folder (Nextcloud, SharePoint, Apache mod_dav, WsgiDAV).
//!
//! Walks with `PROPFIND Depth: 1` per collection, asking only for the properties it uses
//! (`allprop` also carries quota figures that change on every call). The parser goes by
//! namespace, never by prefix (`D:`, `ns0:`, `lp1:` are all `DAV:`), counts only `propstat`
//! blocks with status 200, and reads ETags with or without quotes and `W/`. A file whose
//! ETag, size and modification time are known is not downloaded again; a changed one is
//! streamed to a scratch file and hashed by the recorder. Files gone since the last run are
//! recorded as removed, except under folders that could not be listed. Hrefs outside the
//! configured folder or with `..` segments are skipped.

use std::collections::{HashMap, HashSet};

use globset::GlobSet;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, Url};
use serde::{Deserialize, Serialize};

use super::download;
use super::record::{api_root, parse_http_date, segment};
use super::{Common, GlobPattern, glob_set};
use crate::driver::{Run, Source};
use crate::http::{Auth, Http};
use crate::media::media_type_for;
use crate::{CollectError, Content, Suggest};

const PROPFIND: &str = r#"<?xml version="1.0" encoding="utf-8"?><d:propfind xmlns:d="DAV:"><d:prop><d:resourcetype/><d:getetag/><d:getlastmodified/><d:getcontentlength/><d:getcontenttype/></d:prop></d:propfind>"#;
/// Collections deeper than this are not walked (a loop of server-side links cannot run away).
const MAX_DEPTH: usize = 64;

/// `kind = "webdav"` settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebdavConfig {
    /// The folder's URL, e.g. `https://cloud.example.com/remote.php/dav/files/alice/AIMS/`.
    pub url: String,
    /// User for basic auth; the password or app token comes from `token_env`/`token_file`.
    #[serde(default)]
    pub user: Option<String>,
    /// Only files matching one of these globs (relative to the folder); default: all.
    #[serde(default)]
    pub include: Vec<GlobPattern>,
    /// Files or folders matching any of these are skipped.
    #[serde(default)]
    pub exclude: Vec<GlobPattern>,
}

/// A running WebDAV collector.
#[derive(Debug)]
pub struct WebdavCollector {
    root: Url,
    host: String,
    include: Option<GlobSet>,
    exclude: GlobSet,
    max_file_size: u64,
    http: Http,
}

/// One `<response>` of a multistatus.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DavEntry {
    /// The href as sent (percent-encoded; XML entities resolved).
    pub href: String,
    /// A collection (folder).
    pub collection: bool,
    /// The ETag, without `W/` and quotes.
    pub etag: Option<String>,
    /// `getlastmodified` as written.
    pub last_modified: Option<String>,
    /// `getcontentlength`.
    pub size: Option<u64>,
    /// `getcontenttype`.
    pub content_type: Option<String>,
}

/// An ETag without the weak marker and the quotes.
pub fn normalize_etag(e: &str) -> String {
    let t = e.trim();
    let t = t.strip_prefix("W/").unwrap_or(t);
    t.trim_matches('"').to_owned()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a `207 Multi-Status` body. Only `DAV:` elements count, whatever their prefix;
/// properties in a `propstat` whose status is not 200 are ignored.
pub fn parse_multistatus(xml: &[u8]) -> Result<Vec<DavEntry>, String> {
    let text =
        std::str::from_utf8(xml).map_err(|e| format!("the PROPFIND answer is not UTF-8: {e}"))?;
    let mut r = quick_xml::NsReader::from_str(text);
    let mut out = Vec::new();
    let mut path: Vec<String> = Vec::new(); // local names of open DAV: elements ("" for others)
    let mut cur: Option<DavEntry> = None;
    let mut stat = DavEntry::default(); // properties of the propstat being read
    let mut status_ok = false;
    let mut buf = String::new();
    let mut saw_multistatus = false;
    loop {
        let at = r.buffer_position();
        let (ns, ev) = r
            .read_resolved_event()
            .map_err(|e| format!("malformed XML after byte {at}: {e}"))?;
        let dav = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == "DAV:");
        match ev {
            Event::Start(e) => {
                let name = if dav {
                    e.local_name().as_ref().to_owned()
                } else {
                    String::new()
                };
                match name.as_str() {
                    "multistatus" => saw_multistatus = true,
                    "response" => cur = Some(DavEntry::default()),
                    "propstat" => {
                        stat = DavEntry::default();
                        status_ok = false;
                    }
                    "collection" if path.last().is_some_and(|p| p == "resourcetype") => {
                        stat.collection = true
                    }
                    _ => {}
                }
                buf.clear();
                path.push(name);
            }
            Event::Empty(e)
                if dav
                    && e.local_name().as_ref() == "collection"
                    && path.last().is_some_and(|p| p == "resourcetype") =>
            {
                stat.collection = true;
            }
            Event::Text(t) => buf.push_str(&t.xml10_content()),
            Event::CData(t) => buf.push_str(&t.into_inner()),
            Event::GeneralRef(g) => buf.extend(super::record::xml_entity(&g)),
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                let v = buf.trim().to_owned();
                let in_prop = path.iter().any(|p| p == "prop");
                match name.as_str() {
                    "href" if path.last().is_some_and(|p| p == "response") => {
                        if let Some(c) = cur.as_mut() {
                            c.href = v;
                        }
                    }
                    "status" if path.last().is_some_and(|p| p == "propstat") => {
                        status_ok = v.split_whitespace().nth(1) == Some("200");
                    }
                    "getetag" if in_prop => {
                        stat.etag = Some(normalize_etag(&v)).filter(|e| !e.is_empty())
                    }
                    "getlastmodified" if in_prop => stat.last_modified = Some(v),
                    "getcontentlength" if in_prop => stat.size = v.parse().ok(),
                    "getcontenttype" if in_prop => {
                        stat.content_type = Some(v).filter(|t| !t.is_empty())
                    }
                    "propstat" => {
                        if status_ok && let Some(c) = cur.as_mut() {
                            c.collection |= stat.collection;
                            c.etag = c.etag.take().or(stat.etag.take());
                            c.last_modified = c.last_modified.take().or(stat.last_modified.take());
                            c.size = c.size.or(stat.size);
                            c.content_type = c.content_type.take().or(stat.content_type.take());
                        }
                    }
                    "response" => {
                        if let Some(c) = cur.take().filter(|c| !c.href.is_empty()) {
                            out.push(c);
                        }
                    }
                    _ => {}
                }
                buf.clear();
            }
            // A listing cut short would read as a folder whose files were all removed.
            Event::Eof if !path.is_empty() => {
                return Err(format!(
                    "the PROPFIND answer is truncated (it ends inside {} element(s)); nothing \
                     is recorded as removed, the next run tries again",
                    path.len()
                ));
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_multistatus {
        return Err("the answer is not a DAV:multistatus document".into());
    }
    Ok(out)
}

/// What the ledger holds for a file too large to download: its metadata.
#[derive(Debug, Serialize)]
struct Metadata<'a> {
    url: &'a str,
    entry: &'a DavEntry,
}

impl WebdavCollector {
    fn uri(&self, rel: &str) -> String {
        let enc: Vec<String> = rel.split('/').map(segment).collect();
        format!(
            "webdav://{}{}{}",
            self.host,
            self.root.path(),
            enc.join("/")
        )
    }

    async fn propfind(&self, url: &Url) -> Result<Vec<DavEntry>, CollectError> {
        let mut h = HeaderMap::new();
        h.insert("depth", HeaderValue::from_static("1"));
        h.insert(
            "content-type",
            HeaderValue::from_static("application/xml; charset=utf-8"),
        );
        let propfind =
            Method::from_bytes(b"PROPFIND").map_err(|e| CollectError::Task(e.to_string()))?;
        let f = self
            .http
            .request(propfind, url, h, Some(PROPFIND.as_bytes().to_vec()))
            .await?;
        if f.status != 207 {
            return Err(CollectError::schema(format!(
                "PROPFIND {url}: expected 207 Multi-Status, got {}; is this a WebDAV URL?",
                f.status
            )));
        }
        parse_multistatus(&f.body).map_err(|e| CollectError::schema(format!("PROPFIND {url}: {e}")))
    }

    /// The path of `href` relative to the root, or why it is refused.
    fn relative(&self, href: &str) -> Result<String, String> {
        // Hrefs may be absolute URLs or absolute paths.
        // Decoded once, here: a name may itself contain "%41".
        let path = match Url::parse(href) {
            Ok(u) => percent_decode(u.path()),
            Err(_) => percent_decode(href),
        };
        let root = percent_decode(self.root.path());
        let rel = path
            .strip_prefix(&root)
            .ok_or_else(|| format!("href {href:?} is outside {}", self.root))?;
        let rel = rel.trim_end_matches('/');
        if rel.split('/').any(|s| s == ".." || s == ".") || rel.contains('\0') {
            return Err(format!("href {href:?} has a '..' or '.' segment"));
        }
        Ok(rel.to_owned())
    }

    fn wanted(&self, rel: &str) -> bool {
        !self.exclude.is_match(rel) && self.include.as_ref().is_none_or(|i| i.is_match(rel))
    }
    /// The URL of the file or folder at `rel`.
    fn url_of(&self, rel: &str) -> Result<Url, String> {
        self.root
            .join(&rel.split('/').map(segment).collect::<Vec<_>>().join("/"))
            .map_err(|e| e.to_string())
    }

    /// Records one file: unchanged, by its metadata (too large) or downloaded.
    async fn file(
        &self,
        run: &mut Run<'_>,
        rel: &str,
        e: &DavEntry,
        uri: String,
    ) -> Result<(), CollectError> {
        let version = format!(
            "{}|{}|{}",
            e.etag.as_deref().unwrap_or(""),
            e.size.unwrap_or(0),
            e.last_modified.as_deref().unwrap_or("")
        );
        if run.unchanged(&uri, &version) {
            return Ok(());
        }
        let file_url = match self.url_of(rel) {
            Ok(u) => u,
            Err(err) => {
                run.problem(uri, format!("bad URL: {err}"));
                return Ok(());
            }
        };
        let meta = Metadata {
            url: file_url.as_str(),
            entry: e,
        };
        let got = download::document(
            run,
            &self.http,
            &file_url,
            HeaderMap::new(),
            &uri,
            e.size,
            self.max_file_size,
            &meta,
        )
        .await;
        let Some((mut o, _)) = run.item(&uri, got)? else {
            return Ok(());
        };
        if matches!(o.content, Content::File(_)) {
            o.media_type = e
                .content_type
                .as_deref()
                .and_then(|t| t.split(';').next())
                .map(|t| t.trim().to_owned())
                .or_else(|| media_type_for(rel).map(str::to_owned));
        }
        o.path = Some(rel.to_owned());
        o.title = rel.rsplit('/').next().map(str::to_owned);
        o.updated_at = e.last_modified.as_deref().and_then(parse_http_date);
        o.version = Some(version);
        o.suggest = Suggest::Document(rel.to_owned());
        run.push(o);
        Ok(())
    }

    /// The entries of one listed folder by path relative to the root; hrefs that leave the
    /// root are reported and skipped.
    fn children(
        &self,
        run: &mut Run<'_>,
        rel_dir: &str,
        entries: Vec<DavEntry>,
    ) -> Vec<(String, DavEntry)> {
        let mut by_rel: HashMap<String, DavEntry> = HashMap::new();
        for e in entries {
            match self.relative(&e.href) {
                Ok(rel) if rel == rel_dir => {} // the collection itself
                Ok(rel) => {
                    by_rel.insert(rel, e);
                }
                Err(why) => run.skipped(e.href.clone(), format!("{why}; skipped")),
            }
        }
        let mut all: Vec<(String, DavEntry)> = by_rel.into_iter().collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }
}

#[async_trait::async_trait]
impl Source for WebdavCollector {
    type Config = WebdavConfig;

    fn new(name: &str, cfg: &WebdavConfig, common: &Common) -> Result<Self, CollectError> {
        let (mut root, host) = api_root(name, "url", &cfg.url, "")?;
        if !root.path().ends_with('/') {
            root.set_path(&format!("{}/", root.path()));
        }
        let user = cfg.user.clone();
        let auth = move |t| match user {
            Some(user) => Auth::Basic { user, token: t },
            None => Auth::Bearer(t),
        };
        Ok(WebdavCollector {
            root,
            host,
            include: (!cfg.include.is_empty()).then(|| glob_set(&cfg.include)),
            exclude: glob_set(&cfg.exclude),
            max_file_size: common.max_file_size,
            http: common.http(name, auth, "read access to the folder", &[])?,
        })
    }

    async fn scan(&self, run: &mut Run<'_>) -> Result<(), CollectError> {
        let mut seen: HashSet<String> = HashSet::new();
        let mut failed_dirs: Vec<String> = Vec::new();
        let mut stack: Vec<(Url, String, usize)> = vec![(self.root.clone(), String::new(), 0)];
        let mut visited = HashSet::new();
        while let Some((url, rel_dir, depth)) = stack.pop() {
            if !visited.insert(url.path().to_owned()) {
                continue;
            }
            let listed = self.propfind(&url).await;
            let entries = if rel_dir.is_empty() {
                listed?
            } else if let Some(e) = run.item(&self.uri(&rel_dir), listed)? {
                e
            } else {
                failed_dirs.push(format!("{rel_dir}/"));
                continue;
            };
            for (rel, e) in self.children(run, &rel_dir, entries) {
                if e.collection {
                    if depth + 1 < MAX_DEPTH
                        && !self.exclude.is_match(&rel)
                        && !self.exclude.is_match(format!("{rel}/\0"))
                        && let Ok(mut child) = self.url_of(&rel)
                    {
                        child.set_path(&format!("{}/", child.path().trim_end_matches('/')));
                        stack.push((child, rel, depth + 1));
                    }
                } else if self.wanted(&rel) {
                    let uri = self.uri(&rel);
                    seen.insert(uri.clone());
                    self.file(run, &rel, &e, uri).await?;
                }
            }
        }
        let prefix = self.uri("");
        let present = |uri: &str| {
            let rel = percent_decode(uri.strip_prefix(&prefix).unwrap_or(""));
            seen.contains(uri)
                || failed_dirs
                    .iter()
                    .any(|d| rel.starts_with(d.trim_start_matches('/')))
        };
        for o in run.sweep_removed(&prefix, "document_removed", present) {
            o.path = Some(percent_decode(o.uri.strip_prefix(&prefix).unwrap_or("")));
        }
        Ok(())
    }

    fn http(&self) -> Option<&Http> {
        Some(&self.http)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/fixtures/api-samples/"
    );

    #[test]
    fn wsgidav_and_apache_dialects() {
        let ws = r#"<?xml version="1.0" encoding="utf-8" ?>
<ns0:multistatus xmlns:ns0="DAV:"><ns0:response><ns0:href>/specs/</ns0:href><ns0:propstat><ns0:prop><ns0:resourcetype><ns0:collection /></ns0:resourcetype></ns0:prop><ns0:status>HTTP/1.1 200 OK</ns0:status></ns0:propstat></ns0:response>
<ns0:response><ns0:href>/specs/design%20notes.md</ns0:href><ns0:propstat><ns0:prop><ns0:resourcetype /><ns0:getcontentlength>8</ns0:getcontentlength><ns0:getcontenttype>text/markdown; charset=utf-8</ns0:getcontenttype><ns0:getlastmodified>Sun, 22 Nov 2026 05:43:55 GMT</ns0:getlastmodified><ns0:getetag>10103009-1795326235-8</ns0:getetag></ns0:prop><ns0:status>HTTP/1.1 200 OK</ns0:status></ns0:propstat>
<ns0:propstat><ns0:prop><ns0:getetag>bogus</ns0:getetag></ns0:prop><ns0:status>HTTP/1.1 404 Not Found</ns0:status></ns0:propstat></ns0:response></ns0:multistatus>"#;
        let e = parse_multistatus(ws.as_bytes()).unwrap();
        assert_eq!(e.len(), 2);
        assert!(e[0].collection);
        assert_eq!(e[1].href, "/specs/design%20notes.md");
        assert_eq!(e[1].etag.as_deref(), Some("10103009-1795326235-8"));
        assert_eq!(e[1].size, Some(8));
        let apache = r#"<?xml version="1.0" encoding="utf-8"?>
<D:multistatus xmlns:D="DAV:"><D:response xmlns:lp1="DAV:"><D:href>/R&amp;D/</D:href><D:propstat><D:prop><lp1:resourcetype><D:collection></D:collection></lp1:resourcetype></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>
<D:response xmlns:lp1="DAV:"><D:href>/R&amp;D/doc1.txt</D:href><D:propstat><D:prop><lp1:resourcetype/><lp1:getcontentlength>11</lp1:getcontentlength><lp1:getetag>W/"b-660d6f94f887e"</lp1:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>"#;
        let e = parse_multistatus(apache.as_bytes()).unwrap();
        assert!(e[0].collection);
        assert_eq!(e[1].href, "/R&D/doc1.txt");
        assert_eq!(e[1].etag.as_deref(), Some("b-660d6f94f887e"));
        // A foreign namespace with DAV-like names does not count.
        let foreign = r#"<D:multistatus xmlns:D="DAV:" xmlns:x="urn:x"><D:response><D:href>/a</D:href><D:propstat><D:prop><x:getetag>no</x:getetag></D:prop><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response></D:multistatus>"#;
        assert_eq!(parse_multistatus(foreign.as_bytes()).unwrap()[0].etag, None);
    }

    #[test]
    fn reference_samples_parse() {
        for f in ["wsgidav-propfind-depth1.xml", "apache-propfind-depth1.xml"] {
            let x = std::fs::read(format!("{SAMPLES}{f}")).unwrap();
            let e = parse_multistatus(&x).unwrap();
            assert!(e.len() >= 2, "{f}: {e:?}");
            assert!(e.iter().any(|d| !d.collection && d.etag.is_some()), "{f}");
        }
    }

    #[test]
    fn malformed_xml_is_an_error() {
        // Issue 11: a truncated listing is an error, never an empty folder.
        assert!(
            parse_multistatus(b"<D:multistatus xmlns:D=\"DAV:\"><D:response>")
                .unwrap_err()
                .contains("truncated")
        );
        assert!(
            parse_multistatus(b"<html><body>login</body></html>")
                .unwrap_err()
                .contains("not a DAV:multistatus")
        );
        assert!(
            parse_multistatus(b"<D:multistatus xmlns:D=\"DAV:\"></D:response>")
                .unwrap_err()
                .contains("malformed XML")
        );
        assert!(parse_multistatus(&[0xff, 0xfe]).is_err());
        assert_eq!(normalize_etag("W/\"abc\""), "abc");
    }
    #[test]
    fn hrefs_outside_the_folder_or_with_dot_segments_are_refused() {
        let common = Common::default();
        let cfg = WebdavConfig {
            url: "https://dav.example/remote.php/dav/files/a/AIMS".into(),
            user: None,
            include: vec![],
            exclude: vec![],
        };
        let c = WebdavCollector::new("dav", &cfg, &common).unwrap();
        assert_eq!(
            c.relative("/remote.php/dav/files/a/AIMS/p%20q/x.md")
                .unwrap(),
            "p q/x.md"
        );
        assert_eq!(
            c.relative("https://dav.example/remote.php/dav/files/a/AIMS/y.md")
                .unwrap(),
            "y.md"
        );
        assert!(
            c.relative("/remote.php/dav/files/a/AIMS/../secret.txt")
                .unwrap_err()
                .contains("'..'")
        );
        assert!(
            c.relative("/remote.php/dav/files/a/AIMS/%2E%2E/secret.txt")
                .unwrap_err()
                .contains("'..'")
        );
        assert!(
            c.relative("/remote.php/dav/files/b/other.md")
                .unwrap_err()
                .contains("outside")
        );
        assert_eq!(
            c.uri("R&D/ü.md"),
            "webdav://dav.example/remote.php/dav/files/a/AIMS/R%26D/%C3%BC.md"
        );
    }
}
