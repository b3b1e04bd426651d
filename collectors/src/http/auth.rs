//! Credentials: API tokens from an environment variable or a file (systemd's
//! `$CREDENTIALS_DIRECTORY`), held in a [`Secret`] that never prints.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::CollectError;

/// A secret value. `Debug` and `Display` print `****`; only [`Secret::expose`] gives it out,
/// at the one place a request header is built.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }

    /// The secret itself, for a request header.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the secret masked (a server may echo it back).
    pub fn mask(&self, text: &str) -> String {
        self.mask_as(text, None)
    }

    /// `text` with the secret masked in every encoding a server may echo it in: raw,
    /// base64 (standard and URL-safe, padded or not) of the token and of `user:token` (HTTP
    /// Basic, as Jira and Confluence Cloud use it), percent- and form-encoded, and with
    /// JSON's `\/` escape.
    pub fn mask_as(&self, text: &str, user: Option<&str>) -> String {
        let mut out = text.to_owned();
        for needle in self.encodings(user) {
            if out.contains(&needle) {
                out = out.replace(&needle, "****");
            }
        }
        out
    }

    /// Every encoded form of the secret, longest first (so no form is half-masked).
    fn encodings(&self, user: Option<&str>) -> Vec<String> {
        use base64::Engine as _;
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        if self.0.len() < 4 {
            return Vec::new();
        }
        let mut plain = vec![self.0.clone()];
        if let Some(u) = user {
            plain.push(format!("{u}:{}", self.0));
        }
        let mut forms = Vec::new();
        for p in &plain {
            for e in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
                let b = e.encode(p.as_bytes());
                forms.push(b.replace('/', "\\/"));
                forms.push(b);
            }
        }
        let pct = |s: &str, space: &str| -> String {
            s.bytes()
                .map(|b| match b {
                    b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                        (b as char).to_string()
                    }
                    b' ' => space.to_owned(),
                    _ => format!("%{b:02X}"),
                })
                .collect()
        };
        let encoded = pct(&self.0, "%20");
        forms.push(encoded.to_lowercase_hex());
        forms.push(encoded);
        forms.push(pct(&self.0, "+"));
        forms.push(self.0.replace('/', "\\/"));
        forms.push(self.0.clone());
        forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
        forms.dedup();
        forms.retain(|f| f.len() >= 4);
        forms
    }
}

/// `%2F` → `%2f`: some servers echo percent-escapes in lower case.
trait LowerHex {
    fn to_lowercase_hex(&self) -> String;
}

impl LowerHex for String {
    fn to_lowercase_hex(&self) -> String {
        let mut out = String::with_capacity(self.len());
        let mut rest = self.as_str();
        while let Some(i) = rest.find('%') {
            out.push_str(&rest[..i]);
            let esc = rest.get(i..i + 3).unwrap_or(&rest[i..]);
            out.push_str(&esc.to_ascii_lowercase());
            rest = &rest[i + esc.len()..];
        }
        out.push_str(rest);
        out
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("****")
    }
}

/// Where a collector's token comes from: `token_env = "GITHUB_TOKEN"` or
/// `token_file = "github-token"`. Sources flatten this into their config.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct TokenSource {
    /// Name of an environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// A file holding the token (trailing newline ignored). A bare file name is looked up
    /// in `$CREDENTIALS_DIRECTORY` (systemd `LoadCredential=`) when that is set.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// `dir/name`, or else the one `dir/<ID>_name` systemd made of a credentials directory.
fn credential(dir: &Path, name: &Path) -> PathBuf {
    let plain = dir.join(name);
    if plain.exists() {
        return plain;
    }
    let suffix = format!("_{}", name.to_string_lossy());
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(&suffix))
        .map(|e| e.path())
        .collect();
    found.sort();
    match found.len() {
        1 => found.remove(0),
        // None, or ambiguous: the plain path, so the error names what was looked for.
        _ => plain,
    }
}

/// A loaded token and the setting it came from, for error messages.
#[derive(Debug, Clone)]
pub struct Token {
    /// The token.
    pub secret: Secret,
    /// `$GITHUB_TOKEN (token_env)` or `/etc/evident/credentials/x (token_file)`.
    pub setting: String,
}

