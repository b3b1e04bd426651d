//! `[[witnesses]]`: the witnesses a log sends its checkpoints to (`c2sp.org/tlog-witness`),
//! and `[ledger] witness_quorum`, how many must cosign before a checkpoint is published.

use evident_collectors::units::Interval;
use reqwest::Url;
use serde::Deserialize;

use crate::ledger::note::{KeyKind, NoteVerifier};

/// One `[[witnesses]]` entry: where a witness takes checkpoints and the key it cosigns with.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// The witness's submission prefix (`add-checkpoint` is appended).
    pub url: String,
    /// Its cosigner verifier key (`<name>+<id>+<base64(0x04 ‖ key)>`).
    pub vkey: String,
    /// Request timeout (default 10s).
    #[serde(default)]
    pub timeout: Option<Interval>,
}

impl WitnessConfig {
    /// The witness's key, checked to be a cosigner key.
    pub fn key(&self) -> Result<NoteVerifier, String> {
        let k = NoteVerifier::parse(&self.vkey).map_err(|e| format!("vkey: {e}"))?;
        if k.kind() != KeyKind::Cosigner {
            return Err(format!(
                "vkey {:?} is a log's key (type 1); a witness cosigns with a cosigner key \
                 (type 4), the one `evident witness init` prints",
                self.vkey
            ));
        }
        Ok(k)
    }

    /// Checks the settings without contacting the witness.
    pub fn validate(&self) -> Result<(), String> {
        self.key()?;
        self.endpoint().map(|_| ())
    }

    /// The `add-checkpoint` URL.
    pub fn endpoint(&self) -> Result<Url, String> {
        let mut base = Url::parse(&self.url).map_err(|e| format!("url {:?}: {e}", self.url))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(format!("url {:?} must be http(s)", self.url));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        base.join("add-checkpoint")
            .map_err(|e| format!("url {:?}: {e}", self.url))
    }
}
