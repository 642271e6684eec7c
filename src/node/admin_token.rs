//! The node's admin token (`serve --admin-token-file FILE`): the secret of
//! the operator's routes (`admin_api.rs`), which no tenant's token is.

use std::path::Path;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Shortest admin token accepted, in characters.
const MIN_TOKEN_CHARS: usize = 16;
/// The admin token, kept as its SHA-256 (compared in constant time).
#[derive(Clone)]
pub struct AdminToken([u8; 32]);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(<redacted>)")
    }
}

impl AdminToken {
    /// The token in `path` (its whole text, trimmed).
    pub fn from_file(path: &Path) -> Result<AdminToken> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::InvalidInput(format!("admin token file {}: {e}", path.display()))
        })?;
        AdminToken::new(text.trim())
            .map_err(|e| Error::InvalidInput(format!("admin token file {}: {e}", path.display())))
    }

    /// `token`, if it is long enough.
    pub fn new(token: &str) -> std::result::Result<AdminToken, String> {
        if token.chars().count() < MIN_TOKEN_CHARS {
            return Err(format!(
                "the admin token must have at least {MIN_TOKEN_CHARS} characters \
                 (e.g. `openssl rand -hex 32`)"
            ));
        }
        Ok(AdminToken(Sha256::digest(token.as_bytes()).into()))
    }

    /// Whether `given` is the token (in constant time).
    pub(super) fn matches(&self, given: &str) -> bool {
        let given: [u8; 32] = Sha256::digest(given.as_bytes()).into();
        self.0.ct_eq(&given).into()
    }
}
