//! The TOML configuration (SPEC section 2): types, defaults, validation.
//!
//! (Skeleton: the types are the contract between the layers; loading and
//! validation are completed with the counting-database issue.)

use std::path::{Path, PathBuf};

use crate::exit::{Exit, ExitCode};

/// A configuration problem: always names the file, the key and what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    /// The file is not valid or a key has a bad value.
    #[error("config {path}: {key}: {problem}")]
    Invalid { path: PathBuf, key: String, problem: String },
}

impl ExitCode for Error {
    fn exit(&self) -> Exit {
        Exit::Config
    }
}

/// The whole configuration, with defaults filled in.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from; `None` for the built-in default.
    pub path: Option<PathBuf>,
    /// Database path from the file (`--db`/`BOUNCECTL_DB` override it).
    pub database: Option<PathBuf>,
    /// One shared counter per address across all sites (SPEC section 4).
    pub block_globally: bool,
    /// At least one site; the built-in default has one named `default`.
    pub sites: Vec<Site>,
    /// Problems worth a line on stderr that do not stop the run (e.g. a file
    /// holding a password is readable by others).
    pub warnings: Vec<String>,
}

/// One mailing-list site.
#[derive(Debug, Clone)]
pub struct Site {
    /// Unique name, used in the database and with `--site`.
    pub name: String,
    /// Block when the counter reaches this; 0 = never block automatically.
    pub bounce_limit: u32,
    /// A complaint blocks the address at once (default true).
    pub block_on_complaint: bool,
    /// Delete `not_bounce` mail from the server too (default false).
    pub delete_unrecognized: bool,
    /// VERP pattern on the envelope recipient.
    pub verp: Option<crate::message::Verp>,
    /// Where this site's bounces arrive; `None` = local sources only.
    pub mailbox: Option<Mailbox>,
}

/// POP3 or IMAP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Pop3,
    Imap,
}

/// How TLS is used on the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    /// TLS from the first byte (POP3S 995, IMAPS 993).
    Implicit,
    /// Plain connection upgraded with STLS / STARTTLS; refused if not offered.
    StartTls,
    /// No TLS at all.
    None,
}

/// Authentication method (SPEC section 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// The strongest method offered that sends no plaintext password,
    /// else a plaintext method inside TLS.
    Auto,
    /// POP3 USER/PASS or IMAP LOGIN.
    User,
    /// POP3 APOP.
    Apop,
    /// SASL PLAIN.
    Plain,
    /// SASL LOGIN.
    Login,
    /// SASL CRAM-MD5.
    CramMd5,
    /// SASL XOAUTH2 with a token from `oauth2_token_command`.
    XOAuth2,
}

/// Where the secret comes from. Never the command line. `Debug` never shows
/// an inline password.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// `password`: written in the config file itself (draws a warning when
    /// the file is readable by group or others).
    Inline(String),
    /// `password_env`: an environment variable name.
    Env(String),
    /// `password_file`: the first line of a file.
    File(PathBuf),
    /// `password_command`: a shell command whose first output line is the password.
    Command(String),
    /// `oauth2_token_command`: a shell command printing an OAuth2 access token.
    OAuth2Command(String),
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Secret::Inline(_) => f.write_str("Inline(<redacted>)"),
            Secret::Env(v) => f.debug_tuple("Env").field(v).finish(),
            Secret::File(p) => f.debug_tuple("File").field(p).finish(),
            Secret::Command(c) => f.debug_tuple("Command").field(c).finish(),
            Secret::OAuth2Command(c) => f.debug_tuple("OAuth2Command").field(c).finish(),
        }
    }
}

/// What to do with a recorded message on the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum After {
    /// Delete it (POP3 DELE; IMAP \Deleted + UID EXPUNGE / EXPUNGE).
    Delete,
    /// Leave it; the ledger keeps it from being counted again.
    Keep,
    /// IMAP only: move it to this folder.
    Move(String),
}

/// A site's mailbox.
#[derive(Debug, Clone)]
pub struct Mailbox {
    pub protocol: Protocol,
    pub host: String,
    /// Resolved: the default follows from protocol and tls.
    pub port: u16,
    pub tls: Tls,
    pub auth: Auth,
    pub username: String,
    /// `None` only when no secret was configured (an error at connect time).
    pub secret: Option<Secret>,
    /// Extra trust anchor (PEM).
    pub ca_file: Option<PathBuf>,
    /// IMAP folder (default INBOX).
    pub folder: String,
    pub after: After,
    /// Allow a plaintext password over an unencrypted connection.
    pub allow_plaintext_auth: bool,
    /// Connect, read and write timeout in seconds (default 60).
    pub timeout_secs: u64,
}

impl Config {
    /// The built-in configuration used when no file exists: one site named
    /// `default` with limit 5 and no mailbox.
    pub fn builtin() -> Config {
        Config {
            path: None,
            database: None,
            block_globally: false,
            sites: vec![Site {
                name: "default".into(),
                bounce_limit: 5,
                block_on_complaint: true,
                delete_unrecognized: false,
                verp: None,
                mailbox: None,
            }],
            warnings: Vec::new(),
        }
    }

    /// Parses and validates a configuration file's text.
    pub fn parse(path: &Path, text: &str) -> Result<Config, Error> {
        let _ = text;
        Err(Error::Invalid {
            path: path.to_path_buf(),
            key: String::new(),
            problem: "configuration files are not supported yet".into(),
        })
    }

    /// Looks a site up by name.
    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.name == name)
    }
}

/// The config file to read when `--config` is not given:
/// `$XDG_CONFIG_HOME/bouncectl/config.toml` (XDG_CONFIG_HOME defaulting to
/// `~/.config`), else `/etc/bouncectl/config.toml`, else none.
pub fn default_path() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    let candidates = xdg.map(|d| d.join("bouncectl/config.toml")).into_iter().chain([PathBuf::from("/etc/bouncectl/config.toml")]);
    candidates.into_iter().find(|p| p.exists())
}

/// Loads the configuration: the explicit file (which must exist), else the
/// default file when there is one, else [`Config::builtin`].
pub fn load(explicit: Option<&Path>) -> Result<Config, Error> {
    let path = match explicit {
        Some(p) => p.to_path_buf(),
        None => match default_path() {
            Some(p) => p,
            None => return Ok(Config::builtin()),
        },
    };
    let text = std::fs::read_to_string(&path).map_err(|source| Error::Read { path: path.clone(), source })?;
    Config::parse(&path, &text)
}
