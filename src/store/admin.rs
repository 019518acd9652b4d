//! Changes by hand: `block` and `reset`. Run inside the caller's transaction.

use std::collections::BTreeSet;

use rusqlite::{Connection, params};

use super::ResetTarget;
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
    let mut stmt = conn.prepare_cached(
        "INSERT INTO counters (site, address, domain, bounces, blocked_at, block_reason, blocked_by)
         VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6)
         ON CONFLICT (site, address) DO UPDATE SET
             blocked_at = excluded.blocked_at,
             block_reason = excluded.block_reason,
             blocked_by = excluded.blocked_by
         WHERE blocked_at IS NULL",
    )?;
    let mut n = 0;
    for address in unique(addresses) {
        n += stmt.execute(params![
            site,
            address,
            policy::domain_of(&address),
            now,
            reason,
            BlockedBy::Manual.as_str()
        ])? as u64;
    }
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
            let mut events = conn.prepare_cached(
                "DELETE FROM events WHERE address = ?1 AND (?2 IS NULL OR site = ?2)",
            )?;
            let mut counters = conn.prepare_cached(
                "DELETE FROM counters WHERE address = ?1 AND (?2 IS NULL OR site = ?2)",
            )?;
            let mut n = 0;
            for address in unique(list) {
                events.execute(params![address, site])?;
                n += counters.execute(params![address, site])? as u64;
            }
            Ok(n)
        }
        ResetTarget::All => {
            conn.prepare_cached("DELETE FROM events WHERE ?1 IS NULL OR site = ?1")?
                .execute([site])?;
            Ok(conn
                .prepare_cached("DELETE FROM counters WHERE ?1 IS NULL OR site = ?1")?
                .execute([site])? as u64)
        }
        ResetTarget::OlderThanDays(days) => {
            let cutoff = now - i64::from(*days) * 86_400;
            // Stale: the last event is older than the cutoff. Blocks made by
            // a complaint or by hand are not counts and are never lifted
            // here: the recipient asked not to get mail, or an operator
            // decided; only an explicit `reset ADDRESS` lifts them.
            let stale = "last_at < ?1 AND (?2 IS NULL OR site = ?2)
                         AND (blocked_at IS NULL OR blocked_by = 'limit')";
            conn.prepare_cached(&format!(
                "DELETE FROM events WHERE (site, address) IN (SELECT site, address FROM counters WHERE {stale})"
            ))?
            .execute(params![cutoff, site])?;
            Ok(conn
                .prepare_cached(&format!("DELETE FROM counters WHERE {stale}"))?
                .execute(params![cutoff, site])? as u64)
        }
    }
}

/// Normalized, without duplicates (so counts are per address, not per line).
fn unique(addresses: &[String]) -> BTreeSet<String> {
    addresses
        .iter()
        .map(|a| policy::normalize_address(a))
        .filter(|a| !a.is_empty())
        .collect()
}
