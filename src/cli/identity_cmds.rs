//! `permitsync identity` (who this store is, its certificate and roles, how
//! its documents are judged) and `permitsync authority init` (a tenant
//! authority key for relays to share). See `docs/identity.md`.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};
use permitsync::identity::NodeKey;
use permitsync::store::{IdentityStatus, Store};

use super::timestamp::rfc3339_ms;

/// Print the store's identity.
pub fn identity(store: &Store, as_json: bool, out: &mut impl Write) -> Result<()> {
    let s = store.identity_status()?;
    if as_json {
        writeln!(out, "{}", serde_json::to_string(&s)?)?;
        return Ok(());
    }
    write_status(&s, out)
}

fn write_status(s: &IdentityStatus, out: &mut impl Write) -> Result<()> {
    writeln!(out, "device      {}", s.device)?;
    writeln!(out, "public key  {}", s.public_key)?;
    match (&s.tenant, s.is_authority) {
        (_, true) => writeln!(out, "tenant      the authority of its tenants (a relay)")?,
        (Some(t), false) => writeln!(out, "tenant      {t}")?,
        (None, false) => writeln!(out, "tenant      not enrolled")?,
    }
    match &s.authority {
        Some(k) => writeln!(out, "authority   {k}")?,
        None => writeln!(out, "authority   none")?,
    }
    let mode = match s.mode {
        "open" => "open: not enrolled, every operation is authorized (enrolls on its first connection to a relay with its token)",
        _ => "enforced: operations are judged by the tenant authority's certificates",
    };
    writeln!(out, "mode        {mode}")?;
    match &s.certificate {
        None => writeln!(out, "certificate none")?,
        Some(c) => {
            let roles = if c.roles.is_empty() {
                "none (ordinary fields only)".to_string()
            } else {
                c.roles.join(", ")
            };
            writeln!(out, "certificate serial {}", c.serial)?;
            if let Some(p) = &c.person {
                writeln!(out, "  person    {p}")?;
            }
            writeln!(out, "  roles     {roles}")?;
            writeln!(
                out,
                "  valid     {} to {}",
                rfc3339_ms(c.not_before),
                rfc3339_ms(c.not_after)
            )?;
        }
    }
    match &s.role_table {
        None if s.mode == "open" => {}
        None => writeln!(out, "role table  the default (docs/identity.md, \"Roles\")")?,
        Some(t) => {
            writeln!(out, "role table  version {}, the default but:", t.version)?;
            for (op, roles) in &t.rows {
                writeln!(out, "  {op}: {}", roles.join(" or "))?;
            }
        }
    }
    Ok(())
}

/// Write a new authority key to `path` (refusing to overwrite one), readable
/// by its owner only, and print its public key.
pub fn authority_init(path: &Path, as_json: bool, out: &mut impl Write) -> Result<()> {
    if path.exists() {
        bail!(
            "{} exists: an authority key is never overwritten (its certificates would all become invalid)",
            path.display()
        );
    }
    let key = NodeKey::generate();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    writeln!(file, "{}", hex::encode(key.secret()))?;
    file.sync_all()?;
    let public = key.public().to_hex();
    if as_json {
        writeln!(
            out,
            "{}",
            serde_json::json!({"file": path, "public_key": public})
        )?;
    } else {
        writeln!(
            out,
            "wrote {} (keep it secret: it signs every certificate)",
            path.display()
        )?;
        writeln!(out, "public key {public}")?;
        writeln!(
            out,
            "use it on every relay: permitsync serve --tokens FILE --authority-key {}",
            path.display()
        )?;
    }
    Ok(())
}
