//! Bearer tokens: each maps to a tenant, a device and a mode (read-write or
//! read-only). A node without a tokens file is *open*: every request and
//! connection gets full access to the default tenant.
//!
//! The tokens file is JSON:
//! ```json
//! {"tokens": [{"token": "s3cret", "tenant": "acme", "device": "tablet-1", "mode": "read-write"}]}
//! ```
//! Tokens are compared in constant time: the presented token and every known
//! token are hashed (SHA-256, so that lengths do not leak either) and the
//! digests compared with [`subtle`], against every entry, without early exit.
//!
//! A tokens file can be read again while the node runs ([`Auth::reload`], on
//! `SIGHUP` and when the file changes): requests and new connections see the
//! new tokens at once; the caller closes the live connections of the devices
//! that lost their access.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use axum::http::{header, HeaderMap};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};

use crate::identity::{Role, RoleSet};
use crate::model::Access;

/// What a token allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Read and write (`"read-write"`).
    ReadWrite,
    /// Read only (`"read-only"`): writes get 403 and synced changes are not stored.
    ReadOnly,
}

/// One entry of the tokens file.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// The secret bearer token.
    pub token: String,
    /// The tenant the token's device belongs to.
    pub tenant: String,
    /// The device the token belongs to.
    pub device: String,
    /// Read-write or read-only.
    pub mode: Mode,
    /// The roles the token grants (`performer`, `issuer`,
    /// `isolation_authority`, `gas_tester`); absent: every role of its
    /// tenant, as before roles existed; `[]`: ordinary fields only.
    #[serde(default)]
    pub roles: Option<Vec<String>>,
    /// The person using the device, shown as the author of what it signs.
    #[serde(default)]
    pub person: Option<String>,
}

impl TokenEntry {
    /// A token entry.
    pub fn new(
        token: impl Into<String>,
        tenant: impl Into<String>,
        device: impl Into<String>,
        mode: Mode,
    ) -> Self {
        TokenEntry {
            token: token.into(),
            tenant: tenant.into(),
            device: device.into(),
            mode,
            roles: None,
            person: None,
        }
    }

    /// The same entry granting `roles`.
    pub fn with_roles(mut self, roles: &[&str]) -> Self {
        self.roles = Some(roles.iter().map(|r| r.to_string()).collect());
        self
    }

    /// The same entry naming the `person` using the device.
    pub fn with_person(mut self, person: &str) -> Self {
        self.person = Some(person.to_string());
        self
    }
}

impl fmt::Debug for TokenEntry {
    // never print the secret
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenEntry")
            .field("token", &"<redacted>")
            .field("tenant", &self.tenant)
            .field("device", &self.device)
            .field("mode", &self.mode)
            .field("roles", &self.roles)
            .field("person", &self.person)
            .finish()
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokensFile {
    tokens: Vec<TokenEntry>,
}

/// Why a tokens file was refused, or why a request is not authenticated.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The tokens file could not be read.
    #[error("cannot read tokens file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The tokens file is not valid JSON of the expected shape.
    #[error(
        "invalid tokens file {}: {source} (expected {{\"tokens\": [{{\"token\", \"tenant\", \
         \"device\", \"mode\": \"read-write\" | \"read-only\"}}]}})",
        path.display()
    )]
    Json {
        /// The file (empty when parsed from a string).
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// An entry with an empty token, tenant or device, or a tenant or device
    /// containing a NUL character.
    #[error("tokens entry {index}: {what}")]
    BadEntry {
        /// Position of the entry in the file (0-based).
        index: usize,
        /// What is wrong.
        what: String,
    },
    /// Two entries with the same token.
    #[error("tokens entries {first} and {index} have the same token")]
    DuplicateToken {
        /// The first entry with the token.
        first: usize,
        /// The entry that repeats it.
        index: usize,
    },
    /// The request carries no token.
    #[error("missing bearer token (send `Authorization: Bearer <token>` or `?token=<token>`)")]
    MissingToken,
    /// The request carries a token that is not known.
    #[error("invalid token")]
    InvalidToken,
}

struct Known {
    digest: [u8; 32],
    access: Access,
}

