//! The SQLite database: counters, blocks, events and the ledger of processed
//! messages. Open = pragmas + migrations; one transaction per public method.
//!
//! (Skeleton: the signatures are the contract with `ops`; the bodies land with
//! the counting-database issue.)

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::Config;
use crate::exit::{Exit, ExitCode};
use crate::message::{Classification, Kind};
use crate::report::{AddressStats, Stats};
use crate::time::Timestamp;

/// A database problem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file or its directory could not be opened or created.
    #[error("cannot open database {path}: {source}")]
    Open { path: PathBuf, source: rusqlite::Error },
    /// Another run holds the database.
    #[error("database {path} is in use by another bouncectl run (waited {waited:?})")]
    Locked { path: PathBuf, waited: Duration },
    /// Any other SQLite failure.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// File-system failure around the database (lock file, directory).
    #[error("database {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
}

impl ExitCode for Error {
    fn exit(&self) -> Exit {
        match self {
            Error::Locked { .. } => Exit::TempFail,
            _ => Exit::IoErr,
        }
    }
}

/// A message's content fingerprint: SHA-256 of its bytes with CRLF folded to
/// LF, so the same message read from a POP3 server and from a file matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Fingerprints raw message bytes (CRLF folded to LF).
    pub fn of(raw: &[u8]) -> Fingerprint {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        let mut rest = raw;
        while let Some(i) = rest.windows(2).position(|w| w == b"\r\n") {
            h.update(&rest[..i]);
            rest = &rest[i + 1..];
        }
        h.update(rest);
        Fingerprint(h.finalize().into())
    }

    /// Lowercase hex.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// One message to record.
#[derive(Debug, Clone, Copy)]
pub struct Item<'a> {
    /// POP3 UIDL / IMAP `UIDVALIDITY/UID` qualified by mailbox, when the
    /// message came from a server.
    pub source_uid: Option<&'a str>,
    pub fingerprint: Fingerprint,
    pub classification: &'a Classification,
}

/// What recording one message did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The ledger had it already: nothing was counted.
    pub already_seen: bool,
    /// Counters incremented (one per recipient per site reached).
    pub counted: u32,
    /// (site, address) pairs that this message blocked.
    pub newly_blocked: Vec<(String, String)>,
}

/// What `reset` applies to.
#[derive(Debug, Clone)]
pub enum ResetTarget {
    /// These addresses.
    Addresses(Vec<String>),
    /// Everything (`--all --yes`).
    All,
    /// Counters whose last event is older than this many days, and their events.
    OlderThanDays(u32),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_ignores_crlf_versus_lf() {
        assert_eq!(Fingerprint::of(b"A: b\r\n\r\nbody\r\n"), Fingerprint::of(b"A: b\n\nbody\n"));
        assert_ne!(Fingerprint::of(b"A: b\n"), Fingerprint::of(b"A: c\n"));
        assert_eq!(Fingerprint::of(b"").hex().len(), 64);
    }
}

/// The open database.
pub struct Store {
    #[allow(dead_code)]
    conn: rusqlite::Connection,
}

impl Store {
    /// Opens (creating file and parent directory if needed) and migrates.
    pub fn open(path: &Path) -> Result<Store, Error> {
        let conn = rusqlite::Connection::open(path)
            .map_err(|source| Error::Open { path: path.to_path_buf(), source })?;
        Ok(Store { conn })
    }

    /// The ledger's kind for a message already processed under this source
    /// identity, so a server copy can be skipped without fetching it.
    pub fn lookup_uid(&self, site: &str, source_uid: &str) -> Result<Option<Kind>, Error> {
        let _ = (site, source_uid);
        Ok(None)
    }

    /// Records a batch in one transaction: ledger, counters, events, blocks.
    /// `site` is where the batch came from; `config` gives every site's rules.
    pub fn record_batch(
        &mut self,
        config: &Config,
        site: &str,
        items: &[Item<'_>],
        now: Timestamp,
    ) -> Result<Vec<Outcome>, Error> {
        let _ = (config, site, now);
        Ok(items.iter().map(|_| Outcome::default()).collect())
    }

    /// Totals per site, reason and domain.
    pub fn stats(&self) -> Result<Stats, Error> {
        Ok(Stats::default())
    }

    /// One address in detail with its events.
    pub fn address(&self, address: &str) -> Result<AddressStats, Error> {
        Ok(AddressStats { address: address.into(), ..Default::default() })
    }

    /// Blocked addresses, sorted, optionally for one site.
    pub fn blocked(&self, site: Option<&str>) -> Result<Vec<String>, Error> {
        let _ = site;
        Ok(Vec::new())
    }

    /// Blocks addresses by hand; returns how many were newly blocked.
    pub fn block(&mut self, site: &str, addresses: &[String], reason: &str, now: Timestamp) -> Result<u64, Error> {
        let _ = (site, addresses, reason, now);
        Ok(0)
    }

    /// Zeroes counters and lifts blocks; `site = None` means every site.
    /// Returns how many (site, address) rows changed.
    pub fn reset(&mut self, site: Option<&str>, target: &ResetTarget, now: Timestamp) -> Result<u64, Error> {
        let _ = (site, target, now);
        Ok(0)
    }
}

/// Holds the one-run-at-a-time lock of a database (a `<db>.lock` file with an
/// OS lock) until dropped.
pub struct RunLock {
    #[allow(dead_code)]
    file: std::fs::File,
}

impl RunLock {
    /// Takes the lock, waiting up to `wait`; `Error::Locked` after that.
    pub fn acquire(db: &Path, wait: Duration) -> Result<RunLock, Error> {
        let _ = wait;
        let mut p = db.as_os_str().to_owned();
        p.push(".lock");
        let path = PathBuf::from(p);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| Error::Io { path, source })?;
        Ok(RunLock { file })
    }
}
