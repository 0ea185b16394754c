//! Where the API key and the base URL come from. For each, the first that is set wins:
//!
//! 1. the flag (`--api-key`, `--base-url`);
//! 2. the environment (`KILN_API_KEY`, `KILN_BASE_URL`);
//! 3. the config file: `$KILN_CONFIG` if set, else `$XDG_CONFIG_HOME/kiln/config.toml`,
//!    else `~/.config/kiln/config.toml`, with `api_key` and `base_url`;
//! 4. for the base URL, the local dev stack, `http://127.0.0.1:8787`.
//!
//! An empty value counts as unset.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::CliError;

pub const DEFAULT_BASE_URL: &str = "http://127.0.0.1:8787";

/// The config file's fields.
#[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_url: Option<String>,
}

/// What a command runs with.
#[derive(Debug, PartialEq)]
pub struct Config {
    pub base_url: String,
    pub api_key: Option<String>,
    /// Where each came from (for `kiln config show`).
    pub base_url_from: Source,
    pub api_key_from: Option<Source>,
}

impl Config {
    /// Settings given directly (tests).
    #[cfg(test)]
    pub fn new(base_url: &str, api_key: Option<&str>) -> Config {
        Config {
            base_url: base_url.to_owned(),
            api_key: api_key.map(str::to_owned),
            base_url_from: Source::Flag,
            api_key_from: api_key.map(|_| Source::Flag),
        }
    }
}

/// Where a setting came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Flag,
    Env,
    File,
    Default,
}

impl Source {
    pub fn describe(self, env_var: &str, file: Option<&Path>) -> String {
        match self {
            Source::Flag => "the command-line flag".to_owned(),
            Source::Env => format!("the environment ({env_var})"),
            Source::File => match file {
                Some(p) => format!("the config file ({})", p.display()),
                None => "the config file".to_owned(),
            },
            Source::Default => "the default".to_owned(),
        }
    }
}

/// The config file's path, from the environment (`KILN_CONFIG`, `XDG_CONFIG_HOME`,
/// `HOME`), or `None` when none of them says.
pub fn config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let var = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(p) = var("KILN_CONFIG") {
        return Some(PathBuf::from(p));
    }
    // The XDG spec ignores a relative XDG_CONFIG_HOME.
    if let Some(dir) = var("XDG_CONFIG_HOME").filter(|d| Path::new(d).is_absolute()) {
        return Some(Path::new(&dir).join("kiln/config.toml"));
    }
    var("HOME").map(|home| Path::new(&home).join(".config/kiln/config.toml"))
}

/// Reads the config file; a file that does not exist is no config.
pub fn load_file(path: &Path) -> Result<Option<FileConfig>, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(CliError::Other(format!(
                "cannot read the config file {}: {e}",
                path.display()
            )))
        }
    };
    parse_file(&text)
        .map(Some)
        .map_err(|e| CliError::Other(format!("config file {}: {e}", path.display())))
}

/// Parses the config file's text; the error is one line.
pub fn parse_file(text: &str) -> Result<FileConfig, String> {
    toml::from_str(text).map_err(|e: toml::de::Error| {
        e.message().trim().to_owned() + &line_of(text, e.span().map(|s| s.start))
    })
}

fn line_of(text: &str, offset: Option<usize>) -> String {
    offset
        .map(|o| {
            let newlines = text.as_bytes()[..o.min(text.len())]
                .iter()
                .filter(|b| **b == b'\n')
                .count();
            format!(" (line {})", newlines + 1)
        })
        .unwrap_or_default()
}

/// The settings by precedence: flag, environment, file, default.
pub fn resolve(
    flag_base_url: Option<&str>,
    flag_api_key: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    file: Option<&FileConfig>,
) -> Config {
    let pick = |flag: Option<&str>, var: &str, from_file: Option<&String>| {
        let set = |v: &String| !v.trim().is_empty();
        if let Some(v) = flag.map(str::to_owned).filter(set) {
            Some((v, Source::Flag))
        } else if let Some(v) = env(var).filter(set) {
            Some((v, Source::Env))
        } else {
            from_file.cloned().filter(set).map(|v| (v, Source::File))
        }
    };
    let (base_url, base_url_from) = pick(
        flag_base_url,
        "KILN_BASE_URL",
        file.and_then(|f| f.base_url.as_ref()),
    )
    .unwrap_or_else(|| (DEFAULT_BASE_URL.to_owned(), Source::Default));
    let api_key = pick(
        flag_api_key,
        "KILN_API_KEY",
        file.and_then(|f| f.api_key.as_ref()),
    );
    Config {
        base_url: base_url.trim().trim_end_matches('/').to_owned(),
        api_key: api_key.as_ref().map(|(k, _)| k.trim().to_owned()),
        base_url_from,
        api_key_from: api_key.map(|(_, from)| from),
    }
}

/// Sets `name` (`api_key` or `base_url`) in the config file at `path`, keeping the
/// other setting; the file is created readable by its owner only (it holds a key).
pub fn set_in_file(path: &Path, name: &str, value: &str) -> Result<(), CliError> {
    let mut file = load_file(path)?.unwrap_or_default();
    match name {
        "api_key" => file.api_key = Some(value.to_owned()),
        "base_url" => file.base_url = Some(value.trim_end_matches('/').to_owned()),
        other => {
            return Err(CliError::Usage(format!(
                "unknown setting {other:?}: want api_key or base_url"
            )))
        }
    }
    let text = toml::to_string(&file)
        .map_err(|e| CliError::Other(format!("cannot write the config: {e}")))?;
    let write_err =
        |e: std::io::Error| CliError::Other(format!("cannot write {}: {e}", path.display()));
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(write_err)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path).map_err(write_err)?;
    std::io::Write::write_all(&mut f, text.as_bytes()).map_err(write_err)
}

