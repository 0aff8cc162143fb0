//! The relay's configuration file: TOML, one key per `serve` flag.
//!
//! ```toml
//! listen = "0.0.0.0:443"
//! data-dir = "/var/lib/dealersync"
//! tls-cert = "/etc/dealersync/relay.pem"
//! tls-key = "/etc/dealersync/relay.key"
//! max-connections-per-ip = 2000
//! ```
//!
//! One precedence order, the same for every setting: **command-line flag, then
//! `DEALERSYNC_*` environment variable, then the file, then the built-in default.**
//! The file is applied by setting, before the flags are parsed, the environment
//! variable of each key the environment does not already set; so the one parser (clap)
//! reads all three sources and a key means exactly what its flag means. A key that is
//! not a `serve` flag, or a value its flag would refuse, is an error that names the
//! file, the key and the reason (with the closest flag name for a typo) — never a
//! setting silently ignored.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment variable naming the configuration file (as `--config` does).
pub const CONFIG_ENV: &str = "DEALERSYNC_CONFIG";

/// Why the configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read the configuration file {path}: {error}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A key that is not a setting of `serve`.
    #[error("{path}: `{key}` is not a setting{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownKey {
        /// The file.
        path: PathBuf,
        /// The key as written.
        key: String,
        /// The closest setting's name.
        suggestion: Option<String>,
    },
    /// A value of the wrong kind, or one the flag refuses.
    #[error("{path}: `{key} = {value}`: {reason}")]
    BadValue {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// The value as written.
        value: String,
        /// Why it is refused.
        reason: String,
    },
}

/// One setting read from the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The flag's long name (`data-dir`), whatever spelling the file used.
    pub flag: String,
    /// Its environment variable (`DEALERSYNC_DATA_DIR`).
    pub env: String,
    /// The value as the flag would take it.
    pub value: String,
}

/// The settings of a configuration file, checked against the `serve` command.
#[derive(Debug, Clone)]
pub struct ConfigFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its settings, in the file's order.
    pub entries: Vec<Entry>,
}

impl ConfigFile {
    /// Reads `path` and checks every key and value against `serve`'s flags.
    pub fn load(path: &Path, serve: &clap::Command) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Read {
            path: path.to_path_buf(),
            error,
        })?;
        Self::parse(path, &text, serve)
    }

    /// [`ConfigFile::load`] on text already read.
    pub fn parse(
        path: &Path,
        text: &str,
        serve: &clap::Command,
    ) -> Result<ConfigFile, ConfigError> {
        let table: toml::Table =
            text.parse()
                .map_err(|e: toml::de::Error| ConfigError::Syntax {
                    path: path.to_path_buf(),
                    message: e.to_string().trim().to_string(),
                })?;
        let settable: Vec<&clap::Arg> = serve
            .get_arguments()
            .filter(|a| a.get_long().is_some() && a.get_env().is_some())
            .filter(|a| a.get_long() != Some("config"))
            .collect();
        let mut entries = Vec::new();
        for (key, value) in &table {
            let flag = key.replace('_', "-");
            let Some(arg) = settable
                .iter()
                .find(|a| a.get_long() == Some(flag.as_str()))
            else {
                return Err(ConfigError::UnknownKey {
                    path: path.to_path_buf(),
                    key: key.clone(),
                    suggestion: closest(&flag, settable.iter().filter_map(|a| a.get_long())),
                });
            };
            let bad = |reason: String| ConfigError::BadValue {
                path: path.to_path_buf(),
                key: key.clone(),
                value: value.to_string(),
                reason,
            };
            let is_switch = !arg.get_action().takes_values();
            let text = match value {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                _ => return Err(bad("a setting is a string, a number or true/false".into())),
            };
            if is_switch != matches!(value, toml::Value::Boolean(_)) {
                return Err(bad(if is_switch {
                    "this setting is a switch: write true or false".into()
                } else {
                    "this setting takes a value, not true/false".into()
                }));
            }
            if !is_switch {
                // The flag's own parser decides, so the file accepts exactly what the
                // command line does.
                let probe = serve
                    .clone()
                    .no_binary_name(true)
                    .try_get_matches_from([format!("--{flag}"), text.clone()]);
                // Another flag it needs (`tls-key` for `tls-cert`) is checked with
                // all the settings together.
                if let Err(e) = probe
                    && e.kind() != clap::error::ErrorKind::MissingRequiredArgument
                {
                    let reason = e.kind().as_str().unwrap_or("refused").to_string();
                    let detail = e
                        .to_string()
                        .lines()
                        .next()
                        .unwrap_or_default()
                        .trim_start_matches("error: ")
                        .to_string();
                    return Err(bad(if detail.is_empty() { reason } else { detail }));
                }
            }
            let env = arg.get_env().unwrap().to_string_lossy().into_owned();
            entries.push(Entry {
                flag,
                env,
                value: text,
            });
        }
        Ok(ConfigFile {
            path: path.to_path_buf(),
            entries,
        })
    }

    /// Sets the environment variable of every entry the environment does not set
    /// already (the environment wins over the file); returns the variables set.
    ///
    /// # Safety
    /// Changes the process environment: call it before any other thread exists.
    pub unsafe fn apply_to_env(&self) -> Vec<String> {
        let mut set = Vec::new();
        for e in &self.entries {
            if std::env::var_os(&e.env).is_none() {
                // SAFETY: the caller guarantees no other thread reads the environment.
                unsafe { std::env::set_var(&e.env, &e.value) };
                set.push(e.env.clone());
            }
        }
        set
    }
}

