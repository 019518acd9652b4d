//! `stats`: totals, one address in detail, or the block list.

use std::path::PathBuf;

use crate::report::{AddressStats, Stats};
use crate::store::Store;

/// What `stats` was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub db: PathBuf,
    /// Addresses to show in detail; empty = totals.
    pub addresses: Vec<String>,
    /// `--blocked`: the block list only.
    pub blocked: bool,
    /// Only this site (totals, addresses and `--blocked`).
    pub site: Option<String>,
}

/// The answer, by mode.
#[derive(Debug, Clone)]
pub enum Report {
    Totals(Stats),
    Addresses(Vec<AddressStats>),
    Blocked(Vec<String>),
}

/// Runs `stats`. Reads only: a database that does not exist yet reads as
/// empty and is not created (nor is its directory). `site` limits every mode
/// to one site.
pub fn run(opts: &Options) -> Result<Report, super::Error> {
    let site = opts.site.as_deref();
    let Some(store) = Store::open_existing(&opts.db)? else {
        return Ok(empty(opts));
    };
    if opts.blocked {
        return Ok(Report::Blocked(store.blocked(site)?));
    }
    if opts.addresses.is_empty() {
        return Ok(Report::Totals(store.stats_for(site)?));
    }
    let mut out = Vec::new();
    for a in &opts.addresses {
        out.push(store.address_for(a, site)?);
    }
    Ok(Report::Addresses(out))
}

/// What every mode reports before the first `check`.
fn empty(opts: &Options) -> Report {
    if opts.blocked {
        Report::Blocked(Vec::new())
    } else if opts.addresses.is_empty() {
        Report::Totals(Stats::default())
    } else {
        let one = |a: &String| AddressStats {
            address: crate::policy::normalize_address(a),
            ..AddressStats::default()
        };
        Report::Addresses(opts.addresses.iter().map(one).collect())
    }
}
