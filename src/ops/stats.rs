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
    /// Limit `--blocked` to one site.
    pub site: Option<String>,
}

/// The answer, by mode.
#[derive(Debug, Clone)]
pub enum Report {
    Totals(Stats),
    Addresses(Vec<AddressStats>),
    Blocked(Vec<String>),
}

/// Runs `stats`. Reads only; a database that does not exist yet reads as empty.
pub fn run(opts: &Options) -> Result<Report, super::Error> {
    let store = Store::open(&opts.db)?;
    if opts.blocked {
        return Ok(Report::Blocked(store.blocked(opts.site.as_deref())?));
    }
    if opts.addresses.is_empty() {
        return Ok(Report::Totals(store.stats()?));
    }
    let mut out = Vec::new();
    for a in &opts.addresses {
        out.push(store.address(a)?);
    }
    Ok(Report::Addresses(out))
}
