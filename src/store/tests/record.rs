//! Counting: the ledger, the policy applied per recipient and site, atomicity.

use super::*;

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

/// From now on, storing an event for boom@example.org fails ("injected
/// failure"), after the statements before it in the batch have run.
fn fail_events_of_boom(store: &Store) {
    store
        .conn
        .execute_batch(
            "CREATE TEMP TRIGGER boom BEFORE INSERT ON events WHEN NEW.address = 'boom@example.org'
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
        )
        .unwrap();
}

#[test]
fn failed_batch_leaves_database_as_before() {
    let (_d, mut store) = temp_store();
    let c = config(false);
    record(&mut store, &c, "a", &[("m0", bounce("x@example.org"))], T0);
    let before = store.stats().unwrap();
    // A failure in the middle of the batch, after rows were written.
    fail_events_of_boom(&store);
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
fn transaction_spans_batches_until_commit_and_fails_whole() {
    let (d, mut store) = temp_store();
    let c = config(false);
    let other = rusqlite::Connection::open(d.path().join("bounces.db")).unwrap();
    let committed = |sql: &str| other.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    let items =
        |tags: &'static [&'static str], cl: &'static Classification| -> Vec<Item<'static>> {
            tags.iter()
                .map(|t| Item {
                    source_uid: Some(t),
                    fingerprint: Fingerprint::of(t.as_bytes()),
                    classification: cl,
                })
                .collect()
        };
    let x: &'static Classification = Box::leak(Box::new(bounce("x@example.org")));
    let boom: &'static Classification = Box::leak(Box::new(bounce("boom@example.org")));

    // Two batches in one transaction: the second sees the first (its
    // copy is already_seen, the counter goes on from 1), others see neither.
    store.record(&c, "a", &items(&["m1"], x), T0).unwrap();
    assert!(store.in_transaction());
    let o = store.record(&c, "a", &items(&["m1", "m2"], x), T0).unwrap();
    assert!(o[0].already_seen && !o[1].already_seen);
    assert_eq!(store.lookup_uid("a", "m2").unwrap(), Some(Kind::Bounce));
    assert_eq!(committed("SELECT count(*) FROM ledger"), 0);
    store.commit().unwrap();
    assert!(!store.in_transaction());
    assert_eq!(committed("SELECT count(*) FROM ledger"), 2);
    assert_eq!(committed("SELECT bounces FROM counters"), 2);

    // A failure in a later batch takes the earlier batches of the same
    // transaction with it, and the store can record again afterwards.
    fail_events_of_boom(&store);
    store.record(&c, "a", &items(&["m3"], x), T0).unwrap();
    let err = store
        .record(&c, "a", &items(&["m4"], boom), T0)
        .unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert!(!store.in_transaction());
    store.commit().unwrap(); // nothing open: nothing to do
    assert_eq!(store.lookup_uid("a", "m3").unwrap(), None);
    assert_eq!(bounces_of(&store, "a", "x@example.org"), 2);
    store.record(&c, "a", &items(&["m5"], x), T0).unwrap();
    store.commit().unwrap();
    assert_eq!(committed("SELECT bounces FROM counters"), 3);
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
fn recipient_without_at_sign_is_not_counted() {
    let (_d, mut store) = temp_store();
    let m = msg(
        Kind::Bounce,
        &[
            ("postmaster", Reason::UserUnknown),
            ("", Reason::UserUnknown),
        ],
    );
    let o = record(&mut store, &config(false), "a", &[("m", m)], T0);
    assert_eq!(o[0].counted, 0);
    assert!(store.stats().unwrap().sites.is_empty());
}
