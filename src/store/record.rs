//! The write path of `check`: a batch of classified messages into the ledger,
//! counters, events and blocks. Runs inside the caller's transaction.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};

use super::totals::Delta;
use super::{Item, Outcome};
use crate::config::Config;
use crate::message::{Kind, Recipient};
use crate::policy::{self, Counter, Decision, Rules};
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

/// Records every item in order; the caller commits.
pub fn record_items(
    conn: &Connection,
    config: &Config,
    site: &str,
    items: &[Item<'_>],
    now: Timestamp,
) -> rusqlite::Result<Vec<Outcome>> {
    let mut outcomes = Vec::with_capacity(items.len());
    let mut delta = Delta::default();
    for item in items {
        let fp = &item.fingerprint.0[..];
        let kind = item.classification.kind.as_str();
        // One probe: the insert does nothing for a known fingerprint
        // (including one earlier in this batch).
        let new = conn
            .prepare_cached(
                "INSERT INTO ledger (fingerprint, kind, site, at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (fingerprint) DO NOTHING",
            )?
            .execute(params![fp, kind, site, now])?
            == 1;
        if let Some(uid) = item.source_uid {
            // Latest wins: a server that reuses a UIDL for a new message must
            // not make us skip the new one forever.
            conn.prepare_cached(
                "INSERT INTO ledger_uids (site, source_uid, fingerprint) VALUES (?1, ?2, ?3)
                 ON CONFLICT (site, source_uid) DO UPDATE SET fingerprint = excluded.fingerprint",
            )?
            .execute(params![site, uid, fp])?;
        }
        outcomes.push(if new {
            count_message(conn, config, site, item, now, &mut delta)?
        } else {
            Outcome {
                already_seen: true,
                ..Outcome::default()
            }
        });
    }
    delta.apply(conn)?;
    Ok(outcomes)
}

/// Applies the policy to every recipient of a new message in every site it
/// reaches.
fn count_message(
    conn: &Connection,
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
    // A report naming the same recipient twice is still one bounce for it.
    let mut done = HashSet::new();
    for r in &item.classification.recipients {
        let address = policy::normalize_address(&r.address);
        // Something without an `@` cannot be blocked by a mailer: not counted.
        if !address.contains('@') || !done.insert(address.clone()) {
            continue;
        }
        for &(s, rules) in &sites {
            let before = counter(conn, s, &address)?;
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
                Some(write_event(conn, s, &address, r, item, prev, now)?)
            } else {
                None
            };
            write_counter(conn, s, &address, domain, &d, event, now)?;
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
    conn: &Connection,
    site: &str,
    address: &str,
) -> rusqlite::Result<Option<(Counter, Option<i64>)>> {
    conn.prepare_cached(
        "SELECT bounces, blocked_at IS NOT NULL, last_event FROM counters
         WHERE site = ?1 AND address = ?2",
    )?
    .query_row(params![site, address], |r| {
        let c = Counter {
            bounces: r.get::<_, i64>(0)? as u64,
            blocked: r.get(1)?,
        };
        Ok((c, r.get(2)?))
    })
    .optional()
}

/// Adds the decision to the counter; `event` (when one was written) becomes
/// the head of the counter's event chain.
fn write_counter(
    conn: &Connection,
    site: &str,
    address: &str,
    domain: &str,
    d: &Decision<'_>,
    event: Option<i64>,
    now: Timestamp,
) -> rusqlite::Result<()> {
    // The policy only blocks an address that is not blocked, so taking the
    // new block's columns when there is one never overwrites an older block.
    conn.prepare_cached(
        "INSERT INTO counters
             (site, address, domain, bounces, last_at, blocked_at, block_reason, blocked_by, last_event)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT (site, address) DO UPDATE SET
             bounces = bounces + excluded.bounces,
             last_at = excluded.last_at,
             blocked_at = coalesce(excluded.blocked_at, blocked_at),
             block_reason = coalesce(excluded.block_reason, block_reason),
             blocked_by = coalesce(excluded.blocked_by, blocked_by),
             last_event = coalesce(excluded.last_event, last_event)",
    )?
    .execute(params![
        site,
        address,
        domain,
        i64::from(d.count),
        now,
        d.block.map(|b| b.at),
        d.block.map(|b| b.reason),
        d.block.map(|b| b.by.as_str()),
        event,
    ])?;
    Ok(())
}

/// Appends an event linked to the counter's previous one (`prev`); returns
/// its id.
fn write_event(
    conn: &Connection,
    site: &str,
    address: &str,
    r: &Recipient,
    item: &Item<'_>,
    prev: Option<i64>,
    now: Timestamp,
) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "INSERT INTO events (site, address, reason, status, diagnostic, at, fingerprint, prev)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        site,
        address,
        r.reason.as_str(),
        r.status.as_deref(),
        r.diagnostic.as_deref().map(truncate),
        now,
        &item.fingerprint.0[..],
        prev,
    ])?;
    Ok(conn.last_insert_rowid())
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