impl TokenSource {
    /// Resolves a relative `token_file` against `base` (the config's directory), or against
    /// `$CREDENTIALS_DIRECTORY` for a bare file name when that is set. systemd names the
    /// files of a directory loaded with `LoadCredential=ID:/dir` as `ID_<file>`, so a bare
    /// `hf-token` is also found as `tokens_hf-token` (any one `<ID>_hf-token`).
    pub fn resolve(&mut self, base: &Path) {
        if let Some(f) = &self.token_file {
            let bare = f.components().count() == 1 && f.is_relative();
            let creds = std::env::var_os("CREDENTIALS_DIRECTORY")
                .filter(|_| bare)
                .map(PathBuf::from);
            self.token_file = Some(match creds {
                Some(dir) => credential(&dir, f),
                None => base.join(f),
            });
        }
    }

    /// Loads the token; `None` when neither key is set. `collector` names the instance in
    /// errors.
    pub fn load(&self, collector: &str) -> Result<Option<Token>, CollectError> {
        match (&self.token_env, &self.token_file) {
            (Some(_), Some(_)) => Err(CollectError::Config(format!(
                "collector `{collector}`: set either token_env or token_file, not both"
            ))),
            (Some(var), None) => match std::env::var(var) {
                Ok(v) if !v.trim().is_empty() => Ok(Some(Token {
                    secret: Secret::new(v.trim()),
                    setting: format!("${var} (token_env)"),
                })),
                _ => Err(CollectError::Config(format!(
                    "collector `{collector}`: environment variable {var} (token_env) is not set or empty; \
                     export it, or put the token in a file and set token_file"
                ))),
            },
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    CollectError::Config(format!(
                        "collector `{collector}`: cannot read token file {} (token_file): {e}",
                        path.display()
                    ))
                })?;
                let t = text.trim();
                if t.is_empty() {
                    return Err(CollectError::Config(format!(
                        "collector `{collector}`: token file {} (token_file) is empty",
                        path.display()
                    )));
                }
                Ok(Some(Token {
                    secret: Secret::new(t),
                    setting: format!("{} (token_file)", path.display()),
                }))
            }
            (None, None) => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("ghp_supersecret");
        assert_eq!(format!("{s} {s:?}"), "**** Secret(****)");
        assert_eq!(s.mask("bad token ghp_supersecret!"), "bad token ****!");
    }

    #[test]
    fn every_encoding_of_a_secret_is_masked() {
        use base64::Engine as _;
        let tok = "ATATT3x/Fz+k9 q==";
        let s = Secret::new(tok);
        let basic =
            base64::engine::general_purpose::STANDARD.encode(format!("me@example.com:{tok}"));
        let cases = [
            format!("Authorization: Basic {basic}"),
            format!("Basic {}", basic.trim_end_matches('=')),
            format!("Basic {}", basic.replace('/', "\\/")),
            format!(
                "{{\"auth\":\"{}\"}}",
                base64::engine::general_purpose::URL_SAFE.encode(format!("me@example.com:{tok}"))
            ),
            "?token=ATATT3x%2FFz%2Bk9%20q%3D%3D".to_owned(),
            "?token=ATATT3x%2fFz%2bk9%20q%3d%3d".to_owned(),
            "token=ATATT3x%2FFz%2Bk9+q%3D%3D".to_owned(),
            format!("X-Token: {tok}"),
            format!(
                "raw {}",
                base64::engine::general_purpose::STANDARD.encode(tok)
            ),
        ];
        for c in cases {
            let m = s.mask_as(&c, Some("me@example.com"));
            assert!(m.contains("****"), "{c} -> {m}");
            assert!(
                !m.contains("ATATT3x") && !m.contains(&basic[8..20]),
                "{c} -> {m}"
            );
        }
    }

    #[test]
    fn token_from_file_and_errors_name_the_setting() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("tok"), "abc123\n").unwrap();
        let mut src = TokenSource {
            token_file: Some("tok".into()),
            ..TokenSource::default()
        };
        src.resolve(d.path());
        let t = src.load("gh").unwrap().unwrap();
        assert_eq!(t.secret.expose(), "abc123");
        assert!(t.setting.ends_with("tok (token_file)"));
        let missing = TokenSource {
            token_env: Some("EVIDENT_TEST_NO_SUCH_VAR".into()),
            ..TokenSource::default()
        };
        let e = missing.load("gh").unwrap_err().to_string();
        assert!(
            e.contains("EVIDENT_TEST_NO_SUCH_VAR (token_env) is not set"),
            "{e}"
        );
        assert!(!missing.load("gh").unwrap_err().is_retryable());
    }
}