/// A key as the API lists it: `sk-trial-…ab12`. The secret is never shown.
pub fn masked(key: &str) -> String {
    let kind_end = key
        .strip_prefix("sk-")
        .and_then(|rest| rest.find('-'))
        .map(|i| i + 4);
    let tail: String = key
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    match kind_end {
        Some(end) if key.len() > end + 8 => format!("{}…{tail}", &key[..end]),
        _ => "…".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn file(key: &str, url: &str) -> FileConfig {
        FileConfig {
            api_key: Some(key.into()),
            base_url: Some(url.into()),
        }
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let env = env_of(&[
            ("KILN_API_KEY", "sk-env"),
            ("KILN_BASE_URL", "https://env.example"),
        ]);
        let f = file("sk-file", "https://file.example");
        let c = resolve(
            Some("https://flag.example/"),
            Some("sk-flag"),
            &env,
            Some(&f),
        );
        assert_eq!(c.base_url, "https://flag.example");
        assert_eq!(c.api_key.as_deref(), Some("sk-flag"));

        assert_eq!(
            (c.base_url_from, c.api_key_from),
            (Source::Flag, Some(Source::Flag))
        );

        let c = resolve(None, None, &env, Some(&f));
        assert_eq!(c.base_url, "https://env.example");
        assert_eq!(c.api_key.as_deref(), Some("sk-env"));
        assert_eq!(
            (c.base_url_from, c.api_key_from),
            (Source::Env, Some(Source::Env))
        );

        let c = resolve(None, None, &env_of(&[]), Some(&f));
        assert_eq!(c.base_url, "https://file.example");
        assert_eq!(c.api_key.as_deref(), Some("sk-file"));
        assert_eq!(
            (c.base_url_from, c.api_key_from),
            (Source::File, Some(Source::File))
        );
    }

    #[test]
    fn defaults_and_empty_values() {
        let c = resolve(None, None, &env_of(&[]), None);
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert_eq!(c.api_key, None);
        assert_eq!((c.base_url_from, c.api_key_from), (Source::Default, None));
        // An empty variable or flag counts as unset: the next source is used.
        let env = env_of(&[("KILN_API_KEY", ""), ("KILN_BASE_URL", "")]);
        let c = resolve(Some(""), None, &env, Some(&file("sk-file", "")));
        assert_eq!(c.base_url, DEFAULT_BASE_URL);
        assert_eq!(c.api_key.as_deref(), Some("sk-file"));
    }

    #[test]
    fn the_config_file_path() {
        let p = config_path(&env_of(&[
            ("KILN_CONFIG", "/etc/kiln.toml"),
            ("XDG_CONFIG_HOME", "/xdg"),
            ("HOME", "/home/ada"),
        ]));
        assert_eq!(p, Some(PathBuf::from("/etc/kiln.toml")));
        let p = config_path(&env_of(&[
            ("XDG_CONFIG_HOME", "/xdg"),
            ("HOME", "/home/ada"),
        ]));
        assert_eq!(p, Some(PathBuf::from("/xdg/kiln/config.toml")));
        let p = config_path(&env_of(&[
            ("XDG_CONFIG_HOME", "relative"),
            ("HOME", "/home/ada"),
        ]));
        assert_eq!(p, Some(PathBuf::from("/home/ada/.config/kiln/config.toml")));
        assert_eq!(config_path(&env_of(&[])), None);
    }

    #[test]
    fn parsing_the_file() {
        let f = parse_file("api_key = \"sk-test-abc\"\nbase_url = \"https://api.kiln.example\"\n")
            .unwrap();
        assert_eq!(f, file("sk-test-abc", "https://api.kiln.example"));
        assert_eq!(parse_file("").unwrap(), FileConfig::default());
        let e = parse_file("api_key = \"a\"\napi_kye = \"b\"\n").unwrap_err();
        assert!(e.contains("api_kye") && e.contains("line 2"), "{e}");
        let e = parse_file("api_key = 3\n").unwrap_err();
        assert!(e.contains("line 1"), "{e}");
    }

    #[test]
    fn setting_values_in_the_file() {
        let dir = std::env::temp_dir().join(format!("kiln-cli-config-{}", std::process::id()));
        let path = dir.join("kiln/config.toml");
        let _ = std::fs::remove_dir_all(&dir);
        set_in_file(&path, "base_url", "https://kiln.example/").unwrap();
        set_in_file(&path, "api_key", "sk-test-abc").unwrap();
        let f = load_file(&path).unwrap().unwrap();
        assert_eq!(f, file("sk-test-abc", "https://kiln.example"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{mode:o}");
        }
        assert!(matches!(
            set_in_file(&path, "colour", "blue"),
            Err(CliError::Usage(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn keys_are_masked() {
        let key = format!("sk-trial-{}", "a".repeat(44) + "ab12");
        assert_eq!(masked(&key), "sk-trial-…ab12");
        assert_eq!(masked("sk-test-short"), "…");
        assert_eq!(masked("nonsense-key-of-some-length"), "…");
    }

    #[test]
    fn a_missing_file_is_no_config() {
        let missing = std::env::temp_dir().join("kiln-cli-no-such-dir/config.toml");
        assert_eq!(load_file(&missing).unwrap(), None);
    }
}
