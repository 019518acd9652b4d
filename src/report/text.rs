//! Text renderings of the stats reports (tables for people).

use std::fmt::Write;

use super::{AddressStats, Stats};

/// `stats` totals as aligned tables.
pub fn stats(s: &Stats) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{:<30} {:>10} {:>10} {:>10}", "SITE", "ADDRESSES", "BOUNCES", "BLOCKED");
    for site in &s.sites {
        let _ = writeln!(out, "{:<30} {:>10} {:>10} {:>10}", site.site, site.addresses, site.bounces, site.blocked);
    }
    if !s.reasons.is_empty() {
        let _ = writeln!(out, "\n{:<30} {:>10}", "REASON", "EVENTS");
        let mut reasons: Vec<_> = s.reasons.iter().collect();
        reasons.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (r, n) in reasons {
            let _ = writeln!(out, "{r:<30} {n:>10}");
        }
    }
    if !s.domains.is_empty() {
        let _ = writeln!(out, "\n{:<30} {:>10}", "DOMAIN", "BOUNCES");
        for d in &s.domains {
            let _ = writeln!(out, "{:<30} {:>10}", d.domain, d.bounces);
        }
    }
    out.trim_end().to_string()
}

/// One address with its counters and events.
pub fn address(a: &AddressStats) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", a.address);
    if a.sites.is_empty() {
        let _ = writeln!(out, "  no bounces recorded");
    }
    for s in &a.sites {
        let _ = write!(out, "  site {}: {} bounces", s.site, s.bounces);
        if s.blocked {
            let _ = write!(
                out,
                ", blocked {} ({})",
                s.blocked_at.as_deref().unwrap_or("?"),
                s.block_reason.as_deref().unwrap_or("")
            );
        }
        let _ = writeln!(out);
    }
    for e in &a.events {
        let _ = writeln!(
            out,
            "  {} {} {} {} {}",
            e.at,
            e.site,
            e.reason,
            e.status.as_deref().unwrap_or("-"),
            e.diagnostic.as_deref().unwrap_or("")
        );
    }
    out.trim_end().to_string()
}