/// The configuration file named on the command line (`--config FILE` or
/// `--config=FILE` after the subcommand) or by `DEALERSYNC_CONFIG`.
pub fn config_path(args: &[OsString]) -> Option<PathBuf> {
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        let a = a.to_string_lossy();
        if a == "--" {
            break;
        }
        if a == "--config" {
            return it.next().map(PathBuf::from);
        }
        if let Some(v) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(v));
        }
    }
    std::env::var_os(CONFIG_ENV).map(PathBuf::from)
}

/// The candidate nearest to `word` by edit distance, if it is near enough to be a
/// typo of it.
fn closest<'a>(word: &str, candidates: impl Iterator<Item = &'a str>) -> Option<String> {
    candidates
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 3.max(c.len() / 4))
        .min()
        .map(|(_, c)| c.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{Arg, ArgAction, Command};

    fn serve() -> Command {
        Command::new("serve")
            .arg(
                Arg::new("listen")
                    .long("listen")
                    .env("T_LISTEN")
                    .value_parser(clap::value_parser!(std::net::SocketAddr)),
            )
            .arg(Arg::new("data_dir").long("data-dir").env("T_DATA_DIR"))
            .arg(
                Arg::new("demo")
                    .long("demo")
                    .env("T_DEMO")
                    .action(ArgAction::SetTrue),
            )
            .arg(
                Arg::new("max")
                    .long("max-connections")
                    .env("T_MAX")
                    .value_parser(clap::value_parser!(usize)),
            )
    }

    fn parse(text: &str) -> Result<ConfigFile, ConfigError> {
        ConfigFile::parse(Path::new("relay.toml"), text, &serve())
    }

    #[test]
    fn keys_are_flags_in_either_spelling() {
        let f = parse(
            "listen = \"0.0.0.0:443\"\ndata_dir = \"/srv\"\ndemo = true\nmax-connections = 500\n",
        )
        .unwrap();
        let got: Vec<(&str, &str)> = f
            .entries
            .iter()
            .map(|e| (e.env.as_str(), e.value.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("T_DATA_DIR", "/srv"),
                ("T_DEMO", "true"),
                ("T_LISTEN", "0.0.0.0:443"),
                ("T_MAX", "500")
            ]
        );
    }

    #[test]
    fn mistakes_are_explained() {
        let e = parse("lisen = \"0.0.0.0:443\"").unwrap_err().to_string();
        assert!(
            e.contains("`lisen` is not a setting; did you mean `listen`?"),
            "{e}"
        );
        let e = parse("listen = \"0.0.0.0\"").unwrap_err().to_string();
        assert!(e.contains("listen = \"0.0.0.0\""), "{e}");
        assert!(e.contains("invalid"), "{e}");
        let e = parse("demo = \"yes\"").unwrap_err().to_string();
        assert!(e.contains("write true or false"), "{e}");
        let e = parse("max-connections = true").unwrap_err().to_string();
        assert!(e.contains("takes a value"), "{e}");
        let e = parse("max-connections = -5").unwrap_err().to_string();
        assert!(e.contains("max-connections = -5"), "{e}");
        let e = parse("listen = [1, 2]").unwrap_err().to_string();
        assert!(e.contains("a string, a number or true/false"), "{e}");
        let e = parse("listen = ").unwrap_err().to_string();
        assert!(e.contains("not valid TOML"), "{e}");
        assert!(
            parse("zzzzzzzzzzz = 1")
                .unwrap_err()
                .to_string()
                .ends_with("is not a setting")
        );
    }

    #[test]
    fn the_file_is_named_by_flag_or_environment() {
        let args = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            config_path(&args(&["bin", "serve", "--config", "/etc/d.toml"])),
            Some(PathBuf::from("/etc/d.toml"))
        );
        assert_eq!(
            config_path(&args(&["bin", "check-config", "--config=/etc/d.toml"])),
            Some(PathBuf::from("/etc/d.toml"))
        );
    }
}
