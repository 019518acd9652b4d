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
/// Sizing for a million addresses: every lookup on the write path is a
/// primary-key probe (`counters`, `ledger`, `ledger_uids`, the aggregates),
/// `stats ADDRESS` uses `counters_address`/`events_address`, `--blocked`
/// a partial index over blocked rows only, and `stats` reads the aggregate
/// tables that triggers keep equal to the `GROUP BY` over `counters` and
/// `events`, so its cost does not grow with the number of addresses.
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
    CREATE INDEX counters_address ON counters (address);
    CREATE INDEX counters_blocked ON counters (site, address) WHERE blocked_at IS NOT NULL;
    CREATE INDEX counters_last ON counters (last_at) WHERE last_at IS NOT NULL;

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
    CREATE INDEX events_address ON events (address, site, at);

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

    -- Aggregates for `stats`, maintained by the triggers below inside the
    -- same transactions as the rows they summarize.
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
    CREATE INDEX domain_totals_bounces ON domain_totals (bounces DESC, domain) WHERE bounces > 0;

    CREATE TRIGGER counters_insert AFTER INSERT ON counters BEGIN
        INSERT INTO site_totals (site, addresses, bounces, blocked)
            VALUES (NEW.site, 1, NEW.bounces, NEW.blocked_at IS NOT NULL)
            ON CONFLICT (site) DO UPDATE SET
                addresses = addresses + 1,
                bounces = bounces + excluded.bounces,
                blocked = blocked + excluded.blocked;
        INSERT INTO domain_totals (domain, bounces) SELECT NEW.domain, NEW.bounces WHERE NEW.bounces <> 0
            ON CONFLICT (domain) DO UPDATE SET bounces = bounces + excluded.bounces;
    END;
    CREATE TRIGGER counters_update AFTER UPDATE OF bounces, blocked_at ON counters BEGIN
        UPDATE site_totals SET
                bounces = bounces + NEW.bounces - OLD.bounces,
                blocked = blocked + (NEW.blocked_at IS NOT NULL) - (OLD.blocked_at IS NOT NULL)
            WHERE site = NEW.site;
        INSERT INTO domain_totals (domain, bounces)
            SELECT NEW.domain, NEW.bounces - OLD.bounces WHERE NEW.bounces <> OLD.bounces
            ON CONFLICT (domain) DO UPDATE SET bounces = bounces + excluded.bounces;
    END;
    CREATE TRIGGER counters_delete AFTER DELETE ON counters BEGIN
        UPDATE site_totals SET
                addresses = addresses - 1,
                bounces = bounces - OLD.bounces,
                blocked = blocked - (OLD.blocked_at IS NOT NULL)
            WHERE site = OLD.site;
        UPDATE domain_totals SET bounces = bounces - OLD.bounces
            WHERE domain = OLD.domain AND OLD.bounces <> 0;
    END;
    CREATE TRIGGER events_insert AFTER INSERT ON events BEGIN
        INSERT INTO reason_totals (site, reason, events) VALUES (NEW.site, NEW.reason, 1)
            ON CONFLICT (site, reason) DO UPDATE SET events = events + 1;
    END;
    CREATE TRIGGER events_delete AFTER DELETE ON events BEGIN
        UPDATE reason_totals SET events = events - 1 WHERE site = OLD.site AND reason = OLD.reason;
    END;
    "#,
];

/// The schema version this build writes.
pub fn current_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Connection settings, applied at every open.
///
/// WAL lets the mailer read the block list while a run writes.
/// `synchronous = FULL` because `check` deletes a message from the server
/// right after the commit that records it: in WAL mode `NORMAL` may lose the
/// last commits on power failure, and then the bounce would be lost for good.
pub fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(()))?;
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
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
