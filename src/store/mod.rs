//! The SQLite database: counters, blocks, events and the ledger of processed
//! messages. Open = pragmas + migrations; one transaction per public method,
//! except the recording transaction (`record` ... `commit`) that `check`
//! keeps open across batches.
//!
//! - [`schema`]: connection settings and the append-only migrations.
//! - `record`: `record_items`, the write path of `check` (policy applied
//!   per recipient and site), behind [`Store::record`].
//! - `query`: `stats`, one address, the block list (read only).
//! - `admin`: `block` and `reset` by hand.
//! - `totals`: the aggregate tables behind `stats`, updated by the writers.
//! - `lock`: [`RunLock`], one run at a time per database.
//!
//! Public methods own their transaction (or the recording one); the helpers
//! in the submodules take a `&Connection` (a `Transaction` derefs to one), so
//! a failure anywhere rolls the whole operation back.

mod admin;
mod lock;
mod query;
mod record;
pub mod schema;
#[cfg(test)]
mod tests;
mod totals;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags, TransactionBehavior};

use crate::config::Config;
use crate::exit::{Exit, ExitCode};
use crate::message::{Classification, Kind};
use crate::report::{AddressStats, Stats};
use crate::time::Timestamp;

pub use lock::RunLock;

/// A database problem.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file or its directory could not be opened or created.
    #[error("cannot open database {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// Another run holds the database.
    #[error("database {path} is in use by another bouncectl run (waited {waited:?})")]
    Locked { path: PathBuf, waited: Duration },
    /// Any other SQLite failure.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// An SQLite failure on an open database.
    #[error("database {path}: {source}")]
    Query {
        path: PathBuf,
        source: rusqlite::Error,
    },
    /// A writer opened a file it may not write (permissions, read-only
    /// mount): refused at open, before anything is fetched or classified.
    #[error("database {path} is read-only")]
    ReadOnly { path: PathBuf },
    /// File-system failure around the database (lock file, directory).
    #[error("database {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The database's directory could not be created.
    #[error("cannot create database directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The `<db>.lock` file could not be opened or locked.
    #[error("cannot lock database with {path}: {source}")]
    LockFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file was written by a newer bouncectl (or is not ours).
    #[error(
        "database {path} has schema version {found}, this bouncectl understands up to {supported}: \
         use a newer bouncectl"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
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
/// LF and without a leading mbox `From ` separator line, so the same message
/// read from a POP3 server, a Maildir file, an mbox or stdin matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(pub [u8; 32]);

impl Fingerprint {
    /// Fingerprints raw message bytes (CRLF folded to LF, a leading
    /// `From ` line skipped: it is the mbox envelope, never a header field,
    /// which needs a colon).
    pub fn of(raw: &[u8]) -> Fingerprint {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        let mut rest = raw;
        if rest.starts_with(b"From ") {
            rest = memchr::memchr(b'\n', rest).map_or(&[][..], |i| &rest[i + 1..]);
        }
        // Hash the runs between CRs that end a line (SIMD search).
        let mut from = 0;
        for i in memchr::memmem::find_iter(rest, b"\r\n") {
            h.update(&rest[from..i]);
            from = i + 1;
        }
        h.update(&rest[from..]);
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
    /// Counters whose last event is older than this many days, and their
    /// events. Blocks made by a complaint or by hand are kept: they are not
    /// counts that go stale.
    OlderThanDays(u32),
}

/// How many messages `check` records in one transaction at most. Each
/// commit rewrites every page its transaction dirtied, and a bounce dirties
/// a leaf of two random-key trees (ledger, counters), so pages per message
/// fall as transactions grow: 10,000 per commit write about a fifth of the
/// bytes that 1,000 do (`cargo bench --bench store`).
pub const TRANSACTION_MESSAGES: usize = 10_000;

/// [`TRANSACTION_MESSAGES`], or the hidden `BOUNCECTL_TEST_TRANSACTION_MESSAGES`
/// when set, so that end-to-end tests can end a transaction mid-run
/// without a mailbox of ten thousand messages.
pub fn transaction_messages() -> usize {
    std::env::var("BOUNCECTL_TEST_TRANSACTION_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(TRANSACTION_MESSAGES)
}

/// How long `check` keeps a recording transaction open at most: on a slow
/// server, reports (printed at the commit) and deletions (only after it)
/// still come every few seconds, and another writer (`block` by hand)
/// waits no longer than this for the lock.
pub const TRANSACTION_TIME: Duration = Duration::from_secs(5);

/// The open database.
pub struct Store {
    conn: Connection,
    /// For error messages.
    path: PathBuf,
    /// [`Store::sync`] has made the WAL file's directory entry durable.
    wal_dir_synced: bool,
    /// A recording transaction is open ([`Store::record`]).
    recording: bool,
    /// Its changes to the aggregate tables, applied once at its commit: a
    /// busy domain's row is then rewritten once per transaction, not once
    /// per batch.
    delta: totals::Delta,
}

impl Store {
    /// Opens (creating file and parent directory if needed) and migrates.
    pub fn open(path: &Path) -> Result<Store, Error> {
        ensure_parent(path)?;
        let store = Store::open_with(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
        )?;
        // SQLite silently opens a write-protected file read-only; a writer
        // would only find out at its first commit.
        if store.conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
            return Err(Error::ReadOnly {
                path: path.to_path_buf(),
            });
        }
        Ok(store)
    }

    /// Opens a database only if the file exists (`stats` must not create
    /// one as a side effect of looking): `None` when there is none yet.
    pub fn open_existing(path: &Path) -> Result<Option<Store>, Error> {
        match std::fs::metadata(path) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(Error::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        }
        // READ_WRITE without CREATE: a file the user may not write is opened
        // read-only by SQLite, which is all `stats` needs.
        Store::open_with(path, OpenFlags::SQLITE_OPEN_READ_WRITE).map(Some)
    }

    fn open_with(path: &Path, flags: OpenFlags) -> Result<Store, Error> {
        let open_err = |source| Error::Open {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .map_err(open_err)?;
        schema::configure(&conn).map_err(open_err)?;
        schema::migrate(&mut conn, path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            wal_dir_synced: false,
            recording: false,
            delta: totals::Delta::default(),
        })
    }

    /// Names the database in an SQLite error.
    fn err(&self, source: rusqlite::Error) -> Error {
        Error::Query {
            path: self.path.clone(),
            source,
        }
    }

    /// Runs `f` in an immediate (write) transaction and commits. An open
    /// recording transaction is committed first.
    fn write<T>(&mut self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, Error> {
        self.commit()?;
        let run = |conn: &mut Connection| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let out = f(&tx)?;
            tx.commit()?;
            Ok(out)
        };
        run(&mut self.conn).map_err(|e| self.err(e))
    }

    /// Runs `f` in a read transaction: one consistent snapshot even while a
    /// `check` commits.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, Error> {
        if self.recording {
            // Inside the open recording transaction, which sees its own
            // writes (but not its aggregates before the commit).
            return f(&self.conn).map_err(|e| self.err(e));
        }
        let run = || {
            let tx = self.conn.unchecked_transaction()?;
            let out = f(&tx)?;
            tx.finish()?;
            Ok(out)
        };
        run().map_err(|e| self.err(e))
    }

