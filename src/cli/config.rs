//! Where `serve`'s options come from: the command line, then the environment
//! (`PERMITSYNC_<OPTION>`), then the `--config` TOML file, then the defaults.
//!
//! clap settles the command line and the environment. A file's value is used
//! for an option that neither of them gave: it is added to the command line
//! as `--key=value` and the whole is parsed again, so a value from the file
//! is checked exactly like one typed (ranges, choices, `--tls-cert` needing
//! `--tls-key`). A key that is no option is refused, naming the key.

use std::ffi::OsString;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, CommandFactory, FromArgMatches};

use super::args::{Cli, Command, ServeArgs};

/// Global options that are `serve` options too, and so keys of the file.
const GLOBAL_KEYS: [&str; 3] = ["data", "device", "require-gas"];

/// `serve` options that are not keys of the file: they say which file to
/// read and what to do with it.
const NOT_KEYS: [&str; 2] = ["config", "check-config"];

/// Where an option's effective value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Typed on the command line.
    CommandLine,
    /// The environment variable named.
    Environment(String),
    /// The `--config` file.
    ConfigFile,
    /// The built-in default.
    Default,
    /// Nowhere: the option is unset.
    Unset,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::CommandLine => f.write_str("command line"),
            Source::Environment(var) => write!(f, "environment {var}"),
            Source::ConfigFile => f.write_str("config file"),
            Source::Default => f.write_str("default"),
            Source::Unset => f.write_str("not set"),
        }
    }
}

/// The parsed command line, with the config file applied.
pub struct Parsed {
    /// The options.
    pub cli: Cli,
    /// For `serve`: every key of the config file, in `--help` order, with
    /// where its value came from.
    pub sources: Vec<(String, Source)>,
}

/// One option that the config file may set.
struct Key {
    /// The long name: the key.
    name: String,
    /// clap's id of the argument.
    id: String,
    /// Whether it is a global option (`data`...), not one of `serve`'s own.
    global: bool,
    /// A flag without a value.
    flag: bool,
    /// Whether it takes several values.
    list: bool,
    /// Its environment variable.
    env: Option<String>,
}

