//! Connection settings and the schema's migrations.
//!
//! Migrations are an append-only list keyed by `PRAGMA user_version` (the
//! habit of cargo's `util/sqlite.rs`): entry N takes a database from version
//! N to N+1. Never edit a shipped entry; add a new one. All pending entries
//! run in one transaction at open, so a database is never half-migrated.

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::Error;

/// How long a statement waits for another connection's write lock (the
/// mailer reading the block list, `stats` in another terminal) before
/// failing with "database is locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// The schema, one entry per version.
///
/// Sizing for a million addresses: the write path of `check` touches, per
/// counted recipient, one leaf each of `ledger` and `counters` (random
/// keys) plus the append-only `events` and a few hot aggregate rows. Every
/// random-key tree costs about one dirty 4 KiB page per bounce in every
/// commit's WAL writes, so there is no other index on that path: an
/// address's events are a chain (`counters.last_event`, then `events.prev`)
/// rather than an index by address, which was a third random tree and a
/// third of the bytes written (version 2). `stats ADDRESS` probes
/// `counters` by primary key per site (sites come from `site_totals`) and
/// follows the chain by rowid; `--blocked` reads a partial index of blocked
/// rows only; `stats` reads the aggregate tables, which `record`, `admin`
/// and `totals` keep equal to a `GROUP BY` over `counters` and `events`
/// inside the same transactions, so its cost does not grow with the number
/// of addresses.
pub const MIGRATIONS: &[&str] = &[
    // 1: counters, events, ledger, aggregates.
    r#"
    CREATE TABLE counters (
        site         TEXT    NOT NULL,
        address      TEXT    NOT NULL,          -- lowercased
        domain       TEXT    NOT NULL,          -- after the last '@'
        bounces      INTEGER NOT NULL DEFAULT 0,
        last_at      INTEGER,                   -- time of the last event
        blocked_at   INTEGER,                   -- NULL = not blocked
        block_reason TEXT,
        blocked_by   TEXT,                      -- limit | complaint | manual
        PRIMARY KEY (site, address)
    ) WITHOUT ROWID;
    CREATE INDEX counters_blocked ON counters (site, address) WHERE blocked_at IS NOT NULL;

    CREATE TABLE events (
        id          INTEGER PRIMARY KEY,
        site        TEXT    NOT NULL,
        address     TEXT    NOT NULL,
        reason      TEXT    NOT NULL,
        status      TEXT,
        diagnostic  TEXT,
        at          INTEGER NOT NULL,
        fingerprint BLOB    NOT NULL
    );
    CREATE INDEX events_address ON events (address, site);

    -- Every processed message, whatever its kind: what makes a second run
    -- count nothing twice and leave non-bounces unparsed.
    CREATE TABLE ledger (
        fingerprint BLOB    PRIMARY KEY,        -- SHA-256 of the content
        kind        TEXT    NOT NULL,
        site        TEXT    NOT NULL,           -- where it was first recorded
        at          INTEGER NOT NULL
    ) WITHOUT ROWID;
    -- Server identities (POP3 UIDL, IMAP UIDVALIDITY/UID) of ledger entries,
    -- scoped by site, so a known message is skipped without fetching it.
    CREATE TABLE ledger_uids (
        site        TEXT NOT NULL,
        source_uid  TEXT NOT NULL,
        fingerprint BLOB NOT NULL REFERENCES ledger (fingerprint) ON DELETE CASCADE,
        PRIMARY KEY (site, source_uid)
    ) WITHOUT ROWID;

    -- Aggregates for `stats`. A site's row stays (at zero) once it exists,
    -- so `site_totals` also lists every site that has counters.
    CREATE TABLE site_totals (
        site      TEXT    PRIMARY KEY,
        addresses INTEGER NOT NULL DEFAULT 0,
        bounces   INTEGER NOT NULL DEFAULT 0,
        blocked   INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE TABLE reason_totals (
        site   TEXT    NOT NULL,
        reason TEXT    NOT NULL,
        events INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (site, reason)
    ) WITHOUT ROWID;
    CREATE TABLE domain_totals (
        domain  TEXT    PRIMARY KEY,
        bounces INTEGER NOT NULL DEFAULT 0
    ) WITHOUT ROWID;
    CREATE INDEX domain_totals_top ON domain_totals (bounces DESC, domain) WHERE bounces > 0;
    "#,
    // 2: an address's events are chained from its counter instead of
    // indexed by address (see above). Existing events are linked in id
    // order, which is the order they were recorded in.
    r#"
    ALTER TABLE counters ADD COLUMN last_event INTEGER;   -- newest event of this (site, address)
    ALTER TABLE events ADD COLUMN prev INTEGER;           -- the same counter's previous event
    UPDATE events SET prev = p.prev
        FROM (SELECT id, lag(id) OVER (PARTITION BY site, address ORDER BY id) AS prev FROM events) AS p
        WHERE p.id = events.id AND p.prev IS NOT NULL;
    UPDATE counters SET last_event = m.id
        FROM (SELECT site, address, max(id) AS id FROM events GROUP BY site, address) AS m
        WHERE m.site = counters.site AND m.address = counters.address;
    DROP INDEX events_address;
    "#,
];

/// The schema version this build writes.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Connection settings, applied at every open.
///
/// WAL lets the mailer read the block list while a run writes.
///
/// `synchronous = NORMAL`: in WAL mode a commit is then atomic and ordered
/// (a crash or power loss can only lose the last whole transactions, never
/// half of one: the ledger entry and the counts it guards go together) but
/// is not fsynced. Losing a whole transaction is harmless as long as the
/// messages it recorded are still somewhere: the next run records them
/// again, once. The one place where that is not so is a server message
/// about to be deleted, so `check` calls [`super::Store::sync`] between the
/// commit and the deletion; local sources are never deleted and need no
/// fsync at all. With `FULL` every batch paid an fsync of the WAL, deleted
/// anything or not.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // 64 MiB of page cache (the default is 2 MiB): a batch touches pages all
    // over the million-row trees, and spilling them mid-transaction costs
    // more than the memory.
    conn.pragma_update(None, "cache_size", -65_536)?;
    // Upserts keep a statement journal; in memory it is a copy, not file I/O.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Each batch dirties a random leaf or two per bounce (ledger, counters),
    // and with the default 1000-page autocheckpoint nearly every commit also
    // checkpointed, writing those pages twice and syncing the database file.
    // Checkpointing every ~40 MB of WAL writes a page changed by many
    // batches once; it halved `cargo bench --bench store`. (Larger values or
    // none only move the cost: a checkpoint fsyncs the WAL first, so the
    // bytes reach the disk either way, at the latest on close.) The WAL is
    // cut back to 64 MiB after a checkpoint and removed when the last
    // connection closes.
    conn.pragma_update(None, "wal_autocheckpoint", 10_000)?;
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    Ok(())
}

/// The database's schema version.
pub fn version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}

/// Brings the schema to [`current_version`] in one transaction. A database
/// written by a newer bouncectl is refused rather than misread.
pub fn migrate(conn: &mut Connection, path: &Path) -> Result<(), Error> {
    let open_err = |source| Error::Open {
        path: path.to_path_buf(),
        source,
    };
    // Cheap check first, so an up-to-date database (every run) takes no
    // write lock here.
    let found = version(conn).map_err(open_err)?;
    if found == current_version() {
        return Ok(());
    }
    if !(0..=current_version()).contains(&found) {
        return Err(too_new(path, found));
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(open_err)?;
    // Re-read under the write lock: another process may have migrated.
    let found = version(&tx).map_err(open_err)?;
    if !(0..=current_version()).contains(&found) {
        return Err(too_new(path, found));
    }
    for step in &MIGRATIONS[found as usize..] {
        tx.execute_batch(step).map_err(open_err)?;
    }
    tx.pragma_update(None, "user_version", current_version())
        .map_err(open_err)?;
    tx.commit().map_err(open_err)
}

fn too_new(path: &Path, found: i64) -> Error {
    Error::TooNew {
        path: path.to_path_buf(),
        found,
        supported: current_version(),
    }
}
