//! Store-level tests with hand-built classifications (no classifier needed):
//! opening and migrating here, counting in `record`, stats and changes by
//! hand in `admin`.

mod admin;
mod record;

use super::*;
use crate::config::Site;
use crate::exit::ExitCode;
use crate::message::{Reason, Recipient};

pub(super) const T0: Timestamp = 1_795_449_660; // 2026-11-23T16:01:00Z
pub(super) const DAY: Timestamp = 86_400;

pub(super) fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bounces.db")).unwrap();
    (dir, store)
}

/// Sites `a` (limit 3) and `b` (limit 2).
pub(super) fn config(global: bool) -> Config {
    let mut c = Config::builtin();
    c.block_globally = global;
    c.sites[0].name = "a".into();
    c.sites[0].bounce_limit = 3;
    c.sites.push(Site {
        name: "b".into(),
        bounce_limit: 2,
        ..c.sites[0].clone()
    });
    c
}

pub(super) fn rcpt(address: &str, reason: Reason) -> Recipient {
    Recipient {
        address: address.into(),
        status: Some("5.1.1".into()),
        reply_code: Some(550),
        action: Some("failed".into()),
        diagnostic: Some(format!("550 5.1.1 <{address}>: user unknown")),
        reason,
        hard: reason.hardness(true),
    }
}

pub(super) fn msg(kind: Kind, rcpts: &[(&str, Reason)]) -> Classification {
    Classification {
        kind,
        message_id: None,
        recipients: rcpts.iter().map(|(a, r)| rcpt(a, *r)).collect(),
        feedback_type: None,
        explanation: None,
    }
}

pub(super) fn bounce(address: &str) -> Classification {
    msg(Kind::Bounce, &[(address, Reason::UserUnknown)])
}

/// Records one message per classification; each gets a distinct fingerprint
/// unless two classifications are equal and `tag` is.
pub(super) fn record(
    store: &mut Store,
    c: &Config,
    site: &str,
    msgs: &[(&str, Classification)],
    now: Timestamp,
) -> Vec<Outcome> {
    let items: Vec<Item<'_>> = msgs
        .iter()
        .map(|(tag, cl)| Item {
            source_uid: None,
            fingerprint: Fingerprint::of(tag.as_bytes()),
            classification: cl,
        })
        .collect();
    store.record_batch(c, site, &items, now).unwrap()
}

pub(super) fn count(store: &Store, sql: &str) -> i64 {
    store.conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

pub(super) fn bounces_of(store: &Store, site: &str, address: &str) -> u64 {
    store
        .address(address)
        .unwrap()
        .sites
        .iter()
        .find(|s| s.site == site)
        .map_or(0, |s| s.bounces)
}

/// The triggers' aggregates equal a fresh `GROUP BY` over the base tables.
pub(super) fn assert_aggregates_consistent(store: &Store) {
    let diff = |sql: &str| count(store, sql);
    assert_eq!(
        diff(
            "SELECT count(*) FROM (SELECT site, addresses, bounces, blocked FROM site_totals WHERE addresses > 0
             EXCEPT SELECT site, count(*), sum(bounces), count(blocked_at) FROM counters GROUP BY site)"
        ),
        0,
        "site_totals drifted"
    );
    assert_eq!(
        diff(
            "SELECT count(*) FROM (SELECT domain, sum(bounces) FROM counters GROUP BY domain HAVING sum(bounces) > 0
             EXCEPT SELECT domain, bounces FROM domain_totals WHERE bounces > 0)"
        ),
        0,
        "domain_totals drifted"
    );
    assert_eq!(
        diff(
            "SELECT count(*) FROM (SELECT site, reason, count(*) FROM events GROUP BY site, reason
             EXCEPT SELECT site, reason, events FROM reason_totals WHERE events > 0)"
        ),
        0,
        "reason_totals drifted"
    );
}

#[test]
fn fingerprint_ignores_crlf_versus_lf() {
    assert_eq!(
        Fingerprint::of(b"A: b\r\n\r\nbody\r\n"),
        Fingerprint::of(b"A: b\n\nbody\n")
    );
    assert_ne!(Fingerprint::of(b"A: b\n"), Fingerprint::of(b"A: c\n"));
    assert_eq!(Fingerprint::of(b"").hex().len(), 64);
}

