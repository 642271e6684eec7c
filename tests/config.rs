//! Where `serve`'s options come from, with real processes: the command line
//! over the environment over the `--config` file over the defaults; unknown
//! keys and bad values refused with the key named; `--check-config` without
//! opening the store; the packaged example config and systemd unit; the docs'
//! options table; JSON logs and no colour in a log file; OS reasons in bind
//! and open errors.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use support::{eventually, repo_root, NodeProcess, BIN};

/// `permitsync ARGS...` with exactly the `PERMITSYNC_*` variables in `env`.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("PERMITSYNC_") {
            command.env_remove(key);
        }
    }
    command
        .args(args)
        .env_remove("RUST_LOG")
        .envs(env.iter().copied())
        .output()
        .expect("run permitsync")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `--check-config`'s lines: key -> (value, source).
fn effective(out: &Output) -> BTreeMap<String, (String, String)> {
    assert!(
        out.status.success(),
        "--check-config failed: {}",
        stderr(out)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.ends_with("# configuration ok\n"), "{text}");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (key, rest) = l.split_once(" = ").expect("key = value");
            let (value, source) = rest.rsplit_once("  # ").expect("value  # source");
            (key.to_string(), (value.to_string(), source.to_string()))
        })
        .collect()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

#[test]
fn the_command_line_wins_over_the_environment_over_the_file_over_the_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("permitsync.toml");
    std::fs::write(
        &file,
        "# in the file only, in the file and the environment, in all three\n\
         max-frame-bytes = 9000000\n\
         max-document-bytes = 1000\n\
         max-changes-per-message = 11\n\
         connect = [\"ws://a.example/v1/sync\", \"ws://b.example/v1/sync\"]\n\
         data = \"/from/file\"\n",
    )
    .expect("config file");
    let out = run(
        &[
            "serve",
            "--config",
            s(&file),
            "--max-changes-per-message",
            "33",
            "--join-timeout-secs",
            "4",
            "--check-config",
        ],
        &[
            ("PERMITSYNC_MAX_DOCUMENT_BYTES", "2000"),
            ("PERMITSYNC_MAX_CHANGES_PER_MESSAGE", "22"),
            ("PERMITSYNC_IDLE_TIMEOUT_SECS", "7"),
        ],
    );
    let got = effective(&out);
    let at = |key: &str| {
        let (v, s) = &got[key];
        (v.as_str(), s.as_str())
    };
    assert_eq!(at("max-frame-bytes"), ("9000000", "config file"));
    assert_eq!(
        at("max-document-bytes"),
        ("2000", "environment PERMITSYNC_MAX_DOCUMENT_BYTES")
    );
    assert_eq!(at("max-changes-per-message"), ("33", "command line"));
    assert_eq!(
        at("idle-timeout-secs"),
        ("7", "environment PERMITSYNC_IDLE_TIMEOUT_SECS")
    );
    assert_eq!(at("join-timeout-secs"), ("4", "command line"));
    assert_eq!(at("ping-interval-secs"), ("30", "default"));
    assert_eq!(
        at("connect"),
        (
            r#"["ws://a.example/v1/sync", "ws://b.example/v1/sync"]"#,
            "config file"
        )
    );
    // a global option: the file's, until the command line gives one
    assert_eq!(at("data"), (r#""/from/file""#, "config file"));
    let out = run(
        &[
            "--data",
            "/typed",
            "serve",
            "--config",
            s(&file),
            "--check-config",
        ],
        &[],
    );
    assert_eq!(effective(&out)["data"].0, r#""/typed""#);
    // the variable of a list: URLs separated by spaces
    let out = run(
        &["serve", "--config", s(&file), "--check-config"],
        &[("PERMITSYNC_CONNECT", "ws://c/v1/sync ws://d/v1/sync")],
    );
    assert_eq!(
        effective(&out)["connect"].0,
        r#"["ws://c/v1/sync", "ws://d/v1/sync"]"#
    );
}

/// The node's log once it holds its `node started` line (logged just after
/// the `listening on` line that `start` waits for).
async fn started_log(node: &NodeProcess) -> String {
    eventually(Duration::from_secs(20), "the `node started` line", || {
        let log = node.logs();
        async move { log.contains("node started").then_some(log) }
    })
    .await
}

#[tokio::test]
async fn a_running_node_takes_its_options_from_the_file_and_the_environment() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("permitsync.toml");
    std::fs::write(&file, "log-format = \"json\"\n").expect("config file");
    // the file asks for JSON lines
    let node = NodeProcess::options(&dir.path().join("json"))
        .args(&["--config", s(&file)])
        .log_level("info")
        .start();
    let log = started_log(&node).await;
    let started = log
        .lines()
        .find(|l| l.contains("node started"))
        .unwrap_or_else(|| panic!("no `node started` line:\n{log}"));
    let v: serde_json::Value = serde_json::from_str(started).expect("a JSON log line");
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["fields"]["message"], "node started");
    drop(node);
    // the environment overrides the file: text, and no colour in a file
    let node = NodeProcess::options(&dir.path().join("text"))
        .args(&["--config", s(&file)])
        .env("PERMITSYNC_LOG_FORMAT", "text")
        .log_level("info")
        .start();
    let log = started_log(&node).await;
    assert!(
        log.lines()
            .any(|l| l.contains("INFO") && l.contains("node started") && !l.starts_with('{')),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "ANSI codes in a log file:\n{log}");
}