/// Every key of the config file, in `--help` order (the globals first).
fn keys() -> Vec<Key> {
    let cli = Cli::command();
    let key = |arg: &clap::Arg, global: bool| {
        let name = arg.get_long()?.to_string();
        let flag = matches!(arg.get_action(), ArgAction::SetTrue | ArgAction::SetFalse);
        Some(Key {
            id: arg.get_id().to_string(),
            global,
            flag,
            list: matches!(arg.get_action(), ArgAction::Append),
            env: arg.get_env().map(|e| e.to_string_lossy().into_owned()),
            name,
        })
    };
    let globals = cli
        .get_arguments()
        .filter(|a| a.get_long().is_some_and(|l| GLOBAL_KEYS.contains(&l)))
        .filter_map(|a| key(a, true));
    let serve = cli
        .find_subcommand("serve")
        .map(|s| {
            s.get_arguments()
                .filter(|a| {
                    a.get_long()
                        .is_some_and(|l| !NOT_KEYS.contains(&l) && l != "help")
                })
                .filter_map(|a| key(a, false))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    globals.chain(serve).collect()
}

/// Parse the process's command line, applying `serve --config FILE`. A usage
/// error exits as clap does (status 2); a bad config file is an error.
pub fn parse() -> Result<Parsed> {
    parse_from(std::env::args_os().collect())
}

/// [`parse`] over `args` (the program's name first).
pub fn parse_from(args: Vec<OsString>) -> Result<Parsed> {
    let matches = Cli::command().get_matches_from(&args);
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let Command::Serve(serve) = &cli.command else {
        return Ok(Parsed {
            cli,
            sources: Vec::new(),
        });
    };
    let keys = keys();
    let Some(path) = serve.config.clone() else {
        let sources = sources(&keys, &matches, &[]);
        return Ok(Parsed { cli, sources });
    };
    let file = read_file(&path, &keys)?;
    let mut from_file = Vec::new();
    let mut all = args;
    for key in &keys {
        let Some(value) = file.get(&key.name) else {
            continue;
        };
        if given(key, &matches) {
            continue; // the command line or the environment wins
        }
        all.extend(file_args(key, value).map_err(|e| in_file(&path, e))?);
        from_file.push(key.name.clone());
    }
    let matches = Cli::command()
        .try_get_matches_from(&all)
        .map_err(|e| in_file(&path, anyhow!("{}", first_line(&e.to_string()))))?;
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let sources = sources(&keys, &matches, &from_file);
    Ok(Parsed { cli, sources })
}

fn in_file(path: &Path, e: anyhow::Error) -> anyhow::Error {
    anyhow!("config file {}: {e}", path.display())
}

/// clap's first line, without its `error: `.
fn first_line(message: &str) -> &str {
    let line = message.lines().next().unwrap_or(message);
    line.strip_prefix("error: ").unwrap_or(line)
}

/// Where the command line or the environment gave `key`'s value, if they did.
/// A global option may be given before or after the subcommand.
fn value_source(key: &Key, matches: &ArgMatches) -> Option<ValueSource> {
    let serve = matches.subcommand_matches("serve");
    let source = |m: &ArgMatches| m.value_source(&key.id);
    let top = if key.global { source(matches) } else { None };
    match (top, serve.and_then(source)) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Whether the command line or the environment gave `key`.
fn given(key: &Key, matches: &ArgMatches) -> bool {
    matches!(
        value_source(key, matches),
        Some(ValueSource::CommandLine | ValueSource::EnvVariable)
    )
}

/// Where each key's value came from.
fn sources(keys: &[Key], matches: &ArgMatches, from_file: &[String]) -> Vec<(String, Source)> {
    keys.iter()
        .map(|key| {
            let source = if from_file.contains(&key.name) {
                Source::ConfigFile
            } else {
                match value_source(key, matches) {
                    Some(ValueSource::CommandLine) => Source::CommandLine,
                    Some(ValueSource::EnvVariable) => {
                        Source::Environment(key.env.clone().unwrap_or_default())
                    }
                    Some(ValueSource::DefaultValue) => Source::Default,
                    _ => Source::Unset,
                }
            };
            (key.name.clone(), source)
        })
        .collect()
}

/// Read and check the file: TOML, every key an option.
fn read_file(path: &Path, keys: &[Key]) -> Result<toml::Table> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))
        .map_err(|e| anyhow!("{e:#}"))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| anyhow!("config file {}: {e}", path.display()))?;
    for name in table.keys() {
        if !keys.iter().any(|k| &k.name == name) {
            let mut message = format!(
                "config file {}: unknown key `{name}` (the keys are serve's long option names)",
                path.display()
            );
            if let Some(near) = nearest(name, keys) {
                message.push_str(&format!("; did you mean `{near}`?"));
            }
            bail!(message);
        }
    }
    Ok(table)
}

/// The key closest to a mistyped one, if any is close.
fn nearest<'a>(name: &str, keys: &'a [Key]) -> Option<&'a str> {
    keys.iter()
        .map(|k| (edit_distance(name, &k.name), k.name.as_str()))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| k)
}

/// Levenshtein distance.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The command-line arguments that say what the file says for `key`.
fn file_args(key: &Key, value: &toml::Value) -> Result<Vec<OsString>> {
    let arg = |v: String| OsString::from(format!("--{}={v}", key.name));
    let scalar = |v: &toml::Value| -> Result<String> {
        match v {
            toml::Value::String(s) => Ok(s.clone()),
            toml::Value::Integer(i) => Ok(i.to_string()),
            toml::Value::Float(f) => Ok(f.to_string()),
            toml::Value::Boolean(b) => Ok(b.to_string()),
            _ => bail!("`{}`: expected a string or a number", key.name),
        }
    };
    match value {
        toml::Value::Boolean(on) if key.flag => Ok(if *on {
            vec![OsString::from(format!("--{}", key.name))]
        } else {
            Vec::new()
        }),
        _ if key.flag => bail!("`{}`: expected true or false", key.name),
        toml::Value::Array(items) if key.list => items
            .iter()
            .map(|v| scalar(v).map(arg))
            .collect::<Result<Vec<_>>>(),
        toml::Value::Array(_) => bail!("`{}` takes one value, not a list", key.name),
        v => Ok(vec![arg(scalar(v)?)]),
    }
}