#[test]
fn fingerprint_ignores_a_leading_mbox_from_line() {
    let body = b"Return-Path: <>\nSubject: x\n\nbody\n";
    let mut mbox = b"From MAILER-DAEMON Mon Nov 23 16:01:00 2026\r\n".to_vec();
    mbox.extend_from_slice(body);
    assert_eq!(Fingerprint::of(&mbox), Fingerprint::of(body));
    assert_ne!(
        Fingerprint::of(b"Subject: From x\n"),
        Fingerprint::of(b"x\n")
    );
}

#[test]
fn open_creates_directory_wal_and_normal_sync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep/er/bounces.db");
    let store = Store::open(&path).unwrap();
    let mode: String = store
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(count(&store, "PRAGMA synchronous"), 1, "NORMAL");
    assert_eq!(
        schema::version(&store.conn).unwrap(),
        schema::current_version()
    );
}

#[test]
fn migrating_twice_is_a_no_op() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bounces.db");
    let mut store = Store::open(&path).unwrap();
    record(
        &mut store,
        &config(false),
        "a",
        &[("m1", bounce("x@example.org"))],
        T0,
    );
    let tables = count(&store, "SELECT count(*) FROM sqlite_schema");
    schema::migrate(&mut store.conn, &path).unwrap();
    drop(store);
    let store = Store::open(&path).unwrap();
    assert_eq!(count(&store, "SELECT count(*) FROM sqlite_schema"), tables);
    assert_eq!(bounces_of(&store, "a", "x@example.org"), 1);
}

#[test]
fn database_from_newer_version_is_refused() {
    let (dir, store) = temp_store();
    store
        .conn
        .pragma_update(None, "user_version", schema::current_version() + 1)
        .unwrap();
    drop(store);
    let err = Store::open(&dir.path().join("bounces.db"))
        .err()
        .expect("refused");
    assert!(matches!(err, Error::TooNew { .. }), "{err}");
    assert!(err.to_string().contains("newer bouncectl"), "{err}");
    assert_eq!(err.exit().code(), 74);
}

#[test]
fn open_existing_on_missing_file_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none/bounces.db");
    assert!(Store::open_existing(&path).unwrap().is_none());
    assert!(!dir.path().join("none").exists());
}

#[test]
fn unwritable_path_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    std::fs::write(&file, "x").unwrap();
    let err = Store::open(&file.join("bounces.db")).err().expect("fails");
    assert_eq!(err.exit().code(), 74, "{err}");
    let err = Store::open(Path::new("/proc/bouncectl-test.db"))
        .err()
        .expect("fails");
    assert_eq!(err.exit().code(), 74, "{err}");
    assert!(!err.to_string().contains('\n'));
}

#[test]
fn not_a_database_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bounces.db");
    std::fs::write(&path, vec![b'x'; 4096]).unwrap();
    let err = Store::open(&path).err().expect("fails");
    assert_eq!(err.exit().code(), 74, "{err}");
}

#[test]
fn hot_queries_use_keys_not_scans() {
    let (_d, store) = temp_store();
    let plan = |sql: &str| -> String {
        let mut q = store
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap();
        let nulls = std::iter::repeat_n(rusqlite::types::Null, q.parameter_count());
        let rows = q
            .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    };
    let events = query::events_of(query::ADDRESS);
    let address_events = format!(
        "SELECT site, at, reason, status, diagnostic FROM events WHERE {events} ORDER BY at, id"
    );
    let reset_events = format!("DELETE FROM events WHERE {events}");
    // The same statements as record.rs, query.rs and admin.rs.
    for sql in [
        "SELECT bounces, blocked_at IS NOT NULL, last_event FROM counters
         WHERE site = ?1 AND address = ?2",
        "SELECT l.kind FROM ledger_uids u JOIN ledger l ON l.fingerprint = u.fingerprint
         WHERE u.site = ?1 AND u.source_uid = ?2",
        "SELECT site, bounces, blocked_at, block_reason FROM counters
         WHERE site IN (SELECT site FROM site_totals WHERE ?2 IS NULL OR site = ?2) AND address = ?1",
        &address_events,
        &reset_events,
        "DELETE FROM counters WHERE site IN (SELECT site FROM site_totals WHERE ?2 IS NULL OR site = ?2)
         AND address = ?1",
        "SELECT domain, bounces FROM domain_totals WHERE bounces > 0 ORDER BY bounces DESC, domain LIMIT ?1",
    ] {
        let p = plan(sql);
        for table in ["counters", "events", "ledger", "domain_totals"] {
            assert!(!p.contains(&format!("SCAN {table}")), "{sql}\n=> {p}");
        }
        assert!(!p.contains("SCAN l"), "{sql}\n=> {p}");
    }
    assert!(plan(query::BLOCKED).contains("counters_blocked"));
}