#[test]
fn unknown_keys_and_bad_values_are_refused_naming_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("bad.toml");
    let data = dir.path().join("data");
    let cases: [(&str, &[&str]); 5] = [
        (
            "max-frame-byte = 1000\n",
            &[
                "unknown key `max-frame-byte`",
                "did you mean `max-frame-bytes`?",
            ],
        ),
        ("colour = \"red\"\n", &["unknown key `colour`"]),
        (
            "idle-timeout-secs = \"soon\"\n",
            &["invalid value 'soon' for '--idle-timeout-secs <SECS>'"],
        ),
        ("listen = [\"a\", \"b\"]\n", &["`listen` takes one value"]),
        (
            "max-connections = 10\nmax-connections = 11\n",
            &["duplicate key"],
        ),
    ];
    for (text, expected) in cases {
        std::fs::write(&file, text).expect("config file");
        let out = run(&["--data", s(&data), "serve", "--config", s(&file)], &[]);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{text}: {err}");
        assert!(
            err.contains(&format!("config file {}", file.display())),
            "{err}"
        );
        for e in expected {
            assert!(err.contains(e), "{text}: {err}");
        }
    }
    assert!(!data.exists(), "a refused configuration opened the store");
    let out = run(&["serve", "--config", "/nonexistent/permitsync.toml"], &[]);
    assert!(
        stderr(&out).contains(
            "cannot read config file /nonexistent/permitsync.toml: No such file or directory (os error 2)"
        ),
        "{}",
        stderr(&out)
    );
}

#[test]
fn check_config_does_not_open_the_store_and_checks_the_files_it_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("never-created");
    let out = run(&["--data", s(&data), "serve", "--check-config"], &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!data.exists());

    let missing = dir.path().join("missing.pem");
    let out = run(
        &[
            "serve",
            "--check-config",
            "--tls-cert",
            s(&missing),
            "--tls-key",
            s(&missing),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "cannot read TLS certificate {}: No such file or directory (os error 2)",
            missing.display()
        )),
        "{}",
        stderr(&out)
    );
    let out = run(&["serve", "--check-config", "--tls-cert", s(&missing)], &[]);
    assert_eq!(out.status.code(), Some(2), "--tls-cert needs --tls-key");
    let tokens = dir.path().join("tokens.json");
    std::fs::write(&tokens, "{\"tokens\": [{\"token\": \"x\"}]}").expect("tokens");
    let out = run(&["serve", "--check-config", "--tokens", s(&tokens)], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("invalid tokens file"),
        "{}",
        stderr(&out)
    );
    // a role table naming an unknown operation is refused, naming it; one
    // without a tokens file (no authority to sign it) too
    let good_tokens = dir.path().join("good-tokens.json");
    std::fs::write(&good_tokens, "{\"tokens\": []}").expect("tokens");
    let roles = dir.path().join("role-table.json");
    std::fs::write(&roles, r#"{"acme": {"permit approve": ["issuer"]}}"#).expect("roles");
    let with_roles = |roles: &Path| {
        run(
            &[
                "serve",
                "--check-config",
                "--tokens",
                s(&good_tokens),
                "--role-table",
                s(roles),
            ],
            &[],
        )
    };
    let out = with_roles(&roles);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("tenant acme: unknown operation \"permit approve\""),
        "{}",
        stderr(&out)
    );
    std::fs::write(
        &roles,
        r#"{"acme": {"permit submitted -> approved": ["performer", "issuer"]}}"#,
    )
    .expect("roles");
    let got = effective(&with_roles(&roles));
    assert_eq!(got["role-table"].1, "command line");
    let out = run(&["serve", "--check-config", "--role-table", s(&roles)], &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--role-table needs --tokens"),
        "{}",
        stderr(&out)
    );
}

/// Every `# key = value` line of the example, uncommented, with the example's
/// /etc/permitsync paths made real files.
fn uncommented_example(dir: &Path) -> String {
    let example = std::fs::read_to_string(repo_root().join("packaging/permitsync.toml"))
        .expect("packaging/permitsync.toml");
    let etc = dir.join("etc");
    std::fs::create_dir_all(etc.join("tls")).expect("etc");
    let key = rcgen::KeyPair::generate().expect("key");
    let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .expect("params")
        .self_signed(&key)
        .expect("cert");
    std::fs::write(etc.join("tls/cert.pem"), cert.pem()).expect("cert");
    std::fs::write(etc.join("tls/key.pem"), key.serialize_pem()).expect("key");
    std::fs::write(etc.join("ca.pem"), cert.pem()).expect("ca");
    std::fs::write(etc.join("tokens.json"), "{\"tokens\": []}").expect("tokens");
    std::fs::write(etc.join("admin-token"), "an-admin-token-of-the-example\n").expect("admin");
    std::fs::write(etc.join("authority.key"), format!("{}\n", "ab".repeat(32))).expect("key");
    std::fs::write(
        etc.join("role-table.json"),
        r#"{"acme": {"permit submitted -> approved": ["issuer", "performer"]}}"#,
    )
    .expect("role table");
    example
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest) if is_setting(rest) => rest.to_string(),
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
        .replace("/etc/permitsync/", &format!("{}/", etc.display()))
}

