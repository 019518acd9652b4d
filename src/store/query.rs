//! Reads for `stats`: totals, one address, the block list.
//!
//! Totals come from the aggregate tables (see `totals`), so `stats` costs the
//! same on ten addresses and on a million. Only the
//! per-site domain list (`stats --site`) groups `counters` directly.

use rusqlite::{Connection, params};

use crate::policy;
use crate::report::{AddressEvent, AddressSite, AddressStats, DomainStats, SiteStats, Stats};
use crate::time::rfc3339;

/// How many receiving domains `stats` lists.
pub const TOP_DOMAINS: i64 = 20;

/// Totals per site, reason and domain (one site when `site` is given).
pub fn stats(conn: &Connection, site: Option<&str>) -> rusqlite::Result<Stats> {
    let mut out = Stats::default();
    let mut q = conn.prepare_cached(
        "SELECT site, addresses, bounces, blocked FROM site_totals
         WHERE addresses > 0 AND (?1 IS NULL OR site = ?1) ORDER BY site",
    )?;
    let rows = q.query_map([site], |r| {
        Ok(SiteStats {
            site: r.get(0)?,
            addresses: r.get::<_, i64>(1)? as u64,
            bounces: r.get::<_, i64>(2)? as u64,
            blocked: r.get::<_, i64>(3)? as u64,
        })
    })?;
    out.sites = rows.collect::<Result<_, _>>()?;

    let mut q = conn.prepare_cached(
        "SELECT reason, sum(events) FROM reason_totals WHERE ?1 IS NULL OR site = ?1
         GROUP BY reason HAVING sum(events) > 0",
    )?;
    let rows = q.query_map([site], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))
    })?;
    out.reasons = rows.collect::<Result<_, _>>()?;

    let domain = |r: &rusqlite::Row<'_>| {
        Ok(DomainStats {
            domain: r.get(0)?,
            bounces: r.get::<_, i64>(1)? as u64,
        })
    };
    out.domains = match site {
        None => conn
            .prepare_cached(
                "SELECT domain, bounces FROM domain_totals WHERE bounces > 0
                 ORDER BY bounces DESC, domain LIMIT ?1",
            )?
            .query_map([TOP_DOMAINS], domain)?
            .collect::<Result<_, _>>()?,
        Some(s) => conn
            .prepare_cached(
                "SELECT domain, sum(bounces) AS n FROM counters WHERE site = ?1 AND bounces > 0
                 GROUP BY domain ORDER BY n DESC, domain LIMIT ?2",
            )?
            .query_map(params![s, TOP_DOMAINS], domain)?
            .collect::<Result<_, _>>()?,
    };
    Ok(out)
}

/// One address: its counter in every site (or one) and its events, oldest first.
pub fn address(
    conn: &Connection,
    address: &str,
    site: Option<&str>,
) -> rusqlite::Result<AddressStats> {
    let key = policy::normalize_address(address);
    // Probes the primary key (site, address) once per site that has counters.
    let mut q = conn.prepare_cached(&format!(
        "SELECT site, bounces, blocked_at, block_reason FROM counters WHERE {ADDRESS} ORDER BY site"
    ))?;
    let sites = q
        .query_map(params![key, site], |r| {
            let blocked_at: Option<i64> = r.get(2)?;
            Ok(AddressSite {
                site: r.get(0)?,
                bounces: r.get::<_, i64>(1)? as u64,
                blocked: blocked_at.is_some(),
                blocked_at: blocked_at.map(rfc3339),
                block_reason: r.get(3)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    let mut q = conn.prepare_cached(&format!(
        "SELECT site, at, reason, status, diagnostic FROM events WHERE {} ORDER BY at, id",
        events_of(ADDRESS)
    ))?;
    let events = q
        .query_map(params![key, site], |r| {
            Ok(AddressEvent {
                site: r.get(0)?,
                at: rfc3339(r.get(1)?),
                reason: r.get(2)?,
                status: r.get(3)?,
                diagnostic: r.get(4)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok(AddressStats {
        address: key,
        sites,
        events,
    })
}

/// The counter rows of address `?1` in site `?2` (every site when `?2` is
/// NULL): `site IN (sites that have counters)` lets SQLite probe the primary
/// key (site, address) once per site.
pub const ADDRESS: &str =
    "site IN (SELECT site FROM site_totals WHERE ?2 IS NULL OR site = ?2) AND address = ?1";

/// A condition on `events` selecting the events of the counters that the
/// condition `counters` selects: each counter's chain, from its
/// `last_event` back through `prev` (see `schema`), every step a rowid
/// probe, so the cost is the number of those events.
pub fn events_of(counters: &str) -> String {
    format!(
        "id IN (WITH RECURSIVE chain(id) AS (
             SELECT last_event FROM counters WHERE ({counters}) AND last_event IS NOT NULL
             UNION ALL
             SELECT e.prev FROM events AS e JOIN chain AS c ON e.id = c.id WHERE e.prev IS NOT NULL)
         SELECT id FROM chain)"
    )
}

/// Addresses blocked in `site` (or in any site), sorted, each once.
pub fn blocked(conn: &Connection, site: Option<&str>) -> rusqlite::Result<Vec<String>> {
    // The partial index holds blocked rows only; without statistics the
    // planner would rather walk every counter of the site.
    let mut q = conn.prepare_cached(BLOCKED)?;
    q.query_map([site], |r| r.get(0))?.collect()
}

/// The block list query (shared with the query-plan test).
pub const BLOCKED: &str = "SELECT DISTINCT address FROM counters INDEXED BY counters_blocked
     WHERE blocked_at IS NOT NULL AND (?1 IS NULL OR site = ?1) ORDER BY address";