#[test]
fn version_1_database_upgrades_with_events_chained_per_address() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bounces.db");
    {
        // A database as the first release left it: version 1, events
        // found through the `events_address` index.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(schema::MIGRATIONS[0]).unwrap();
        conn.execute_batch(
            "INSERT INTO counters (site, address, domain, bounces, last_at)
                 VALUES ('a', 'x@example.org', 'example.org', 2, 20),
                        ('b', 'x@example.org', 'example.org', 1, 15),
                        ('a', 'y@example.org', 'example.org', 1, 12);
             INSERT INTO events (id, site, address, reason, at, fingerprint) VALUES
                 (1, 'a', 'x@example.org', 'userunknown', 10, x'01'),
                 (2, 'a', 'y@example.org', 'mailboxfull', 12, x'02'),
                 (3, 'b', 'x@example.org', 'expired', 15, x'03'),
                 (4, 'a', 'x@example.org', 'mailboxfull', 20, x'04');
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let mut store = Store::open(&path).unwrap();
    assert_eq!(schema::version(&store.conn).unwrap(), 2);
    store.rebuild_totals().unwrap();
    let x = store.address("x@example.org").unwrap();
    let seen: Vec<(&str, &str)> = x
        .events
        .iter()
        .map(|e| (e.site.as_str(), e.reason.as_str()))
        .collect();
    assert_eq!(
        seen,
        [("a", "userunknown"), ("b", "expired"), ("a", "mailboxfull")]
    );
    assert_eq!(store.address("y@example.org").unwrap().events.len(), 1);
    assert_eq!(
        count(
            &store,
            "SELECT count(*) FROM sqlite_schema WHERE name = 'events_address'"
        ),
        0
    );

    // New events continue the migrated chains; a reset follows them.
    record(
        &mut store,
        &config(false),
        "a",
        &[("m5", bounce("x@example.org"))],
        T0,
    );
    assert_eq!(store.address("x@example.org").unwrap().events.len(), 4);
    let target = ResetTarget::Addresses(vec!["x@example.org".into()]);
    assert_eq!(store.reset(Some("a"), &target, T0).unwrap(), 1);
    let x = store.address("x@example.org").unwrap();
    assert_eq!(x.events.len(), 1, "b's event stays");
    assert_eq!(x.events[0].site, "b");
    assert_eq!(store.address("y@example.org").unwrap().events.len(), 1);
    assert_aggregates_consistent(&store);
    assert_eq!(count(&store, "SELECT count(*) FROM events"), 2);
}

#[test]
fn sync_puts_committed_batches_in_the_files_a_restart_reads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bounces.db");
    let mut store = Store::open(&path).unwrap();
    store.sync().unwrap(); // nothing committed yet: fine
    record(
        &mut store,
        &config(false),
        "a",
        &[("m1", bounce("x@example.org"))],
        T0,
    );
    store.sync().unwrap();
    store.sync().unwrap();
    // What a power loss right now would leave: the database and WAL files
    // as they are (the store is still open, nothing checkpointed on close).
    let copy = dir.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for suffix in ["", "-wal"] {
        std::fs::copy(
            format!("{}{suffix}", path.display()),
            copy.join(format!("bounces.db{suffix}")),
        )
        .unwrap();
    }
    let mut after = Store::open(&copy.join("bounces.db")).unwrap();
    assert_eq!(bounces_of(&after, "a", "x@example.org"), 1);
    let again = record(
        &mut after,
        &config(false),
        "a",
        &[("m1", bounce("x@example.org"))],
        T0,
    );
    assert!(again[0].already_seen, "recorded before the sync");
    drop(store);
}
