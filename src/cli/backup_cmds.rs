//! `permitsync backup` and `permitsync restore` (see `docs/operations.md`,
//! "Backups").
//!
//! A backup of a running node goes through the node (`--node URL` with the
//! admin token: `POST /v1/admin/backup`), since the node holds the store's
//! lock; a store no node holds is read directly (`--data`). Either way the
//! file is written beside `--out`, checked whole, then renamed to it, so
//! `--out` never holds a partial backup. A restore checks the whole file
//! before it writes anything, and only into a new or empty directory.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use permitsync::node::ClientTls;
use permitsync::store::{restore, verify, BackupInfo, SledBackend, Store};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use super::args::{BackupArgs, RestoreArgs};

/// `permitsync backup`.
pub fn backup(data: &Path, args: BackupArgs, json: bool) -> Result<()> {
    if args.out.exists() {
        bail!(
            "{} already exists: choose a new file for the backup",
            args.out.display()
        );
    }
    let partial = partial_path(&args.out);
    let result = match &args.node {
        Some(url) => {
            let token = args.token.as_deref().ok_or_else(|| {
                anyhow!("--node needs the node's admin token: --token or PERMITSYNC_ADMIN_TOKEN")
            })?;
            let tls = ClientTls::new(args.ca_cert.as_deref())?;
            super::node_cmds::block_on(download(url, token, &tls, &partial))
        }
        None => from_store(data, &partial),
    };
    let info = result.and_then(|()| {
        let file = std::fs::File::open(&partial)?;
        verify(std::io::BufReader::new(file))
            .map_err(|e| anyhow!("the backup written does not check: {e}"))
    });
    let info = match info {
        Ok(info) => info,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    std::fs::rename(&partial, &args.out).with_context(|| {
        format!(
            "cannot rename {} to {}",
            partial.display(),
            args.out.display()
        )
    })?;
    report(json, "backup", &args.out, &info, None)
}

/// `FILE.partial` beside `out`.
fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// A backup of the store in `data`, which no node may hold.
fn from_store(data: &Path, out: &Path) -> Result<()> {
    if !data.exists() {
        bail!("no store at {}", data.display());
    }
    let store = Store::open(data).map_err(|e| match e {
        permitsync::Error::Locked { .. } => anyhow!(
            "{e}\na running node holds it: back it up through the node with \
             `permitsync backup --node URL --token ADMIN_TOKEN --out FILE`"
        ),
        e => e.into(),
    })?;
    let file = std::fs::File::create_new(out)
        .with_context(|| format!("cannot create {}", out.display()))?;
    let mut w = std::io::BufWriter::new(file);
    store.snapshot(&mut w)?;
    w.flush()?;
    w.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// `POST /v1/admin/backup` of the node at `base`, into `out`.
async fn download(base: &str, token: &str, tls: &ClientTls, out: &Path) -> Result<()> {
    let (mut stream, host) = super::node_http::connect(base, tls).await?;
    let req = format!(
        "POST /v1/admin/backup HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(req.as_bytes()).await?;
    stream.flush().await?;
    let mut reader = BufReader::new(stream);
    let mut status_line = String::new();
    reader.read_line(&mut status_line).await?;
    let status = status_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("?")
        .to_string();
    let mut length: Option<u64> = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 || line == "\r\n" {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                length = v.trim().parse().ok();
            }
        }
    }
    if status != "200" {
        let mut body = String::new();
        let _ = (&mut reader)
            .take(64 * 1024)
            .read_to_string(&mut body)
            .await;
        bail!("the node answered {status}: {}", body.trim());
    }
    let length = length.ok_or_else(|| anyhow!("the node's answer has no Content-Length"))?;
    let mut file = tokio::fs::File::create_new(out)
        .await
        .with_context(|| format!("cannot create {}", out.display()))?;
    let copied = tokio::io::copy(&mut (&mut reader).take(length), &mut file).await?;
    if copied != length {
        bail!("the connection closed after {copied} of {length} bytes of the backup");
    }
    file.sync_all().await?;
    Ok(())
}

/// `permitsync restore`: the backup in `args.from` into the new store `data`.
pub fn restore_cmd(data: &Path, args: RestoreArgs, json: bool) -> Result<()> {
    let open = || {
        std::fs::File::open(&args.from)
            .map(std::io::BufReader::new)
            .with_context(|| format!("cannot read {}", args.from.display()))
    };
    // the whole file checks before anything is written
    verify(open()?).map_err(|e| anyhow!("{}: {e}", args.from.display()))?;
    let existed = data.exists();
    if existed && std::fs::read_dir(data)?.next().is_some() {
        bail!(
            "{} is not empty: restore into a new directory (then point the node's --data at it)",
            data.display()
        );
    }
    let result = (|| -> Result<(BackupInfo, u64)> {
        std::fs::create_dir_all(data)?;
        let backend = SledBackend::open(data)?;
        let restored = restore(&backend, open()?)?;
        drop(backend);
        // it opens (and is upgraded when the backup is of an older format)
        Store::open(data)?;
        Ok(restored)
    })();
    match result {
        Ok((info, epoch)) => report(json, "restore", data, &info, Some(epoch)),
        Err(e) => {
            // it was empty or absent: leave it so
            if existed {
                if let Ok(entries) = std::fs::read_dir(data) {
                    for entry in entries.flatten() {
                        let _ = std::fs::remove_dir_all(entry.path())
                            .or_else(|_| std::fs::remove_file(entry.path()));
                    }
                }
            } else {
                let _ = std::fs::remove_dir_all(data);
            }
            Err(e)
        }
    }
}

fn report(
    json: bool,
    what: &str,
    path: &Path,
    info: &BackupInfo,
    epoch: Option<u64>,
) -> Result<()> {
    let mut out = std::io::stdout().lock();
    if json {
        let mut v = serde_json::json!({
            what: path.display().to_string(),
            "pairs": info.pairs,
            "format": info.format,
        });
        if let Some(epoch) = epoch {
            v["epoch"] = format!("{epoch:016x}").into();
        }
        writeln!(out, "{v}")?;
    } else if let Some(epoch) = epoch {
        writeln!(
            out,
            "restored {} records into {} (new epoch {epoch:016x}: devices sync everything again)",
            info.pairs,
            path.display()
        )?;
    } else {
        writeln!(
            out,
            "backup of {} records written to {}",
            info.pairs,
            path.display()
        )?;
    }
    Ok(())
}
