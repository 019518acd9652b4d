//! `stats`, `block` and `reset` on hand-built data.

use super::*;

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
