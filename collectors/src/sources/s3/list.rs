//! `ListObjectsV2` answers: the objects of one page and where the next starts. A listing
//! cut short is an error, never a shorter bucket (objects missing from it would be
//! recorded as removed).

use quick_xml::events::Event;
use serde::Serialize;

/// One `<Contents>` of a listing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct S3Object {
    /// The key.
    pub key: String,
    /// ETag without quotes.
    pub etag: String,
    /// Size in bytes.
    pub size: u64,
    /// `LastModified`.
    pub last_modified: String,
}

/// One `ListObjectsV2` page.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Objects.
    pub objects: Vec<S3Object>,
    /// Where the next page starts, when truncated.
    pub next: Option<String>,
}

/// Parses a `ListBucketResult`.
pub fn parse_list(xml: &[u8]) -> Result<ListPage, String> {
    let text = std::str::from_utf8(xml).map_err(|e| format!("the listing is not UTF-8: {e}"))?;
    let mut r = quick_xml::Reader::from_str(text);
    let mut page = ListPage::default();
    let mut path: Vec<String> = Vec::new();
    let mut obj = S3Object::default();
    let mut buf = String::new();
    let mut truncated = false;
    let mut token = None;
    let mut root = None;
    loop {
        let at = r.buffer_position();
        match r
            .read_event()
            .map_err(|e| format!("malformed XML after byte {at}: {e}"))?
        {
            Event::Start(e) => {
                let n = String::from_utf8_lossy(e.local_name().as_ref().as_bytes()).into_owned();
                root.get_or_insert_with(|| n.clone());
                if n == "Contents" {
                    obj = S3Object::default();
                }
                buf.clear();
                path.push(n);
            }
            Event::Text(t) => buf.push_str(&t.xml10_content()),
            Event::GeneralRef(g) => buf.extend(crate::sources::record::xml_entity(&g)),
            Event::End(_) => {
                let n = path.pop().unwrap_or_default();
                let in_contents = path.last().is_some_and(|p| p == "Contents");
                let v = std::mem::take(&mut buf);
                match n.as_str() {
                    "Key" if in_contents => obj.key = v,
                    "ETag" if in_contents => obj.etag = v.trim().trim_matches('"').to_owned(),
                    "Size" if in_contents => {
                        obj.size = v
                            .trim()
                            .parse()
                            .map_err(|_| format!("object size {v:?} is not a number"))?
                    }
                    "LastModified" if in_contents => obj.last_modified = v.trim().to_owned(),
                    "Contents" => {
                        if obj.key.is_empty() {
                            return Err("an object without a Key".into());
                        }
                        page.objects.push(std::mem::take(&mut obj));
                    }
                    "IsTruncated" => truncated = v.trim() == "true",
                    "NextContinuationToken" => token = Some(v.trim().to_owned()),
                    _ => {}
                }
            }
            Event::Eof if !path.is_empty() && root.as_deref() == Some("ListBucketResult") => {
                return Err("the listing is truncated; nothing is recorded as removed".into());
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if root.as_deref() != Some("ListBucketResult") || !path.is_empty() {
        return Err(format!(
            "expected a ListBucketResult, got {}",
            root.as_deref().unwrap_or("nothing")
        ));
    }
    if truncated {
        page.next = Some(
            token
                .filter(|t| !t.is_empty())
                .ok_or("a truncated listing without NextContinuationToken")?,
        );
    }
    Ok(page)
}

/// The root element's name and the text of its first `field` child (`UploadId` of an
/// `InitiateMultipartUploadResult`, `Code` of an `Error`).
pub fn xml_field(xml: &[u8], field: &str) -> Result<(String, Option<String>), String> {
    let text = std::str::from_utf8(xml).map_err(|e| format!("the answer is not UTF-8: {e}"))?;
    let mut r = quick_xml::Reader::from_str(text);
    let mut root = None;
    let mut depth = 0usize;
    let mut inside = false;
    let mut value: Option<String> = None;
    loop {
        let at = r.buffer_position();
        match r
            .read_event()
            .map_err(|e| format!("malformed XML after byte {at}: {e}"))?
        {
            Event::Start(e) => {
                let n = String::from_utf8_lossy(e.local_name().as_ref().as_bytes()).into_owned();
                depth += 1;
                if root.is_none() {
                    root = Some(n);
                } else if depth == 2 && n == field && value.is_none() {
                    inside = true;
                    value = Some(String::new());
                }
            }
            Event::Text(t) if inside => {
                if let Some(v) = value.as_mut() {
                    v.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(g) if inside => {
                if let Some(v) = value.as_mut() {
                    v.extend(crate::sources::record::xml_entity(&g));
                }
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                inside = false;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    let root = root.ok_or("an empty answer")?;
    if depth != 0 {
        return Err(format!("the {root} answer is truncated"));
    }
    Ok((root, value.map(|v| v.trim().to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_parse_and_bad_ones_are_named() {
        let xml = br#"<?xml version="1.0" encoding="utf-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><IsTruncated>true</IsTruncated><Contents><Key>reports/2026/q1 &amp; q2.txt</Key><LastModified>2026-11-22T05:43:34.000Z</LastModified><ETag>"6f5902ac237024bdd0c176cb93063dc4"</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents><Name>docs</Name><KeyCount>1</KeyCount><NextContinuationToken>4431c7eb</NextContinuationToken></ListBucketResult>"#;
        let p = parse_list(xml).unwrap();
        assert_eq!(p.objects[0].key, "reports/2026/q1 & q2.txt");
        assert_eq!(p.objects[0].etag, "6f5902ac237024bdd0c176cb93063dc4");
        assert_eq!(p.objects[0].size, 12);
        assert_eq!(p.next.as_deref(), Some("4431c7eb"));
        assert!(
            parse_list(b"<Error><Code>AccessDenied</Code></Error>")
                .unwrap_err()
                .contains("expected a ListBucketResult")
        );
        assert!(
            parse_list(b"<ListBucketResult><Contents><Key>a</Key><Size>x</Size>")
                .unwrap_err()
                .contains("not a number")
        );
        assert!(
            parse_list(b"<ListBucketResult><Contents></Key>")
                .unwrap_err()
                .contains("malformed XML")
        );
        assert!(
            parse_list(b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>")
                .unwrap_err()
                .contains("without NextContinuationToken")
        );
        assert_eq!(
            xml_field(b"<InitiateMultipartUploadResult><Bucket>b</Bucket><UploadId>u-1&amp;2</UploadId></InitiateMultipartUploadResult>", "UploadId").unwrap(),
            ("InitiateMultipartUploadResult".to_owned(), Some("u-1&2".to_owned()))
        );
        assert_eq!(
            xml_field(b"<Error><Code>InternalError</Code></Error>", "UploadId").unwrap(),
            ("Error".to_owned(), None)
        );
        assert!(xml_field(b"<Error><Code>x", "Code").is_err());
        // Issue 11: a listing cut short is an error, never a shorter bucket.
        assert!(
            parse_list(b"<ListBucketResult><Contents><Key>a</Key><Size>1</Size></Contents>")
                .unwrap_err()
                .contains("truncated")
        );
    }
}
