//! The aggregate tables behind `stats` (`site_totals`, `reason_totals`,
//! `domain_totals`), kept equal to a `GROUP BY` over `counters` and `events`.
//!
//! Writers collect changes in a [`Delta`] and apply it once, inside their
//! transaction: a batch of 200 bounces then costs a handful of aggregate
//! updates instead of three per bounce (which is what triggers cost, and
//! measurably so). Bulk deletes subtract what they are about to delete
//! with [`subtract`].

use std::collections::HashMap;

use rusqlite::{Connection, Params};

/// Changes to the aggregates, applied with [`Delta::apply`].
#[derive(Debug, Default)]
pub struct Delta {
    /// site -> (addresses, bounces, blocked)
    sites: Vec<(String, (i64, i64, i64))>,
    domains: HashMap<String, i64>,
    /// (site, reason) -> events
    reasons: Vec<((String, String), i64)>,
}

impl Delta {
    /// A new counter row.
    pub fn address_added(&mut self, site: &str) {
        self.site(site).0 += 1;
    }

    /// `n` bounces added to a counter.
    pub fn counted(&mut self, site: &str, domain: &str, n: i64) {
        if n != 0 {
            self.site(site).1 += n;
            match self.domains.get_mut(domain) {
                Some(d) => *d += n,
                None => {
                    self.domains.insert(domain.to_string(), n);
                }
            }
        }
    }

    /// A counter became blocked.
    pub fn blocked(&mut self, site: &str) {
        self.site(site).2 += 1;
    }

    /// An event was stored.
    pub fn event(&mut self, site: &str, reason: &str) {
        match self
            .reasons
            .iter_mut()
            .find(|((s, r), _)| s == site && r == reason)
        {
            // A few sites times the reason vocabulary: a scan is cheaper
            // than hashing two strings.
            Some((_, n)) => *n += 1,
            None => self
                .reasons
                .push(((site.to_string(), reason.to_string()), 1)),
        }
    }

    fn site(&mut self, site: &str) -> &mut (i64, i64, i64) {
        // A few sites: a scan is cheaper than hashing.
        let i = match self.sites.iter().position(|(s, _)| s == site) {
            Some(i) => i,
            None => {
                self.sites.push((site.to_string(), (0, 0, 0)));
                self.sites.len() - 1
            }
        };
        &mut self.sites[i].1
    }

    /// Adds everything to the aggregate tables.
    pub fn apply(self, conn: &Connection) -> rusqlite::Result<()> {
        let mut q = conn.prepare_cached(
            "INSERT INTO site_totals (site, addresses, bounces, blocked) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (site) DO UPDATE SET addresses = addresses + excluded.addresses,
                 bounces = bounces + excluded.bounces, blocked = blocked + excluded.blocked",
        )?;
        for (site, (a, b, k)) in &self.sites {
            q.execute((site, a, b, k))?;
        }
        let mut q = conn.prepare_cached(
            "INSERT INTO domain_totals (domain, bounces) VALUES (?1, ?2)
             ON CONFLICT (domain) DO UPDATE SET bounces = bounces + excluded.bounces",
        )?;
        for (domain, n) in &self.domains {
            q.execute((domain, n))?;
        }
        let mut q = conn.prepare_cached(
            "INSERT INTO reason_totals (site, reason, events) VALUES (?1, ?2, ?3)
             ON CONFLICT (site, reason) DO UPDATE SET events = events + excluded.events",
        )?;
        for ((site, reason), n) in &self.reasons {
            q.execute((site, reason, n))?;
        }
        Ok(())
    }
}

/// Takes the rows about to be deleted out of the aggregates. `counters` and
/// `events` are `WHERE` conditions (constants of this crate, with bound
/// parameters `p`) selecting the counter rows and the event rows that go.
pub fn subtract<P: Params + Clone>(
    conn: &Connection,
    counters: &str,
    events: &str,
    p: P,
) -> rusqlite::Result<()> {
    // (`WHERE` is required before `ON CONFLICT` in an INSERT ... SELECT.)
    conn.prepare_cached(&format!(
        "INSERT INTO site_totals (site, addresses, bounces, blocked)
         SELECT site, -count(*), -sum(bounces), -count(blocked_at) FROM counters WHERE {counters} GROUP BY site
         ON CONFLICT (site) DO UPDATE SET addresses = addresses + excluded.addresses,
             bounces = bounces + excluded.bounces, blocked = blocked + excluded.blocked"
    ))?
    .execute(p.clone())?;
    conn.prepare_cached(&format!(
        "INSERT INTO domain_totals (domain, bounces)
         SELECT domain, -sum(bounces) FROM counters WHERE ({counters}) AND bounces <> 0 GROUP BY domain
         ON CONFLICT (domain) DO UPDATE SET bounces = bounces + excluded.bounces"
    ))?
    .execute(p.clone())?;
    conn.prepare_cached(&format!(
        "INSERT INTO reason_totals (site, reason, events)
         SELECT site, reason, -count(*) FROM events WHERE {events} GROUP BY site, reason
         ON CONFLICT (site, reason) DO UPDATE SET events = events + excluded.events"
    ))?
    .execute(p)?;
    Ok(())
}

/// Recomputes every aggregate from `counters` and `events` (repair, or
/// after a bulk load that bypassed the writers).
pub fn rebuild(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "DELETE FROM site_totals;
         DELETE FROM domain_totals;
         DELETE FROM reason_totals;
         INSERT INTO site_totals (site, addresses, bounces, blocked)
             SELECT site, count(*), sum(bounces), count(blocked_at) FROM counters GROUP BY site;
         INSERT INTO domain_totals (domain, bounces)
             SELECT domain, sum(bounces) FROM counters WHERE bounces <> 0 GROUP BY domain;
         INSERT INTO reason_totals (site, reason, events)
             SELECT site, reason, count(*) FROM events GROUP BY site, reason;",
    )
}
