//! Rendering an [`Outcome`]: readable text, or with `--json` the exact JSON of
//! the object (one document per line; a JSON array for lists).

use std::collections::BTreeMap;
use std::io::{self, Write};

use permitsync::store::Summary;
use permitsync::{EntityId, View};
use serde_json::{json, Map, Value};

use super::commands::Outcome;
use super::timestamp::rfc3339_ms;

/// Write `outcome` to `out` (stdout); advisory notes for people go to `err` (stderr).
pub fn render(
    outcome: &Outcome,
    as_json: bool,
    out: &mut impl Write,
    err: &mut impl Write,
) -> io::Result<()> {
    if as_json {
        return writeln!(out, "{}", to_json(outcome)?);
    }
    match outcome {
        Outcome::Created(view) => {
            writeln!(out, "{}", view.id)?;
            warn_violations(view, err)
        }
        Outcome::Edited { view, changes } => {
            let ty = type_name(view);
            match changes {
                0 => writeln!(out, "{ty} {} unchanged (nothing to write)", view.id)?,
                1 => writeln!(out, "updated {ty} {} (1 change)", view.id)?,
                n => writeln!(out, "updated {ty} {} ({n} changes)", view.id)?,
            }
            warn_violations(view, err)
        }
        Outcome::Show(view) => show(view, out),
        Outcome::List { rows, labels } => table(rows, labels, out),
        Outcome::Conflicts(views) => conflicts(views, out),
        Outcome::Exported {
            file,
            documents,
            bytes,
            cursor,
        } => writeln!(
            out,
            "exported {documents} document(s), {bytes} bytes, to {} (next: --since {cursor})",
            file.display()
        ),
        Outcome::Imported { file, report } => writeln!(
            out,
            "imported {}: {} document(s), {} new, {} new change(s)",
            file.display(),
            report.documents,
            report.created,
            report.new_changes
        ),
    }
}

fn to_json(outcome: &Outcome) -> io::Result<String> {
    let text = match outcome {
        Outcome::Created(view) | Outcome::Edited { view, .. } | Outcome::Show(view) => {
            serde_json::to_string(view)
        }
        Outcome::List { rows, .. } => serde_json::to_string(rows),
        Outcome::Conflicts(views) => serde_json::to_string(views),
        Outcome::Exported {
            file,
            documents,
            bytes,
            cursor,
        } => serde_json::to_string(&json!({
            "file": file,
            "documents": documents,
            "bytes": bytes,
            "cursor": cursor,
        })),
        Outcome::Imported { file, report } => serde_json::to_string(&json!({
            "file": file,
            "documents": report.documents,
            "created": report.created,
            "new_changes": report.new_changes,
        })),
    };
    text.map_err(io::Error::other)
}

fn type_name(view: &View) -> &str {
    view.entity_type.as_deref().unwrap_or("entity")
}

/// Advisory rules that do not hold after a write, for the person at the device.
fn warn_violations(view: &View, err: &mut impl Write) -> io::Result<()> {
    for v in &view.violations {
        writeln!(err, "warning: {}: {}", v.rule, v.detail)?;
    }
    Ok(())
}

/// Who did what, verified: `approved  J. Smith on tablet-i, signed`.
fn authorship_lines(view: &View, out: &mut impl Write) -> io::Result<()> {
    let a = &view.authorship;
    let acts = [
        ("created", &a.created_by),
        ("submitted", &a.submitted_by),
        ("approved", &a.approved_by),
        ("activated", &a.activated_by),
    ];
    let mut acts = acts
        .iter()
        .filter_map(|(what, act)| act.as_ref().map(|act| (*what, act)))
        .peekable();
    if acts.peek().is_none() {
        return Ok(());
    }
    writeln!(out, "who:")?;
    for (what, act) in acts {
        let device = act.device.as_deref().unwrap_or("an unknown device");
        let who = match &act.person {
            Some(p) => format!("{p} on {device}"),
            None => device.to_string(),
        };
        let how = match act.verification.as_str() {
            "relay_attested" => "attested by the relay",
            v => v,
        };
        let refused = act
            .refused
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default();
        writeln!(out, "  {what:9}  {who}, {how}{refused}")?;
    }
    Ok(())
}

