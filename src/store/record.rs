//! The write path of `check`: a batch of classified messages into the ledger,
//! counters, events and blocks. Runs inside the caller's transaction.

use std::collections::HashSet;

use rusqlite::{CachedStatement, Connection, OptionalExtension, params};

use super::totals::Delta;
use super::{Item, Outcome};
use crate::config::Config;
use crate::message::Kind;
use crate::policy::{self, Counter, Rules};
use crate::time::Timestamp;

/// Longest diagnostic kept in an event, in bytes: enough for any real SMTP
/// reply, and a hostile 50 MB "diagnostic" cannot bloat the database.
const MAX_DIAGNOSTIC: usize = 2000;

/// The kind recorded for a source identity in this site, if any.
pub fn lookup_uid(
    conn: &Connection,
    site: &str,
    source_uid: &str,
) -> rusqlite::Result<Option<Kind>> {
    let kind: Option<String> = conn
        .prepare_cached(
            "SELECT l.kind FROM ledger_uids u JOIN ledger l ON l.fingerprint = u.fingerprint
             WHERE u.site = ?1 AND u.source_uid = ?2",
        )?
        .query_row(params![site, source_uid], |r| r.get(0))
        .optional()?;
    // A kind this build does not know cannot come from a supported schema;
    // treating it as unknown only costs a fetch, then the fingerprint matches.
    Ok(kind.as_deref().and_then(Kind::parse))
}

/// The write path's statements, prepared once per batch: looking them up
/// in the statement cache per message hashed their text every time.
struct Statements<'c> {
    ledger: CachedStatement<'c>,
    ledger_uid: CachedStatement<'c>,
    counter: CachedStatement<'c>,
    insert_counter: CachedStatement<'c>,
    update_counter: CachedStatement<'c>,
    block_counter: CachedStatement<'c>,
    write_event: CachedStatement<'c>,
}

