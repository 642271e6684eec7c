//! What the dashboard's browser tests share: whether Chromium and Node.js are
//! there, and where screenshots are kept (`target/test-artifacts`).

use std::fs;
use std::path::{Path, PathBuf};

use super::{install_js_deps, node_js_installed};

/// `target/test-artifacts`, beside cargo's scratch directory for tests.
pub fn artifact_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("test-artifacts")
}

/// Whether the browser test can run; panics with what is missing unless
/// `PERMITSYNC_SKIP_BROWSER=1`, in which case it returns false. Installs
/// `tests/js/node_modules` when playwright-core is missing.
pub fn browser_ready(root: &Path) -> bool {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let missing = if !Path::new(&chromium).exists() {
        Some(format!(
            "Chromium is not installed at {chromium}: run scripts/install-browser.sh \
             (Debian packages chromium and chromium-driver)"
        ))
    } else if !node_js_installed() {
        Some("`node` (Node.js >= 20) is not installed: run scripts/ensure-node.sh".into())
    } else {
        None
    };
    if let Some(what) = missing {
        if std::env::var("PERMITSYNC_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("SKIPPED dashboard browser test (PERMITSYNC_SKIP_BROWSER=1): {what}");
            return false;
        }
        panic!("the dashboard browser test cannot run: {what}. Set PERMITSYNC_SKIP_BROWSER=1 to skip it.");
    }
    if !root
        .join("tests/js/node_modules/playwright-core/package.json")
        .is_file()
    {
        install_js_deps(
            &["--force"],
            "the browser test needs playwright-core in tests/js/node_modules",
        );
    }
    true
}

/// The artifact directory, made, without the screenshots `names` of an
/// earlier run (they must not pass for this run's).
pub fn fresh_artifacts(names: &[&str]) -> PathBuf {
    let artifacts = artifact_dir();
    fs::create_dir_all(&artifacts).expect("create target/test-artifacts");
    for shot in names {
        match fs::remove_file(artifacts.join(shot)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => panic!("remove an old {shot}: {e}"),
        }
    }
    artifacts
}

/// Each of `names` is a PNG image this run took.
pub fn assert_screenshots(names: &[&str]) {
    let artifacts = artifact_dir();
    for shot in names {
        let bytes = fs::read(artifacts.join(shot))
            .unwrap_or_else(|e| panic!("this run's {shot} in {}: {e}", artifacts.display()));
        assert!(
            bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{shot} is not a PNG image"
        );
    }
    eprintln!("screenshots: {}", artifacts.display());
}
