//! AWS Signature Version 4 for S3 requests: the canonical request, the key derivation
//! (RustCrypto's `hmac`) and the `authorization` header.

use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use crate::http::Secret;

/// SHA-256 of an empty body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// SigV4 credentials.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Access key id (not secret).
    pub access_key_id: String,
    /// Secret access key.
    pub secret: Secret,
    /// Session token of temporary credentials.
    pub session_token: Option<Secret>,
}

/// HMAC-SHA-256 (RustCrypto's `hmac`), the step of every SigV4 key derivation.
fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(data);
    mac.finalize().into_bytes().into()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// AWS's URI encoding: everything but `A-Za-z0-9-_.~` as `%XX`; `/` kept when `path`.
pub fn aws_encode(s: &str, path: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (path && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a request is, for signing: method, host, encoded path, canonical query, extra
/// headers to sign (lowercase names) and the body's SHA-256 (hex).
#[derive(Debug, Clone, Copy)]
pub struct ToSign<'a> {
    /// `GET`, `PUT`…
    pub method: &'a str,
    /// The `host` header.
    pub host: &'a str,
    /// The encoded path.
    pub path: &'a str,
    /// The canonical query string.
    pub query: &'a str,
    /// Extra headers to sign.
    pub headers: &'a [(&'a str, &'a str)],
    /// The body's SHA-256, lowercase hex ([`EMPTY_SHA256`] for none).
    pub payload: &'a str,
}

/// Signs a request with SigV4: returns the headers to send (`x-amz-date`,
/// `x-amz-content-sha256`, the session token, `authorization`).
pub fn sign(
    req: &ToSign<'_>,
    creds: &Credentials,
    region: &str,
    amz_date: &str,
) -> Vec<(String, String)> {
    let ToSign {
        method,
        host,
        path,
        query,
        headers,
        payload,
    } = *req;
    let date = &amz_date[..8];
    let mut h: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.trim().to_owned()))
        .collect();
    h.push(("host".into(), host.to_owned()));
    h.push(("x-amz-content-sha256".into(), payload.to_owned()));
    h.push(("x-amz-date".into(), amz_date.to_owned()));
    if let Some(t) = &creds.session_token {
        h.push(("x-amz-security-token".into(), t.expose().to_owned()));
    }
    h.sort();
    let canonical_headers: String = h.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed: Vec<&str> = h.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let canonical = format!("{method}\n{path}\n{query}\n{canonical_headers}\n{signed}\n{payload}");
    let scope = format!("{date}/{region}/s3/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let k = hmac(
        format!("AWS4{}", creds.secret.expose()).as_bytes(),
        date.as_bytes(),
    );
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, b"s3");
    let k = hmac(&k, b"aws4_request");
    let sig = hex(&hmac(&k, to_sign.as_bytes()));
    let mut out: Vec<(String, String)> = h
        .into_iter()
        .filter(|(k, _)| k != "host" && !headers.iter().any(|(x, _)| x == k))
        .collect();
    out.push((
        "authorization".into(),
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed}, Signature={sig}",
            creds.access_key_id
        ),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "GET Object" example of the AWS SigV4 documentation for S3.
    #[test]
    fn sigv4_matches_the_aws_example() {
        let creds = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        };
        let h = sign(
            &ToSign {
                method: "GET",
                host: "examplebucket.s3.amazonaws.com",
                path: "/test.txt",
                query: "",
                headers: &[("range", "bytes=0-9")],
                payload: EMPTY_SHA256,
            },
            &creds,
            "us-east-1",
            "20130524T000000Z",
        );
        let auth = &h.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert!(
            h.iter()
                .any(|(k, v)| k == "x-amz-date" && v == "20130524T000000Z")
        );
        assert!(!h.iter().any(|(k, _)| k == "range" || k == "host"));
    }

    /// The "PUT Object" example of the same page: a signed body hash and extra headers.
    #[test]
    fn sigv4_put_matches_the_aws_example() {
        let creds = Credentials {
            access_key_id: "AKIAIOSFODNN7EXAMPLE".into(),
            secret: Secret::new("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
            session_token: None,
        };
        let body_sha = hex(&Sha256::digest(b"Welcome to Amazon S3."));
        assert_eq!(
            body_sha,
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        let h = sign(
            &ToSign {
                method: "PUT",
                host: "examplebucket.s3.amazonaws.com",
                path: &format!("/{}", aws_encode("test$file.text", true)),
                query: "",
                headers: &[
                    ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                    ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                ],
                payload: &body_sha,
            },
            &creds,
            "us-east-1",
            "20130524T000000Z",
        );
        let auth = &h.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class, \
             Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
        );
    }

    #[test]
    fn hmac_matches_rfc4231_cases_2_and_6() {
        assert_eq!(
            hex(&hmac(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Case 6: a key longer than the block is hashed first.
        assert_eq!(
            hex(&hmac(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
