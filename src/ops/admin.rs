//! `block` and `reset`: changes by hand, one transaction each.

use std::path::PathBuf;
use std::time::Duration;

use crate::config::Config;
use crate::store::{ResetTarget, RunLock, Store};
use crate::time::Timestamp;

/// `block ADDRESS...`.
#[derive(Debug, Clone)]
pub struct BlockOptions {
    pub db: PathBuf,
    pub site: Option<String>,
    pub addresses: Vec<String>,
    pub reason: String,
    pub wait: Duration,
    pub now: Timestamp,
}

/// Blocks addresses by hand; returns how many were newly blocked.
pub fn block(config: &Config, opts: &BlockOptions) -> Result<u64, super::Error> {
    let site = super::pick_site(config, opts.site.as_deref())?;
    if opts.addresses.is_empty() {
        return Err(super::Error::Usage("no address to block".into()));
    }
    for a in &opts.addresses {
        check_address(a)?;
    }
    let _lock = RunLock::acquire(&opts.db, opts.wait)?;
    let mut store = Store::open(&opts.db)?;
    Ok(store.block(&site.name, &opts.addresses, &opts.reason, opts.now)?)
}

/// `reset ...`.
#[derive(Debug, Clone)]
pub struct ResetOptions {
    pub db: PathBuf,
    /// `None` = every site.
    pub site: Option<String>,
    pub target: ResetTarget,
    pub wait: Duration,
    pub now: Timestamp,
}

/// Zeroes counters and lifts blocks; returns how many rows changed.
pub fn reset(config: &Config, opts: &ResetOptions) -> Result<u64, super::Error> {
    if let Some(name) = &opts.site {
        super::pick_site(config, Some(name))?;
    }
    if let ResetTarget::Addresses(list) = &opts.target {
        for a in list {
            check_address(a)?;
        }
    }
    let _lock = RunLock::acquire(&opts.db, opts.wait)?;
    let mut store = Store::open(&opts.db)?;
    Ok(store.reset(opts.site.as_deref(), &opts.target, opts.now)?)
}

/// A plausible address: one `@` with text on both sides, no spaces.
fn check_address(a: &str) -> Result<(), super::Error> {
    match a.split_once('@') {
        Some((l, d)) if !l.is_empty() && !d.is_empty() && !d.contains('@') && !a.contains(char::is_whitespace) => Ok(()),
        _ => Err(super::Error::Usage(format!("'{a}' is not an email address"))),
    }
}