/// The effective configuration as TOML that `--config` accepts, each line
/// with where its value came from; unset options as comments.
pub fn effective(
    data: &Path,
    device: Option<&str>,
    require_gas: &[String],
    serve: &ServeArgs,
    sources: &[(String, Source)],
) -> Result<String> {
    let mut values = toml::Table::try_from(serve).context("the serve options as TOML")?;
    values.insert("data".into(), data.display().to_string().into());
    if let Some(device) = device {
        values.insert("device".into(), device.into());
    }
    let rules = require_gas.iter().map(|r| toml::Value::from(r.as_str()));
    values.insert("require-gas".into(), toml::Value::Array(rules.collect()));
    let mut out = String::from(
        "# effective configuration: command line > environment > config file > default\n",
    );
    for (key, source) in sources {
        match values.get(key) {
            Some(v) => out.push_str(&format!("{key} = {v}  # {source}\n")),
            None => out.push_str(&format!("# {key} is not set\n")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    /// Every serve option has its variable, `PERMITSYNC_` and its name.
    #[test]
    fn every_key_has_its_environment_variable() {
        let keys = keys();
        assert!(keys.len() > 20, "{}", keys.len());
        for key in keys {
            let expected = format!("PERMITSYNC_{}", key.name.to_uppercase().replace('-', "_"));
            assert_eq!(key.env.as_deref(), Some(expected.as_str()), "{}", key.name);
        }
    }

    /// The effective configuration names every key, and only keys.
    #[test]
    fn the_effective_configuration_names_every_key() {
        let parsed = parse_from(args(&[
            "permitsync",
            "serve",
            "--connect",
            "ws://a/v1/sync",
        ]))
        .expect("parsed");
        let Command::Serve(serve) = &parsed.cli.command else {
            panic!("serve")
        };
        let cli = &parsed.cli;
        let text = effective(&cli.data, None, &[], serve, &parsed.sources).expect("effective");
        for key in keys() {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("{} = ", key.name))
                        || l == format!("# {} is not set", key.name)),
                "{}:\n{text}",
                key.name
            );
        }
        assert!(
            text.contains("connect = [\"ws://a/v1/sync\"]  # command line"),
            "{text}"
        );
        assert!(
            text.contains("listen = \"127.0.0.1:8080\"  # default"),
            "{text}"
        );
        // it is a config file itself
        let table: toml::Table = text.parse().expect("TOML");
        assert!(table.contains_key("max-frame-bytes"));
    }

    #[test]
    fn a_toml_value_becomes_arguments() {
        let keys = keys();
        let key = |n: &str| keys.iter().find(|k| k.name == n).expect("a key");
        let connect = toml::Value::Array(vec!["ws://a".into(), "ws://b".into()]);
        assert_eq!(
            file_args(key("connect"), &connect).expect("list"),
            args(&["--connect=ws://a", "--connect=ws://b"])
        );
        assert_eq!(
            file_args(key("max-frame-bytes"), &toml::Value::Integer(1000)).expect("number"),
            args(&["--max-frame-bytes=1000"])
        );
        let e = file_args(key("listen"), &connect).expect_err("not a list");
        assert!(e.to_string().contains("takes one value"), "{e}");
    }

    #[test]
    fn a_near_miss_is_suggested() {
        let keys = keys();
        assert_eq!(nearest("max-frame-byte", &keys), Some("max-frame-bytes"));
        assert_eq!(nearest("colour", &keys), None);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
