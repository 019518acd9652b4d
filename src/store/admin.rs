//! Changes by hand: `block` and `reset`. Run inside the caller's transaction.

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, params};

use super::ResetTarget;
use super::query;
use super::totals::{self, Delta};
use crate::policy::{self, BlockedBy};
use crate::time::Timestamp;

/// Blocks each address in `site` unless it is blocked already; returns how
/// many were newly blocked.
pub fn block(
    conn: &Connection,
    site: &str,
    addresses: &[String],
    reason: &str,
    now: Timestamp,
) -> rusqlite::Result<u64> {
    let mut delta = Delta::default();
    let mut n = 0;
    for address in unique(addresses) {
        let blocked: Option<bool> = conn
            .prepare_cached(
                "SELECT blocked_at IS NOT NULL FROM counters WHERE site = ?1 AND address = ?2",
            )?
            .query_row(params![site, address], |r| r.get(0))
            .optional()?;
        if blocked == Some(true) {
            continue; // keeps its first reason and time
        }
        conn.prepare_cached(
            "INSERT INTO counters (site, address, domain, bounces, blocked_at, block_reason, blocked_by)
             VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6)
             ON CONFLICT (site, address) DO UPDATE SET
                 blocked_at = excluded.blocked_at,
                 block_reason = excluded.block_reason,
                 blocked_by = excluded.blocked_by",
        )?
        .execute(params![
            site,
            address,
            policy::domain_of(&address),
            now,
            reason,
            BlockedBy::Manual.as_str()
        ])?;
        if blocked.is_none() {
            delta.address_added(site);
        }
        delta.blocked(site);
        n += 1;
    }
    delta.apply(conn)?;
    Ok(n)
}

/// Forgets counters (and their events) in `site` or every site; returns how
/// many (site, address) rows went.
pub fn reset(
    conn: &Connection,
    site: Option<&str>,
    target: &ResetTarget,
    now: Timestamp,
) -> rusqlite::Result<u64> {
    match target {
        ResetTarget::Addresses(list) => {
            let events = query::events_of(query::ADDRESS);
            let mut n = 0;
            for address in unique(list) {
                n += delete(conn, query::ADDRESS, &events, params![address, site])?;
            }
            Ok(n)
        }
        ResetTarget::All => {
            let rows = "?1 IS NULL OR site = ?1";
            delete(conn, rows, rows, params![site])
        }
        ResetTarget::OlderThanDays(days) => {
            let cutoff = now - i64::from(*days) * 86_400;
            // Stale: the last event is older than the cutoff. Blocks made by
            // a complaint or by hand are not counts and are never lifted
            // here: the recipient asked not to get mail, or an operator
            // decided; only an explicit `reset ADDRESS` lifts them.
            let stale = "last_at < ?1 AND (?2 IS NULL OR site = ?2)
                         AND (blocked_at IS NULL OR blocked_by = 'limit')";
            let events = query::events_of(stale);
            delete(conn, stale, &events, params![cutoff, site])
        }
    }
}

/// Deletes the counter rows and event rows the two conditions select (both
/// over the same parameters), keeping the aggregates right; returns how
/// many counter rows went.
fn delete(
    conn: &Connection,
    counters: &str,
    events: &str,
    p: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<u64> {
    totals::subtract(conn, counters, events, p)?;
    conn.prepare_cached(&format!("DELETE FROM events WHERE {events}"))?
        .execute(p)?;
    Ok(conn
        .prepare_cached(&format!("DELETE FROM counters WHERE {counters}"))?
        .execute(p)? as u64)
}

/// Normalized, without duplicates (so counts are per address, not per line).
fn unique(addresses: &[String]) -> BTreeSet<String> {
    addresses
        .iter()
        .map(|a| policy::normalize_address(a))
        .filter(|a| !a.is_empty())
        .collect()
}
