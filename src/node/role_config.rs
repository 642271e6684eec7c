//! A relay's `--role-table` file: per tenant, the rows of the role table it
//! overrides (`{"acme": {"permit submitted -> approved": ["issuer",
//! "performer"]}}`). At start, and on `SIGHUP`, a relay that is the tenant's
//! authority signs a new table for each tenant whose rows differ from the
//! table in force (`Store::configure_role_table`), and sends it on every open
//! connection. A tenant the file does not name keeps its table; `{}` brings a
//! tenant back to the default table.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use thiserror::Error;

use super::state::NodeState;
use crate::error::Result;
use crate::identity::{IdentityError, RoleRows, RoleTable, SignedRoleTable};
use crate::store::Store;

/// Why a role table file was refused.
#[derive(Debug, Error)]
pub enum RoleTableFileError {
    /// The file could not be read.
    #[error("cannot read role table {}: {}", .path.display(), .source)]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not `{"<tenant>": {"<operation>": ["role", ...]}}`.
    #[error(
        "role table {} is not {{\"<tenant>\": {{\"<operation>\": [\"role\", ...]}}}}: {}",
        .path.display(),
        .source
    )]
    Json {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// A tenant's rows name an unknown operation or role, or none.
    #[error("role table {}, tenant {}: {}", .path.display(), .tenant, .source)]
    Row {
        /// The file.
        path: PathBuf,
        /// The tenant whose rows are wrong.
        tenant: String,
        /// What is wrong.
        source: IdentityError,
    },
}

/// The rows of each tenant a role table file names.
pub type RoleTableFile = BTreeMap<String, RoleRows>;

/// Read and check a role table file (`serve --role-table`, and
/// `--check-config`).
pub fn read_role_table_file(path: &Path) -> std::result::Result<RoleTableFile, RoleTableFileError> {
    let text = std::fs::read_to_string(path).map_err(|source| RoleTableFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let raw: BTreeMap<String, BTreeMap<String, Vec<String>>> = serde_json::from_str(&text)
        .map_err(|source| RoleTableFileError::Json {
            path: path.to_path_buf(),
            source,
        })?;
    raw.into_iter()
        .map(|(tenant, rows)| {
            let named = rows
                .iter()
                .map(|(op, roles)| (op.as_str(), roles.as_slice()));
            match RoleTable::rows_from_names(named) {
                Ok(rows) => Ok((tenant, rows)),
                Err(source) => Err(RoleTableFileError::Row {
                    path: path.to_path_buf(),
                    tenant,
                    source,
                }),
            }
        })
        .collect()
}

/// Sign a new role table for each tenant of `file` whose rows differ from
/// the table in force (`store` must be the tenants' authority). Returns the
/// tables signed.
pub fn apply_role_tables(store: &Store, file: &RoleTableFile) -> Result<Vec<SignedRoleTable>> {
    let mut signed = Vec::new();
    for (tenant, rows) in file {
        if let Some(table) = store.configure_role_table(tenant, rows)? {
            tracing::info!(
                tenant = %tenant,
                version = table.table.version,
                "role table signed"
            );
            signed.push(table);
        }
    }
    Ok(signed)
}

/// Read the role table file again (on `SIGHUP`) and send what changed to
/// every open connection. A file that cannot be read or is wrong is logged
/// and changes nothing.
pub fn reload_role_tables(state: &NodeState, path: &Path) {
    let file = match read_role_table_file(path) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "role table not reloaded; keeping the tables in force");
            return;
        }
    };
    match apply_role_tables(&state.store, &file) {
        Ok(signed) if !signed.is_empty() => state.hub.identity_changed(None),
        Ok(_) => tracing::info!(file = %path.display(), "role table unchanged"),
        Err(e) => tracing::error!(file = %path.display(), error = %e, "role table not applied"),
    }
}

/// Reload the role table file on every `SIGHUP` from now on (unix only).
/// Must run inside a tokio runtime.
pub fn watch_role_tables(
    state: Arc<NodeState>,
    path: PathBuf,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    {
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        Ok(tokio::spawn(async move {
            while hup.recv().await.is_some() {
                let (state, path) = (state.clone(), path.clone());
                let _ =
                    tokio::task::spawn_blocking(move || reload_role_tables(&state, &path)).await;
            }
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = (state, path);
        Ok(tokio::spawn(async {}))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Role, TableOp};

    fn file(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join("roles.json");
        std::fs::write(&path, text).expect("write");
        path
    }

    #[test]
    fn a_file_names_rows_per_tenant_and_wrong_names_are_refused_with_the_tenant() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = file(
            dir.path(),
            r#"{"acme": {"permit submitted -> approved": ["performer", "issuer"]}, "globex": {}}"#,
        );
        let read = read_role_table_file(&ok).expect("valid");
        assert_eq!(
            read["acme"][&TableOp::PermitApprove],
            [Role::Performer, Role::Issuer].into_iter().collect()
        );
        assert!(read["globex"].is_empty());
        let bad_op = file(dir.path(), r#"{"acme": {"permit approve": ["issuer"]}}"#);
        let err = read_role_table_file(&bad_op)
            .expect_err("unknown op")
            .to_string();
        assert!(
            err.contains("tenant acme: unknown operation \"permit approve\""),
            "{err}"
        );
        let bad_role = file(dir.path(), r#"{"acme": {"gas reading": ["chemist"]}}"#);
        let err = read_role_table_file(&bad_role)
            .expect_err("role")
            .to_string();
        assert!(err.contains("unknown role \"chemist\""), "{err}");
        let not_json = file(dir.path(), r#"{"acme": ["issuer"]}"#);
        assert!(matches!(
            read_role_table_file(&not_json),
            Err(RoleTableFileError::Json { .. })
        ));
    }
}