    /// The ledger's kind for a message already processed under this source
    /// identity, so a server copy can be skipped without fetching it.
    pub fn lookup_uid(&self, site: &str, source_uid: &str) -> Result<Option<Kind>, Error> {
        record::lookup_uid(&self.conn, site, source_uid).map_err(|e| self.err(e))
    }

    /// Records a batch in one transaction of its own: [`Store::record`],
    /// then [`Store::commit`].
    pub fn record_batch(
        &mut self,
        config: &Config,
        site: &str,
        items: &[Item<'_>],
        now: Timestamp,
    ) -> Result<Vec<Outcome>, Error> {
        let outcomes = self.record(config, site, items, now)?;
        self.commit()?;
        Ok(outcomes)
    }

    /// Records a batch (ledger, counters, events, blocks) in the recording
    /// transaction, beginning one if none is open. `site` is where the
    /// batch came from; `config` gives every site's rules.
    ///
    /// A message whose fingerprint is in the ledger (or earlier in the same
    /// transaction) is `already_seen` and changes nothing but adding its
    /// source identity. Nothing is visible to other connections, or
    /// durable, until [`Store::commit`]: `check` lets one transaction span
    /// several fetch batches ([`TRANSACTION_MESSAGES`]), because every
    /// commit rewrites each B-tree page it touched. An error rolls the
    /// whole transaction back, earlier batches included, and a crash before
    /// the commit leaves the database as it was.
    pub fn record(
        &mut self,
        config: &Config,
        site: &str,
        items: &[Item<'_>],
        now: Timestamp,
    ) -> Result<Vec<Outcome>, Error> {
        if !self.recording {
            self.conn
                .execute_batch("BEGIN IMMEDIATE")
                .map_err(|e| self.err(e))?;
            self.recording = true;
        }
        record::record_items(&self.conn, config, site, items, now, &mut self.delta).map_err(|e| {
            self.rollback();
            self.err(e)
        })
    }

    /// Commits the recording transaction, if one is open. On failure it is
    /// rolled back: nothing it recorded is kept.
    pub fn commit(&mut self) -> Result<(), Error> {
        if !self.recording {
            return Ok(());
        }
        let delta = std::mem::take(&mut self.delta);
        delta
            .apply(&self.conn)
            .and_then(|()| self.conn.execute_batch("COMMIT"))
            .map_err(|e| {
                self.rollback();
                self.err(e)
            })?;
        self.recording = false;
        Ok(())
    }

    /// Abandons the recording transaction, if one is open.
    pub fn rollback(&mut self) {
        self.delta = totals::Delta::default();
        if std::mem::take(&mut self.recording) {
            // SQLite may already have rolled back (e.g. after SQLITE_FULL);
            // a failing ROLLBACK then changes nothing, and neither would a
            // retry.
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }

    /// A recording transaction is open: what it recorded is neither
    /// visible to others nor durable yet.
    pub fn in_transaction(&self) -> bool {
        self.recording
    }

    /// Makes every committed transaction durable (on disk, surviving a power
    /// loss). `check` calls it after a commit and before deleting
    /// anything from a server (SPEC 5.1: nothing lost); nothing else needs it.
    ///
    /// Commits run with `synchronous = NORMAL` (see [`schema::configure`]):
    /// their pages are written to the `-wal` file but not fsynced. Every
    /// committed page is either still in that file or was copied to the
    /// database file by a checkpoint, and in `NORMAL` mode SQLite fsyncs
    /// the database file before a checkpoint counts as done and before the
    /// WAL is reused or removed. So one fsync of the WAL file makes every
    /// commit so far durable, whichever connection or earlier run made it.
    /// Its directory entry is synced once per `Store` too: the WAL may have
    /// been created by this connection, and it is never removed while a
    /// connection (this one) is open.
    ///
    /// Not a checkpoint: copying the pages into the database file would
    /// write them a second time per batch, and a checkpoint does not fsync
    /// frames that a reader (the mailer) still keeps from being copied.
    /// The WAL is fsynced through a second descriptor: SQLite holds no
    /// POSIX lock on it (WAL locks live in `-shm`), so closing that
    /// descriptor releases none of SQLite's locks.
    pub fn sync(&mut self) -> Result<(), Error> {
        debug_assert!(!self.recording, "sync makes commits durable: commit first");
        let db = self
            .conn
            .path()
            .filter(|p| !p.is_empty())
            .map_or_else(|| self.path.clone(), PathBuf::from);
        let mut wal = db.clone().into_os_string();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let io_err = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        match std::fs::File::open(&wal) {
            Ok(file) => file.sync_data().map_err(io_err(&wal))?,
            // No WAL: everything committed is in the database file, which
            // the checkpoint that emptied the WAL fsynced.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(Error::Io { path: wal, source }),
        }
        if !self.wal_dir_synced {
            sync_dir(&wal).map_err(io_err(&wal))?;
            self.wal_dir_synced = true;
        }
        Ok(())
    }

    /// Totals per site, reason and domain.
    pub fn stats(&self) -> Result<Stats, Error> {
        self.stats_for(None)
    }

    /// Totals, limited to one site when `site` is given.
    pub fn stats_for(&self, site: Option<&str>) -> Result<Stats, Error> {
        self.read(|tx| query::stats(tx, site))
    }

    /// One address in detail with its events.
    pub fn address(&self, address: &str) -> Result<AddressStats, Error> {
        self.address_for(address, None)
    }

    /// One address in detail, limited to one site when `site` is given.
    pub fn address_for(&self, address: &str, site: Option<&str>) -> Result<AddressStats, Error> {
        self.read(|tx| query::address(tx, address, site))
    }

    /// Blocked addresses, sorted, optionally for one site.
    pub fn blocked(&self, site: Option<&str>) -> Result<Vec<String>, Error> {
        self.read(|tx| query::blocked(tx, site))
    }

    /// Blocks addresses by hand; returns how many were newly blocked.
    /// An address blocked already keeps its original reason and time.
    pub fn block(
        &mut self,
        site: &str,
        addresses: &[String],
        reason: &str,
        now: Timestamp,
    ) -> Result<u64, Error> {
        self.write(|tx| admin::block(tx, site, addresses, reason, now))
    }

    /// Zeroes counters and lifts blocks; `site = None` means every site.
    /// Returns how many (site, address) rows changed.
    ///
    /// A reset address is forgotten: its counter row and its events go, as if
    /// it had never bounced. The ledger stays, so the old messages are still
    /// not counted again.
    pub fn reset(
        &mut self,
        site: Option<&str>,
        target: &ResetTarget,
        now: Timestamp,
    ) -> Result<u64, Error> {
        self.write(|tx| admin::reset(tx, site, target, now))
    }

    /// Recomputes the aggregate tables behind `stats` from the counters and
    /// events, in one transaction. Never needed in normal operation (every
    /// writer keeps them right); for repairs and after bulk loads.
    pub fn rebuild_totals(&mut self) -> Result<(), Error> {
        self.write(totals::rebuild)
    }
}

/// Fsyncs the directory holding `file`, so that a newly created `file`
/// survives a power loss (Unix; elsewhere there is no directory handle to
/// sync and file creation is journalled by the file system).
fn sync_dir(file: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let dir = match file.parent().filter(|d| !d.as_os_str().is_empty()) {
            Some(d) => d,
            None => Path::new("."),
        };
        std::fs::File::open(dir)?.sync_all()
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        Ok(())
    }
}

/// Creates the database's directory if needed, with a clear error.
pub(crate) fn ensure_parent(db: &Path) -> Result<(), Error> {
    match db.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) if !dir.is_dir() => std::fs::create_dir_all(dir).map_err(|source| Error::Dir {
            path: dir.to_path_buf(),
            source,
        }),
        _ => Ok(()),
    }
}
