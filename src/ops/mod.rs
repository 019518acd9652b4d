//! One function per subcommand: options in, a report out. No clap here; the
//! binary turns arguments into these option structs.

pub mod admin;
pub mod check;
mod parallel;
pub mod stats;

use std::path::PathBuf;

use crate::config::{Config, Site};
use crate::exit::{Exit, ExitCode};

/// An error of a whole operation (per-message and per-site problems are
/// reported through [`check::Observer`] instead and only change the exit code).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Store(#[from] crate::store::Error),
    #[error(transparent)]
    Config(#[from] crate::config::Error),
    #[error(transparent)]
    Local(#[from] crate::mailbox::local::Error),
    /// The command line asked for something inconsistent.
    #[error("{0}")]
    Usage(String),
}

impl ExitCode for Error {
    fn exit(&self) -> Exit {
        match self {
            Error::Store(e) => e.exit(),
            Error::Config(e) => e.exit(),
            Error::Local(e) => e.exit(),
            Error::Usage(_) => Exit::Usage,
        }
    }
}

/// Where the database lives: `--db`/`BOUNCECTL_DB`, else the config file's
/// `database`, else `$XDG_DATA_HOME/bouncectl/bounces.db` (XDG_DATA_HOME
/// defaulting to `~/.local/share`).
pub fn database_path(cli: Option<PathBuf>, config: &Config) -> PathBuf {
    if let Some(p) = cli.or_else(|| config.database.clone()) {
        return p;
    }
    let data = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data.join("bouncectl").join("bounces.db")
}

/// The site a local-source command works on: `--site NAME`, else the only
/// site; with several sites and no `--site`, a usage error.
pub fn pick_site<'c>(config: &'c Config, name: Option<&str>) -> Result<&'c Site, Error> {
    match name {
        Some(n) => config.site(n).ok_or_else(|| {
            let known: Vec<&str> = config.sites.iter().map(|s| s.name.as_str()).collect();
            Error::Usage(format!(
                "unknown site '{n}' (configured: {})",
                known.join(", ")
            ))
        }),
        None if config.sites.len() == 1 => Ok(&config.sites[0]),
        None => Err(Error::Usage(format!(
            "{} sites are configured; name one with --site",
            config.sites.len()
        ))),
    }
}
