//! The dashboard's files, embedded in the binary at build time.

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// Its name under `/dashboard/`.
    pub name: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("static/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// The page, served at `/`.
pub const INDEX: &Asset = &asset!("index.html", "text/html; charset=utf-8");

/// The files the page loads, served at `/dashboard/{name}`.
pub const ASSETS: &[Asset] = &[
    asset!("style.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("auth.js", JS),
    asset!("live.js", JS),
    asset!("entities.js", JS),
    asset!("dom.js", JS),
    asset!("format.js", JS),
    asset!("conflict.js", JS),
    asset!("history.js", JS),
    asset!("page-permits.js", JS),
    asset!("page-permit.js", JS),
    asset!("page-conflicts.js", JS),
    asset!("page-devices.js", JS),
    asset!("page-new.js", JS),
    asset!("alarms.js", JS),
    asset!("actions.js", JS),
    asset!("authors.js", JS),
    asset!("gas-form.js", JS),
    asset!("children-form.js", JS),
    asset!("print-sheet.js", JS),
    asset!("workflow.js", JS),
];