/// Token checking for a node.
pub struct Auth {
    /// `None` on an open node; otherwise the current tokens, swapped whole on a reload.
    tokens: Option<RwLock<Arc<Vec<Known>>>>,
    /// The tokens file, when the tokens came from one.
    path: Option<PathBuf>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Auth {
    /// No tokens: everyone gets full access to the default tenant, as device
    /// `anonymous`.
    pub fn open() -> Self {
        Auth {
            tokens: None,
            path: None,
        }
    }

    /// Load a tokens file (kept as the file [`Auth::reload`] reads).
    pub fn from_file(path: &Path) -> Result<Auth, AuthError> {
        let mut auth = Self::read(path)?;
        auth.path = Some(path.to_path_buf());
        Ok(auth)
    }

    fn read(path: &Path) -> Result<Auth, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Whether some token still grants `device` of `tenant` (any mode).
    pub fn grants_device(&self, tenant: &str, device: &str) -> bool {
        self.tokens.is_none()
            || self
                .snapshot()
                .iter()
                .any(|k| k.access.tenant == tenant && k.access.device == device)
    }

    /// The tokens file, if the tokens came from one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Read the tokens file again and use its tokens from now on. Returns the
    /// accesses (tenant, device, mode) that some token no longer grants (the
    /// token was removed, changed to another access, or replaced by a new
    /// token for the same device): their live connections should be closed,
    /// since a connection does not keep the token it was opened with. A device
    /// whose token was rotated reconnects with its new token. A file that
    /// cannot be read or is invalid changes nothing (the error says why).
    pub fn reload(&self) -> Result<Vec<Access>, AuthError> {
        let (Some(path), Some(current)) = (&self.path, &self.tokens) else {
            return Ok(Vec::new());
        };
        let Some(fresh) = Self::read(path)?.tokens else {
            return Ok(Vec::new());
        };
        let fresh = fresh.into_inner().unwrap_or_else(|p| p.into_inner());
        let kept: HashSet<(&[u8; 32], &Access)> =
            fresh.iter().map(|k| (&k.digest, &k.access)).collect();
        let mut lost: Vec<Access> = self
            .snapshot()
            .iter()
            .filter(|k| !kept.contains(&(&k.digest, &k.access)))
            .map(|k| k.access.clone())
            .collect();
        lost.sort_by(|a, b| (&a.tenant, &a.device).cmp(&(&b.tenant, &b.device)));
        lost.dedup();
        let mut slot = current.write().unwrap_or_else(|p| p.into_inner());
        *slot = fresh;
        Ok(lost)
    }

    fn snapshot(&self) -> Arc<Vec<Known>> {
        match &self.tokens {
            Some(lock) => lock.read().unwrap_or_else(|p| p.into_inner()).clone(),
            None => Arc::new(Vec::new()),
        }
    }

    /// Parse the JSON text of a tokens file.
    pub fn from_json(text: &str) -> Result<Auth, AuthError> {
        Self::parse(text, Path::new(""))
    }

    fn parse(text: &str, path: &Path) -> Result<Auth, AuthError> {
        let file: TokensFile = serde_json::from_str(text).map_err(|source| AuthError::Json {
            path: path.to_path_buf(),
            source,
        })?;
        Self::try_from_tokens(file.tokens)
    }

    /// Tokens given directly, checked like a tokens file.
    pub fn try_from_tokens(entries: Vec<TokenEntry>) -> Result<Auth, AuthError> {
        let mut known: Vec<Known> = Vec::with_capacity(entries.len());
        for (index, e) in entries.into_iter().enumerate() {
            let bad = |what: &str| AuthError::BadEntry {
                index,
                what: what.to_string(),
            };
            if e.token.is_empty() {
                return Err(bad("empty token"));
            }
            if e.tenant.trim().is_empty() {
                return Err(bad("empty tenant"));
            }
            if e.device.trim().is_empty() {
                return Err(bad("empty device"));
            }
            if e.tenant.contains('\0') || e.device.contains('\0') {
                return Err(bad("tenant and device must not contain NUL characters"));
            }
            let d = digest(&e.token);
            if let Some(first) = known.iter().position(|k| k.digest == d) {
                return Err(AuthError::DuplicateToken { first, index });
            }
            let roles = match &e.roles {
                None => None,
                Some(names) => {
                    let mut set = RoleSet::new();
                    for n in names {
                        let role: Role = n.parse().map_err(|_| {
                            bad(&format!(
                                "unknown role {n:?} (roles: performer, issuer, \
                                 isolation_authority, gas_tester)"
                            ))
                        })?;
                        if role == Role::Attest {
                            return Err(bad("the role attest belongs to relays, not to tokens"));
                        }
                        set.insert(role);
                    }
                    Some(set)
                }
            };
            known.push(Known {
                digest: d,
                access: Access {
                    tenant: e.tenant,
                    device: e.device,
                    read_only: e.mode == Mode::ReadOnly,
                    roles,
                    person: e.person,
                },
            });
        }
        Ok(Auth {
            tokens: Some(RwLock::new(Arc::new(known))),
            path: None,
        })
    }

    /// Tokens given directly (tests, embedding).
    ///
    /// # Panics
    /// On entries a tokens file would be refused for (empty or duplicate
    /// tokens); use [`Auth::try_from_tokens`] for entries from users.
    pub fn from_tokens(entries: Vec<TokenEntry>) -> Auth {
        Self::try_from_tokens(entries).expect("valid token entries")
    }

    /// Whether the node has no tokens (everyone has full access).
    pub fn is_open(&self) -> bool {
        self.tokens.is_none()
    }

    /// Number of known tokens (0 for an open node).
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    /// Whether the node knows no tokens.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The access `token` grants. On an open node every request (with or
    /// without a token) gets [`Access::open`]`("anonymous")`.
    pub fn check(&self, token: Option<&str>) -> Result<Access, AuthError> {
        if self.tokens.is_none() {
            return Ok(Access::open("anonymous"));
        }
        let known = self.snapshot();
        let token = token.ok_or(AuthError::MissingToken)?;
        let presented = digest(token);
        let mut found = Choice::from(0);
        let mut index = 0u64;
        for (i, k) in known.iter().enumerate() {
            let eq = k.digest.ct_eq(&presented);
            index = u64::conditional_select(&index, &(i as u64), eq);
            found |= eq;
        }
        if bool::from(found) {
            usize::try_from(index)
                .ok()
                .and_then(|i| known.get(i))
                .map(|k| k.access.clone())
                .ok_or(AuthError::InvalidToken)
        } else {
            Err(AuthError::InvalidToken)
        }
    }
}

/// The token of a request: `Authorization: Bearer <token>`, else the `token`
/// parameter of the query string (for browsers' WebSockets). `None` when
/// neither is present or the token is empty.
pub fn access_from_parts(headers: &HeaderMap, query: Option<&str>) -> Option<String> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?.trim();
        let (scheme, rest) = value.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let token = rest.trim();
        return (!token.is_empty()).then(|| token.to_string());
    }
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == "token")
        .map(|(_, v)| percent_decode(v))
        .filter(|t| !t.is_empty())
}

