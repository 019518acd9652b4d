//! Store-level tests with hand-built classifications (no classifier needed).

use super::*;
use crate::config::Site;
use crate::exit::ExitCode;
use crate::message::{Reason, Recipient};

const T0: Timestamp = 1_795_449_660; // 2026-11-23T16:01:00Z
const DAY: Timestamp = 86_400;

fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("bounces.db")).unwrap();
    (dir, store)
}

/// Sites `a` (limit 3) and `b` (limit 2).
fn config(global: bool) -> Config {
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

fn rcpt(address: &str, reason: Reason) -> Recipient {
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

fn msg(kind: Kind, rcpts: &[(&str, Reason)]) -> Classification {
    Classification {
        kind,
        message_id: None,
        recipients: rcpts.iter().map(|(a, r)| rcpt(a, *r)).collect(),
        feedback_type: None,
        explanation: None,
    }
}

fn bounce(address: &str) -> Classification {
    msg(Kind::Bounce, &[(address, Reason::UserUnknown)])
}

/// Records one message per classification; each gets a distinct fingerprint
/// unless two classifications are equal and `tag` is.
fn record(
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

fn count(store: &Store, sql: &str) -> i64 {
    store.conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

fn bounces_of(store: &Store, site: &str, address: &str) -> u64 {
    store
        .address(address)
        .unwrap()
        .sites
        .iter()
        .find(|s| s.site == site)
        .map_or(0, |s| s.bounces)
}

/// The triggers' aggregates equal a fresh `GROUP BY` over the base tables.
fn assert_aggregates_consistent(store: &Store) {
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
fn open_creates_directory_wal_and_full_sync() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("deep/er/bounces.db");
    let store = Store::open(&path).unwrap();
    let mode: String = store
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(count(&store, "PRAGMA synchronous"), 2, "FULL");
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
fn bounces_count_until_limit_then_block_once() {
    let (_d, mut store) = temp_store();
    let c = config(false);
    let mut blocked = Vec::new();
    for i in 0..5 {
        let o = record(
            &mut store,
            &c,
            "a",
            &[(&format!("m{i}"), bounce("x@example.org"))],
            T0 + i,
        );
        assert_eq!(o[0].counted, 1);
        blocked.extend(o[0].newly_blocked.clone());
    }
    assert_eq!(
        blocked,
        vec![("a".to_string(), "x@example.org".to_string())]
    );
    let a = store.address("x@example.org").unwrap();
    assert_eq!(a.sites[0].bounces, 5, "a blocked address keeps counting");
    assert_eq!(
        a.sites[0].blocked_at.as_deref(),
        Some("2026-11-23T16:01:02Z"),
        "blocked by the third bounce"
    );
    assert_eq!(a.sites[0].block_reason.as_deref(), Some("userunknown"));
    assert_eq!(a.events.len(), 5);
    assert_eq!(a.events[0].at, "2026-11-23T16:01:00Z");
    assert_eq!(a.events[0].status.as_deref(), Some("5.1.1"));
    assert_aggregates_consistent(&store);
}

#[test]
fn limit_zero_never_blocks() {
    let (_d, mut store) = temp_store();
    let mut c = config(false);
    c.sites[0].bounce_limit = 0;
    for i in 0..10 {
        let o = record(
            &mut store,
            &c,
            "a",
            &[(&format!("m{i}"), bounce("x@example.org"))],
            T0,
        );
        assert!(o[0].newly_blocked.is_empty());
    }
    assert_eq!(bounces_of(&store, "a", "x@example.org"), 10);
    assert!(store.blocked(None).unwrap().is_empty());
}

#[test]
fn uncounted_kinds_only_reach_the_ledger() {
    let (_d, mut store) = temp_store();
    let c = config(false);
    let msgs = [
        (
            "d",
            msg(Kind::Delayed, &[("x@example.org", Reason::Expired)]),
        ),
        (
            "v",
            msg(Kind::AutoReply, &[("x@example.org", Reason::Vacation)]),
        ),
        ("n", msg(Kind::NotBounce, &[])),
    ];
    let o = record(&mut store, &c, "a", &msgs, T0);
    assert!(o.iter().all(|o| *o == Outcome::default()));
    assert_eq!(count(&store, "SELECT count(*) FROM ledger"), 3);
    assert_eq!(count(&store, "SELECT count(*) FROM counters"), 0);
    assert_eq!(count(&store, "SELECT count(*) FROM events"), 0);
    let again = record(&mut store, &c, "a", &msgs, T0);
    assert!(
        again.iter().all(|o| o.already_seen),
        "not re-counted or re-parsed"
    );
}

#[test]
fn complaint_blocks_at_once_without_counting() {
    let (_d, mut store) = temp_store();
    let c = config(false);
    let o = record(
        &mut store,
        &c,
        "a",
        &[(
            "c",
            msg(Kind::Complaint, &[("x@example.org", Reason::Feedback)]),
        )],
        T0,
    );
    assert_eq!(o[0].counted, 0);
    assert_eq!(
        o[0].newly_blocked,
        vec![("a".to_string(), "x@example.org".to_string())]
    );
    let a = store.address("x@example.org").unwrap();
    assert_eq!(a.sites[0].bounces, 0);
    assert_eq!(a.sites[0].block_reason.as_deref(), Some("feedback"));
    assert_eq!(
        a.events[0].reason, "feedback",
        "the complaint explains the block"
    );
    assert_eq!(
        store.blocked(Some("b")).unwrap(),
        Vec::<String>::new(),
        "only the receiving site"
    );
}

#[test]
fn complaint_with_block_on_complaint_false_blocks_nothing() {
    let (_d, mut store) = temp_store();
    let mut c = config(false);
    c.sites[0].block_on_complaint = false;
    let o = record(
        &mut store,
        &c,
        "a",
        &[(
            "c",
            msg(Kind::Complaint, &[("x@example.org", Reason::Feedback)]),
        )],
        T0,
    );
    assert_eq!(o[0], Outcome::default());
    assert!(store.blocked(None).unwrap().is_empty());
    assert_eq!(bounces_of(&store, "a", "x@example.org"), 0);
}

#[test]
fn block_globally_counts_in_every_site_with_each_limit() {
    let (_d, mut store) = temp_store();
    let c = config(true);
    let o1 = record(&mut store, &c, "a", &[("m1", bounce("x@example.org"))], T0);
    assert_eq!(o1[0].counted, 2);
    let o2 = record(&mut store, &c, "a", &[("m2", bounce("x@example.org"))], T0);
    assert_eq!(
        o2[0].newly_blocked,
        vec![("b".to_string(), "x@example.org".to_string())],
        "b's limit is 2"
    );
    let o3 = record(&mut store, &c, "b", &[("m3", bounce("x@example.org"))], T0);
    assert_eq!(
        o3[0].newly_blocked,
        vec![("a".to_string(), "x@example.org".to_string())],
        "a's limit is 3"
    );
    assert_eq!(bounces_of(&store, "a", "x@example.org"), 3);
    assert_eq!(bounces_of(&store, "b", "x@example.org"), 3);
    assert_aggregates_consistent(&store);
}

#[test]
fn without_block_globally_sites_count_apart() {
    let (_d, mut store) = temp_store();
    let c = config(false);
    record(
        &mut store,
        &c,
        "a",
        &[
            ("m1", bounce("x@example.org")),
            ("m2", bounce("x@example.org")),
        ],
        T0,
    );
    assert_eq!(bounces_of(&store, "a", "x@example.org"), 2);
    assert_eq!(bounces_of(&store, "b", "x@example.org"), 0);
}

#[test]
fn same_message_twice_counts_once_and_keeps_new_uid() {
    let (_d, mut store) = temp_store();
    let c = config(false);
    let cl = bounce("x@example.org");
    let fp = Fingerprint::of(b"m1");
    let first = [Item {
        source_uid: Some("uidl-1"),
        fingerprint: fp,
        classification: &cl,
    }];
    assert_eq!(
        store.record_batch(&c, "a", &first, T0).unwrap()[0].counted,
        1
    );
    let dup_in_batch = [
        Item {
            source_uid: Some("uidl-2"),
            fingerprint: fp,
            classification: &cl,
        },
        Item {
            source_uid: Some("uidl-3"),
            fingerprint: fp,
            classification: &cl,
        },
    ];
    let o = store.record_batch(&c, "a", &dup_in_batch, T0).unwrap();
    assert!(o.iter().all(|o| o.already_seen && o.counted == 0));
    assert_eq!(bounces_of(&store, "a", "x@example.org"), 1);
    for uid in ["uidl-1", "uidl-2", "uidl-3"] {
        assert_eq!(
            store.lookup_uid("a", uid).unwrap(),
            Some(Kind::Bounce),
            "{uid}"
        );
    }
    assert_eq!(
        store.lookup_uid("b", "uidl-1").unwrap(),
        None,
        "uids are scoped by site"
    );
    assert_eq!(store.lookup_uid("a", "other").unwrap(), None);
}

#[test]
fn duplicate_within_one_batch_is_already_seen() {
    let (_d, mut store) = temp_store();
    let o = record(
        &mut store,
        &config(false),
        "a",
        &[
            ("m", bounce("x@example.org")),
            ("m", bounce("x@example.org")),
        ],
        T0,
    );
    assert!(!o[0].already_seen && o[1].already_seen);
    assert_eq!(bounces_of(&store, "a", "x@example.org"), 1);
}

#[test]
fn not_bounce_uid_is_remembered() {
    let (_d, mut store) = temp_store();
    let cl = msg(Kind::NotBounce, &[]);
    let items = [Item {
        source_uid: Some("1/7"),
        fingerprint: Fingerprint::of(b"n"),
        classification: &cl,
    }];
    store.record_batch(&config(false), "a", &items, T0).unwrap();
    assert_eq!(store.lookup_uid("a", "1/7").unwrap(), Some(Kind::NotBounce));
}

#[test]
fn addresses_are_keyed_lowercase_and_counted_once_per_message() {
    let (_d, mut store) = temp_store();
    let m = msg(
        Kind::Bounce,
        &[
            ("X@Example.ORG", Reason::UserUnknown),
            ("x@example.org", Reason::UserUnknown),
        ],
    );
    let o = record(
        &mut store,
        &config(false),
        "a",
        &[("m", m), ("n", bounce("x@EXAMPLE.org"))],
        T0,
    );
    assert_eq!(o[0].counted, 1);
    assert_eq!(bounces_of(&store, "a", "X@EXAMPLE.ORG"), 2);
    assert_eq!(
        store.address("X@Example.Org").unwrap().address,
        "x@example.org"
    );
}

#[test]
fn failed_batch_leaves_database_as_before() {
    let (_d, mut store) = temp_store();
    let c = config(false);
    record(&mut store, &c, "a", &[("m0", bounce("x@example.org"))], T0);
    let before = store.stats().unwrap();
    // A failure in the middle of the batch, after rows were written.
    store
        .conn
        .execute_batch(
            "CREATE TEMP TRIGGER boom BEFORE INSERT ON events WHEN NEW.address = 'boom@example.org'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
    let (m1, m2, m3) = (
        bounce("x@example.org"),
        bounce("y@example.org"),
        bounce("boom@example.org"),
    );
    let items: Vec<Item<'_>> = [("m1", &m1), ("m2", &m2), ("m3", &m3)]
        .iter()
        .map(|(t, cl)| Item {
            source_uid: Some(t),
            fingerprint: Fingerprint::of(t.as_bytes()),
            classification: cl,
        })
        .collect();
    let err = store.record_batch(&c, "a", &items, T0 + 1).unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(
        serde_json::to_value(store.stats().unwrap()).unwrap(),
        serde_json::to_value(before).unwrap()
    );
    assert_eq!(count(&store, "SELECT count(*) FROM ledger"), 1);
    assert_eq!(count(&store, "SELECT count(*) FROM ledger_uids"), 0);
    assert_eq!(bounces_of(&store, "a", "x@example.org"), 1);
    assert_eq!(store.lookup_uid("a", "m1").unwrap(), None);
}

#[test]
fn stats_reports_sites_reasons_and_top_domains() {
    let (_d, mut store) = temp_store();
    let c = config(false);
    let mut msgs = Vec::new();
    for i in 0..25 {
        for j in 0..=i {
            msgs.push((
                format!("m{i}-{j}"),
                bounce(&format!("u{j}@d{i:02}.example")),
            ));
        }
    }
    msgs.push((
        "full".into(),
        msg(Kind::Bounce, &[("q@d00.example", Reason::MailboxFull)]),
    ));
    let refs: Vec<(&str, Classification)> =
        msgs.iter().map(|(t, c)| (t.as_str(), c.clone())).collect();
    record(&mut store, &c, "a", &refs, T0);
    record(&mut store, &c, "b", &[("b1", bounce("z@d24.example"))], T0);
    let s = store.stats().unwrap();
    let json = serde_json::to_value(&s).unwrap();
    assert_eq!(
        json["sites"][0],
        serde_json::json!({"site":"a","addresses":326,"bounces":326,"blocked":0})
    );
    assert_eq!(json["sites"][1]["site"], "b");
    assert_eq!(
        json["reasons"],
        serde_json::json!({"mailboxfull":1,"userunknown":326})
    );
    assert_eq!(s.domains.len(), 20);
    assert_eq!(
        (s.domains[0].domain.as_str(), s.domains[0].bounces),
        ("d24.example", 26)
    );
    assert_eq!(s.domains[19].domain, "d05.example");
    let only_b = store.stats_for(Some("b")).unwrap();
    assert_eq!(only_b.sites.len(), 1);
    assert_eq!(only_b.domains[0].domain, "d24.example");
    assert_eq!(only_b.domains[0].bounces, 1);
    assert_aggregates_consistent(&store);
}

#[test]
fn manual_block_shows_in_stats_and_keeps_first_reason() {
    let (_d, mut store) = temp_store();
    let addrs = vec![
        "A@example.org".to_string(),
        "b@example.org".into(),
        "a@example.org".into(),
    ];
    assert_eq!(store.block("a", &addrs, "manual", T0).unwrap(), 2);
    assert_eq!(
        store
            .block("a", &["a@example.org".to_string()], "other", T0 + DAY)
            .unwrap(),
        0
    );
    let a = store.address("a@example.org").unwrap();
    assert_eq!(a.sites[0].block_reason.as_deref(), Some("manual"));
    assert_eq!(
        a.sites[0].blocked_at.as_deref(),
        Some("2026-11-23T16:01:00Z")
    );
    assert_eq!(
        store.blocked(Some("a")).unwrap(),
        vec!["a@example.org", "b@example.org"]
    );
    assert_eq!(store.stats().unwrap().sites[0].blocked, 2);
    // Bounces after a manual block count, but do not block again.
    let o = record(
        &mut store,
        &config(false),
        "a",
        &[("m", bounce("a@example.org"))],
        T0,
    );
    assert!(o[0].newly_blocked.is_empty());
    assert_aggregates_consistent(&store);
}

#[test]
fn blocked_lists_each_address_once_sorted() {
    let (_d, mut store) = temp_store();
    store
        .block(
            "b",
            &["z@example.org".to_string(), "m@example.org".into()],
            "manual",
            T0,
        )
        .unwrap();
    store
        .block("a", &["m@example.org".to_string()], "manual", T0)
        .unwrap();
    assert_eq!(
        store.blocked(None).unwrap(),
        vec!["m@example.org", "z@example.org"]
    );
    assert_eq!(store.blocked(Some("a")).unwrap(), vec!["m@example.org"]);
    assert!(store.blocked(Some("nope")).unwrap().is_empty());
}

#[test]
fn reset_addresses_forgets_counters_events_and_blocks() {
    let (_d, mut store) = temp_store();
    let c = config(true);
    let msgs: Vec<(String, Classification)> = (0..3)
        .map(|i| (format!("m{i}"), bounce("x@example.org")))
        .collect();
    let refs: Vec<(&str, Classification)> =
        msgs.iter().map(|(t, c)| (t.as_str(), c.clone())).collect();
    record(&mut store, &c, "a", &refs, T0);
    record(&mut store, &c, "a", &[("y", bounce("y@example.org"))], T0);
    assert_eq!(store.blocked(None).unwrap(), vec!["x@example.org"]);
    assert_eq!(
        store
            .reset(
                Some("b"),
                &ResetTarget::Addresses(vec!["X@example.org".into()]),
                T0
            )
            .unwrap(),
        1
    );
    assert_eq!(store.blocked(Some("b")).unwrap(), Vec::<String>::new());
    assert_eq!(
        store.blocked(Some("a")).unwrap(),
        vec!["x@example.org"],
        "other site untouched"
    );
    assert_eq!(
        store
            .reset(
                None,
                &ResetTarget::Addresses(vec!["x@example.org".into()]),
                T0
            )
            .unwrap(),
        1
    );
    let x = store.address("x@example.org").unwrap();
    assert!(x.sites.is_empty() && x.events.is_empty());
    assert_eq!(bounces_of(&store, "a", "y@example.org"), 1);
    // The ledger stays: the same messages are not counted again.
    assert!(
        record(&mut store, &c, "a", &refs, T0)
            .iter()
            .all(|o| o.already_seen)
    );
    assert_aggregates_consistent(&store);
}

#[test]
fn reset_all_empties_one_site_or_all() {
    let (_d, mut store) = temp_store();
    let c = config(true);
    record(
        &mut store,
        &c,
        "a",
        &[
            ("m", bounce("x@example.org")),
            ("n", bounce("y@example.org")),
        ],
        T0,
    );
    assert_eq!(store.reset(Some("a"), &ResetTarget::All, T0).unwrap(), 2);
    let s = store.stats().unwrap();
    assert_eq!(s.sites.len(), 1);
    assert_eq!(s.sites[0].site, "b");
    assert_eq!(store.reset(None, &ResetTarget::All, T0).unwrap(), 2);
    let s = serde_json::to_value(store.stats().unwrap()).unwrap();
    assert_eq!(s, serde_json::json!({"sites":[],"reasons":{},"domains":[]}));
    assert_aggregates_consistent(&store);
}

#[test]
fn reset_older_than_forgets_stale_counts_only() {
    let (_d, mut store) = temp_store();
    let mut c = config(false);
    c.sites[0].bounce_limit = 1;
    record(
        &mut store,
        &c,
        "a",
        &[("old", bounce("old@example.org"))],
        T0 - 40 * DAY,
    );
    record(
        &mut store,
        &c,
        "a",
        &[("new", bounce("new@example.org"))],
        T0 - 5 * DAY,
    );
    let complaint = msg(Kind::Complaint, &[("angry@example.org", Reason::Feedback)]);
    record(&mut store, &c, "a", &[("c", complaint)], T0 - 40 * DAY);
    store
        .block(
            "a",
            &["manual@example.org".to_string()],
            "manual",
            T0 - 400 * DAY,
        )
        .unwrap();
    record(
        &mut store,
        &c,
        "b",
        &[("b", bounce("old@example.org"))],
        T0 - 40 * DAY,
    );

    assert_eq!(
        store
            .reset(Some("a"), &ResetTarget::OlderThanDays(30), T0)
            .unwrap(),
        1
    );
    assert_eq!(
        store.blocked(Some("a")).unwrap(),
        vec!["angry@example.org", "manual@example.org", "new@example.org"]
    );
    assert!(
        store
            .address("old@example.org")
            .unwrap()
            .events
            .iter()
            .all(|e| e.site == "b")
    );
    assert_eq!(
        store
            .reset(None, &ResetTarget::OlderThanDays(30), T0)
            .unwrap(),
        1,
        "b's stale counter"
    );
    assert_eq!(
        store
            .reset(None, &ResetTarget::OlderThanDays(3), T0)
            .unwrap(),
        1,
        "new is 5 days old"
    );
    assert_eq!(
        store.blocked(None).unwrap(),
        vec!["angry@example.org", "manual@example.org"]
    );
    assert_aggregates_consistent(&store);
}

#[test]
fn long_diagnostic_is_truncated_on_a_char_boundary() {
    let (_d, mut store) = temp_store();
    let mut m = bounce("x@example.org");
    m.recipients[0].diagnostic = Some("é".repeat(5000));
    record(&mut store, &config(false), "a", &[("m", m)], T0);
    let d = store.address("x@example.org").unwrap().events[0]
        .diagnostic
        .clone()
        .unwrap();
    assert!(d.len() <= 2000 && d.chars().all(|c| c == 'é'));
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
    // The same statements as record.rs, query.rs and admin.rs.
    for sql in [
        "SELECT bounces, blocked_at IS NOT NULL FROM counters WHERE site = ?1 AND address = ?2",
        "SELECT l.kind FROM ledger_uids u JOIN ledger l ON l.fingerprint = u.fingerprint
         WHERE u.site = ?1 AND u.source_uid = ?2",
        "SELECT site, bounces, blocked_at, block_reason FROM counters
         WHERE site IN (SELECT site FROM site_totals WHERE ?2 IS NULL OR site = ?2) AND address = ?1",
        "SELECT site, at, reason, status, diagnostic FROM events
         WHERE address = ?1 AND (?2 IS NULL OR site = ?2) ORDER BY at, id",
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
fn rebuilt_totals_equal_the_incremental_ones() {
    let (_d, mut store) = temp_store();
    let c = config(true);
    let msgs: Vec<(String, Classification)> = (0..30)
        .map(|i| {
            (
                format!("m{i}"),
                bounce(&format!("u{}@d{}.example", i % 7, i % 3)),
            )
        })
        .collect();
    let refs: Vec<(&str, Classification)> =
        msgs.iter().map(|(t, c)| (t.as_str(), c.clone())).collect();
    record(&mut store, &c, "a", &refs, T0);
    store
        .block("b", &["z@example.org".to_string()], "manual", T0)
        .unwrap();
    let target = ResetTarget::Addresses(vec!["u1@d1.example".into()]);
    store.reset(Some("a"), &target, T0).unwrap();
    let before = serde_json::to_value(store.stats().unwrap()).unwrap();
    store.rebuild_totals().unwrap();
    assert_eq!(
        serde_json::to_value(store.stats().unwrap()).unwrap(),
        before
    );
}