impl<'c> Statements<'c> {
    fn prepare(conn: &'c Connection) -> rusqlite::Result<Statements<'c>> {
        Ok(Statements {
            // One probe: the insert does nothing for a known fingerprint
            // (including one earlier in this transaction).
            ledger: conn.prepare_cached(
                "INSERT INTO ledger (fingerprint, kind, site, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (fingerprint) DO NOTHING",
            )?,
            // Latest wins: a server that reuses a UIDL for a new message
            // must not make us skip the new one forever.
            ledger_uid: conn.prepare_cached(
                "INSERT INTO ledger_uids (site, source_uid, fingerprint) VALUES (?1, ?2, ?3)
                 ON CONFLICT (site, source_uid) DO UPDATE SET fingerprint = excluded.fingerprint",
            )?,
            counter: conn.prepare_cached(
                "SELECT bounces, blocked_at IS NOT NULL, last_event FROM counters
                 WHERE site = ?1 AND address = ?2",
            )?,
            // The policy decided knowing the row, so it is a plain insert
            // or update: an upsert probes and rewrites the row in more
            // B-tree searches (it was the costliest statement here).
            insert_counter: conn.prepare_cached(
                "INSERT INTO counters
                     (site, address, domain, bounces, last_at, blocked_at, block_reason, blocked_by, last_event)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?,
            update_counter: conn.prepare_cached(
                "UPDATE counters SET bounces = bounces + ?3, last_at = ?4,
                     last_event = coalesce(?5, last_event)
                 WHERE site = ?1 AND address = ?2",
            )?,
            // The policy only blocks an address that is not blocked, so
            // this never overwrites an older block. (Apart, because setting
            // `blocked_at` costs the partial index's upkeep.)
            block_counter: conn.prepare_cached(
                "UPDATE counters SET blocked_at = ?3, block_reason = ?4, blocked_by = ?5
                 WHERE site = ?1 AND address = ?2",
            )?,
            write_event: conn.prepare_cached(
                "INSERT INTO events (site, address, reason, status, diagnostic, at, fingerprint, prev)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?,
        })
    }
}

/// Records every item in order, adding to the aggregates in `delta`; the
/// caller applies `delta` and commits.
pub fn record_items(
    conn: &Connection,
    config: &Config,
    site: &str,
    items: &[Item<'_>],
    now: Timestamp,
    delta: &mut Delta,
) -> rusqlite::Result<Vec<Outcome>> {
    let mut st = Statements::prepare(conn)?;
    let mut outcomes = Vec::with_capacity(items.len());
    for item in items {
        let fp = &item.fingerprint.0[..];
        let kind = item.classification.kind.as_str();
        let new = st.ledger.execute(params![fp, kind, site, now])? == 1;
        if let Some(uid) = item.source_uid {
            st.ledger_uid.execute(params![site, uid, fp])?;
        }
        outcomes.push(if new {
            count_message(conn, &mut st, config, site, item, now, delta)?
        } else {
            Outcome {
                already_seen: true,
                ..Outcome::default()
            }
        });
    }
    Ok(outcomes)
}

/// Applies the policy to every recipient of a new message in every site it
/// reaches.
fn count_message(
    conn: &Connection,
    st: &mut Statements<'_>,
    config: &Config,
    site: &str,
    item: &Item<'_>,
    now: Timestamp,
    delta: &mut Delta,
) -> rusqlite::Result<Outcome> {
    let kind = item.classification.kind;
    let mut outcome = Outcome::default();
    let sites: Vec<(&str, Rules)> = policy::sites_reached(config, site, kind)
        .into_iter()
        .map(|s| (s, Rules::of(config, s)))
        .collect();
    if sites.is_empty() {
        return Ok(outcome);
    }
    let recipients = &item.classification.recipients;
    // A report naming the same recipient twice is still one bounce for it.
    let mut done = HashSet::new();
    for r in recipients {
        let address = policy::normalize_address(&r.address);
        // Something without an `@` cannot be blocked by a mailer: not counted.
        if !address.contains('@') || (recipients.len() > 1 && !done.insert(address.clone())) {
            continue;
        }
        for &(s, rules) in &sites {
            let before = counter(&mut st.counter, s, &address)?;
            let d = policy::decide(
                rules,
                kind,
                r.reason.as_str(),
                before.map(|(c, _)| c).unwrap_or_default(),
                now,
            );
            if !d.event && !d.count && d.block.is_none() {
                continue;
            }
            let domain = policy::domain_of(&address);
            // The event first: the counter then points at it, in one write.
            let event = if d.event {
                let prev = before.and_then(|(_, last)| last);
                delta.event(s, r.reason.as_str());
                st.write_event.execute(params![
                    s,
                    address,
                    r.reason.as_str(),
                    r.status.as_deref(),
                    r.diagnostic.as_deref().map(truncate),
                    now,
                    &item.fingerprint.0[..],
                    prev,
                ])?;
                Some(conn.last_insert_rowid())
            } else {
                None
            };
            let block = d.block.map(|b| (b.at, b.reason, b.by.as_str()));
            if before.is_none() {
                let (at, reason, by) = match block {
                    Some((at, reason, by)) => (Some(at), Some(reason), Some(by)),
                    None => (None, None, None),
                };
                st.insert_counter.execute(params![
                    s,
                    address,
                    domain,
                    i64::from(d.count),
                    now,
                    at,
                    reason,
                    by,
                    event,
                ])?;
            } else {
                st.update_counter
                    .execute(params![s, address, i64::from(d.count), now, event])?;
                if let Some((at, reason, by)) = block {
                    st.block_counter
                        .execute(params![s, address, at, reason, by])?;
                }
            }
            if before.is_none() {
                delta.address_added(s);
            }
            delta.counted(s, domain, i64::from(d.count));
            if d.count {
                outcome.counted += 1;
            }
            if d.block.is_some() {
                delta.blocked(s);
                outcome.newly_blocked.push((s.to_string(), address.clone()));
            }
        }
    }
    Ok(outcome)
}

/// The address's counter in `site` and its newest event (the head of its
/// event chain); `None` when it has no row yet.
fn counter(
    stmt: &mut CachedStatement<'_>,
    site: &str,
    address: &str,
) -> rusqlite::Result<Option<(Counter, Option<i64>)>> {
    stmt.query_row(params![site, address], |r| {
        let c = Counter {
            bounces: r.get::<_, i64>(0)? as u64,
            blocked: r.get(1)?,
        };
        Ok((c, r.get(2)?))
    })
    .optional()
}

/// Cuts at a character boundary at most [`MAX_DIAGNOSTIC`] bytes in.
fn truncate(s: &str) -> &str {
    if s.len() <= MAX_DIAGNOSTIC {
        return s;
    }
    let mut end = MAX_DIAGNOSTIC;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