/// Decode `%XX` escapes and `+` (a query string's space).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn auth() -> Auth {
        Auth::from_tokens(vec![
            TokenEntry::new("s3cret", "acme", "tablet-1", Mode::ReadWrite),
            TokenEntry::new("viewer", "acme", "wall-screen", Mode::ReadOnly),
            TokenEntry::new("other", "globex", "tablet-9", Mode::ReadWrite),
        ])
    }

    #[test]
    fn open_node_grants_the_default_tenant() {
        let a = Auth::open();
        assert!(a.is_open());
        assert_eq!(a.check(None).ok(), Some(Access::open("anonymous")));
        assert_eq!(a.check(Some("x")).ok(), Some(Access::open("anonymous")));
    }

    #[test]
    fn tokens_map_to_tenant_device_and_mode() {
        let a = auth();
        assert!(!a.is_open());
        let rw = a.check(Some("s3cret")).ok();
        assert_eq!(
            rw,
            Some(Access {
                tenant: "acme".into(),
                device: "tablet-1".into(),
                read_only: false,
                roles: None,
                person: None,
            })
        );
        let ro = a.check(Some("viewer")).ok();
        assert_eq!(ro.map(|a| a.read_only), Some(true));
        let g = a.check(Some("other")).ok();
        assert_eq!(g.map(|a| a.tenant), Some("globex".to_string()));
        assert!(matches!(a.check(None), Err(AuthError::MissingToken)));
        assert!(matches!(
            a.check(Some("s3cre")),
            Err(AuthError::InvalidToken)
        ));
        assert!(matches!(a.check(Some("")), Err(AuthError::InvalidToken)));
    }

    #[test]
    fn tokens_files_are_checked() {
        let ok = Auth::from_json(
            r#"{"tokens": [{"token": "a", "tenant": "t", "device": "d", "mode": "read-only"}]}"#,
        );
        assert_eq!(ok.map(|a| a.len()).ok(), Some(1));
        let bad_json = Auth::from_json("{\"tokens\": [");
        assert!(matches!(bad_json, Err(AuthError::Json { .. })));
        let bad_mode = Auth::from_json(
            r#"{"tokens": [{"token": "a", "tenant": "t", "device": "d", "mode": "rw"}]}"#,
        );
        assert!(matches!(bad_mode, Err(AuthError::Json { .. })));
        let empty = Auth::from_json(
            r#"{"tokens": [{"token": "", "tenant": "t", "device": "d", "mode": "read-write"}]}"#,
        );
        let msg = empty.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(msg, "tokens entry 0: empty token");
        let dup = Auth::from_json(
            r#"{"tokens": [{"token": "a", "tenant": "t", "device": "d", "mode": "read-write"},
                           {"token": "a", "tenant": "u", "device": "e", "mode": "read-write"}]}"#,
        );
        let msg = dup.err().map(|e| e.to_string()).unwrap_or_default();
        assert_eq!(msg, "tokens entries 0 and 1 have the same token");
    }

    #[test]
    fn reading_a_missing_file_says_which() {
        let e = Auth::from_file(Path::new("/nonexistent/tokens.json"));
        let msg = e.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("/nonexistent/tokens.json"), "{msg}");
    }

    #[test]
    fn a_reload_takes_new_tokens_and_names_the_lost_accesses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.json");
        let entry = |t: &str, d: &str, m: &str| {
            format!(r#"{{"token": "{t}", "tenant": "acme", "device": "{d}", "mode": "{m}"}}"#)
        };
        let write = |entries: &[String]| {
            std::fs::write(&path, format!(r#"{{"tokens": [{}]}}"#, entries.join(",")))
                .expect("write")
        };
        write(&[
            entry("a", "tab-a", "read-write"),
            entry("b", "tab-b", "read-write"),
            entry("c", "tab-c", "read-write"),
        ]);
        let auth = Auth::from_file(&path).expect("load");
        // b removed, c now read-only, d new
        write(&[
            entry("a", "tab-a", "read-write"),
            entry("c", "tab-c", "read-only"),
            entry("d", "tab-d", "read-write"),
        ]);
        let lost = auth.reload().expect("reload");
        let lost: Vec<(&str, bool)> = lost
            .iter()
            .map(|a| (a.device.as_str(), a.read_only))
            .collect();
        assert_eq!(lost, vec![("tab-b", false), ("tab-c", false)]);
        assert!(auth.check(Some("a")).is_ok());
        assert!(matches!(
            auth.check(Some("b")),
            Err(AuthError::InvalidToken)
        ));
        assert_eq!(auth.check(Some("c")).map(|a| a.read_only).ok(), Some(true));
        assert!(auth.check(Some("d")).is_ok());
        // a stolen token replaced for the same device: the device's live
        // connections are named, since they may use the old token
        write(&[
            entry("a2", "tab-a", "read-write"),
            entry("c", "tab-c", "read-only"),
            entry("d", "tab-d", "read-write"),
        ]);
        let lost = auth.reload().expect("reload");
        assert_eq!(
            lost.iter().map(|a| a.device.as_str()).collect::<Vec<_>>(),
            vec!["tab-a"]
        );
        assert!(matches!(
            auth.check(Some("a")),
            Err(AuthError::InvalidToken)
        ));
        assert!(auth.check(Some("a2")).is_ok());
        // a broken file changes nothing
        std::fs::write(&path, "{not json").expect("write");
        assert!(matches!(auth.reload(), Err(AuthError::Json { .. })));
        assert!(auth.check(Some("d")).is_ok());
    }

    #[test]
    fn debug_never_prints_the_token() {
        let e = TokenEntry::new("s3cret", "acme", "tablet-1", Mode::ReadWrite);
        assert!(!format!("{e:?}").contains("s3cret"));
    }

    #[test]
    fn tokens_come_from_the_header_or_the_query() {
        let mut h = HeaderMap::new();
        assert_eq!(access_from_parts(&h, None), None);
        assert_eq!(
            access_from_parts(&h, Some("a=1&token=s%33cret")),
            Some("s3cret".to_string())
        );
        assert_eq!(access_from_parts(&h, Some("token=")), None);
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(access_from_parts(&h, Some("token=x")), Some("abc".into()));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(access_from_parts(&h, None), None);
    }
}