/// `key = value` with a key of letters and dashes.
fn is_setting(line: &str) -> bool {
    line.split_once(" = ").is_some_and(|(k, _)| {
        !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '-')
    })
}

#[test]
fn the_packaged_example_config_parses_and_shows_every_option_with_its_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let example = repo_root().join("packaging/permitsync.toml");
    let out = run(&["serve", "--config", s(&example), "--check-config"], &[]);
    let shipped = effective(&out);
    assert_eq!(shipped["data"].0, r#""/var/lib/permitsync""#);

    let defaults = effective(&run(&["serve", "--check-config"], &[]));
    let full = dir.path().join("full.toml");
    std::fs::write(&full, uncommented_example(dir.path())).expect("write");
    let out = run(&["serve", "--config", s(&full), "--check-config"], &[]);
    let every = effective(&out);
    let text = std::fs::read_to_string(&example).expect("example");
    let all_keys = String::from_utf8_lossy(&run(&["serve", "--check-config"], &[]).stdout)
        .lines()
        .filter_map(|l| {
            l.strip_prefix("# ")
                .and_then(|r| r.strip_suffix(" is not set"))
                .or_else(|| l.split_once(" = ").map(|(k, _)| k))
                .map(String::from)
        })
        .collect::<Vec<_>>();
    assert!(all_keys.len() > 25, "{all_keys:?}");
    for key in &all_keys {
        // every option is in the example, and set by it once uncommented
        assert!(
            text.lines()
                .any(|l| l.trim_start_matches("# ").starts_with(&format!("{key} = "))),
            "packaging/permitsync.toml lacks `{key}`"
        );
        let (value, source) = every.get(key).unwrap_or_else(|| panic!("{key} not set"));
        assert_eq!(source, "config file", "{key}");
        // and a commented default is the real default
        if let Some((default, "default")) = defaults.get(key).map(|(v, s)| (v, s.as_str())) {
            if text.contains(&format!("# {key} = ")) {
                assert_eq!(value, default, "the example's default of {key}");
            }
        }
    }
}

#[test]
fn the_systemd_unit_runs_the_example_config_and_reloads_with_sighup() {
    let unit = std::fs::read_to_string(repo_root().join("packaging/permitsync.service"))
        .expect("packaging/permitsync.service");
    for line in [
        "ExecStart=/usr/local/bin/permitsync serve --config /etc/permitsync/permitsync.toml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "StateDirectory=permitsync",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "User=permitsync",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks `{line}`");
    }
    // the store directory of the example is the unit's state directory
    let example =
        std::fs::read_to_string(repo_root().join("packaging/permitsync.toml")).expect("example");
    assert!(example.contains("\ndata = \"/var/lib/permitsync\"\n"));
    // systemd's own check, where systemd-analyze is installed: no unknown key
    let dir = tempfile::tempdir().expect("tempdir");
    let copy = dir.path().join("permitsync.service");
    std::fs::write(&copy, unit.replace("/usr/local/bin/permitsync", BIN)).expect("copy");
    match Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
    {
        Ok(out) => {
            let err = stderr(&out);
            assert!(out.status.success() && err.trim().is_empty(), "{err}");
        }
        Err(e) => eprintln!("systemd-analyze not run ({e}): only the static checks"),
    }
}

#[test]
fn the_docs_list_every_serve_option_with_its_variable_and_key() {
    let docs = std::fs::read_to_string(repo_root().join("docs/operations.md")).expect("docs");
    let out = run(&["serve", "--check-config"], &[]);
    let text = String::from_utf8_lossy(&out.stdout);
    let keys = text.lines().filter_map(|l| {
        l.strip_prefix("# ")
            .and_then(|r| r.strip_suffix(" is not set"))
            .or_else(|| l.split_once(" = ").map(|(k, _)| k))
    });
    for key in keys {
        let var = format!("PERMITSYNC_{}", key.to_uppercase().replace('-', "_"));
        assert!(
            docs.lines().any(|l| l.starts_with(&format!("| `--{key}"))
                && l.contains(&format!("`{var}`"))
                && l.contains(&format!("`{key}`"))),
            "docs/operations.md has no row for --{key} with {var} and key `{key}`"
        );
    }
}

#[tokio::test]
async fn bind_and_open_errors_carry_the_os_reason() {
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run(
        &[
            "--data",
            s(&dir.path().join("d")),
            "serve",
            "--listen",
            &addr,
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains(&format!(
            "cannot listen on {addr}: Address already in use (os error 98)"
        )),
        "{}",
        stderr(&out)
    );
    // a store directory under a file
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").expect("file");
    let store = file.join("store");
    let out = run(&["--data", s(&store), "list"], &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("cannot open the store at {}", store.display()))
            && err.contains("(os error"),
        "{err}"
    );
}