fn show(view: &View, out: &mut impl Write) -> io::Result<()> {
    writeln!(out, "{} {}", type_name(view), view.id)?;
    let width = view.fields.keys().map(String::len).max().unwrap_or(0);
    for (name, value) in &view.fields {
        let lines = field_lines(name, value);
        let mut lines = lines.iter();
        let first = lines.next().map(String::as_str).unwrap_or("-");
        writeln!(out, "{}", format!("  {name:width$}  {first}").trim_end())?;
        for line in lines {
            writeln!(out, "  {:width$}    {line}", "")?;
        }
    }
    writeln!(out, "heads: {}", view.heads.join(", "))?;
    authorship_lines(view, out)?;
    if !view.conflicts.is_empty() {
        writeln!(out, "conflicts:")?;
        conflict_lines(view, out)?;
    }
    if !view.rejected.is_empty() {
        writeln!(out, "rejected:")?;
        rejected_lines(view, out)?;
    }
    if !view.violations.is_empty() {
        writeln!(out, "violations:")?;
        for v in &view.violations {
            writeln!(out, "  {}: {}", v.rule, v.detail)?;
        }
    }
    Ok(())
}

fn conflict_lines(view: &View, out: &mut impl Write) -> io::Result<()> {
    for c in &view.conflicts {
        let values: Vec<String> = c.values.iter().map(Value::to_string).collect();
        writeln!(
            out,
            "  {}: {} -> winner {} ({})",
            c.field,
            values.join(" | "),
            c.winner,
            c.merge_hint
        )?;
    }
    Ok(())
}

fn rejected_lines(view: &View, out: &mut impl Write) -> io::Result<()> {
    for r in &view.rejected {
        writeln!(
            out,
            "  {} = {}: {} ({}) [change {} by actor {}]",
            r.field,
            r.value,
            r.reason,
            r.detail,
            short(&r.change),
            short(&r.actor)
        )?;
    }
    Ok(())
}

fn short(hex: &str) -> &str {
    hex.get(..12).unwrap_or(hex)
}

/// A field's value as one or more lines of text.
fn field_lines(name: &str, value: &Value) -> Vec<String> {
    match value {
        Value::Array(items) if items.is_empty() => vec!["-".into()],
        Value::Array(items) => vec![items.iter().map(scalar).collect::<Vec<_>>().join(", ")],
        Value::Object(map) if map.is_empty() => vec!["-".into()],
        // a checklist: item -> ticked
        Value::Object(map) if map.values().all(Value::is_boolean) => map
            .iter()
            .map(|(item, ticked)| {
                let mark = if ticked.as_bool() == Some(true) {
                    "x"
                } else {
                    " "
                };
                format!("[{mark}] {item}")
            })
            .collect(),
        // an append-only map: entry id -> fields
        Value::Object(map) => map
            .iter()
            .map(|(key, entry)| match entry {
                Value::Object(fields) => format!("{key}: {}", entry_text(fields)),
                other => format!("{key}: {}", scalar(other)),
            })
            .collect(),
        Value::Number(n) if name.ends_with("_at") => match n.as_i64() {
            Some(ms) => vec![rfc3339_ms(ms)],
            None => vec![n.to_string()],
        },
        other => vec![scalar(other)],
    }
}

fn entry_text(fields: &Map<String, Value>) -> String {
    fields
        .iter()
        .map(|(k, v)| match (k.ends_with("_at"), v.as_i64()) {
            (true, Some(ms)) => format!("{k}={}", rfc3339_ms(ms)),
            _ => format!("{k}={}", scalar(v)),
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn table(
    list: &[Summary],
    labels: &BTreeMap<EntityId, String>,
    out: &mut impl Write,
) -> io::Result<()> {
    let rows: Vec<[String; 4]> = list
        .iter()
        .map(|s| {
            let mut title = match (&s.title, labels.get(&s.id), s.permit_id) {
                (Some(t), _, _) => t.clone(),
                (None, Some(label), _) => label.clone(),
                (None, None, Some(p)) => format!("(permit {p})"),
                (None, None, None) => String::new(),
            };
            if s.deleted {
                title.push_str(" [deleted]");
            }
            if s.conflicts > 0 || s.rejected > 0 {
                title.push_str(" [conflicts]");
            }
            [
                s.id.to_string(),
                s.entity_type.to_string(),
                s.status.clone().unwrap_or_else(|| "-".into()),
                title,
            ]
        })
        .collect();
    let header = ["ID", "TYPE", "STATUS", "TITLE"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let [id, ty, status, title] = row;
        let line = format!(
            "{id:w0$}  {ty:w1$}  {status:w2$}  {title}",
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

fn conflicts(views: &[View], out: &mut impl Write) -> io::Result<()> {
    if views.is_empty() {
        return writeln!(out, "no conflicts or rejected operations");
    }
    for (i, view) in views.iter().enumerate() {
        if i > 0 {
            writeln!(out)?;
        }
        let title = view.str_field("title").unwrap_or_default();
        writeln!(out, "{} {} {title}", type_name(view), view.id)?;
        if !view.conflicts.is_empty() {
            writeln!(out, "conflicts:")?;
            conflict_lines(view, out)?;
        }
        if !view.rejected.is_empty() {
            writeln!(out, "rejected:")?;
            rejected_lines(view, out)?;
        }
    }
    Ok(())
}
