//! Pure counting and blocking rules (SPEC section 4): counters, limits and
//! `now` in, decisions out. No I/O.
//!
//! The store asks two questions per recipient of a newly recorded message:
//! which sites does it reach ([`sites_reached`]), and, given that site's
//! rules and the address's current counter there, what happens ([`decide`]).
//! Keeping both here means every rule is unit-tested without a database.

use crate::config::Config;
use crate::message::Kind;
use crate::time::Timestamp;

/// Block reason recorded when a complaint blocks an address.
pub const COMPLAINT_REASON: &str = "feedback";

/// Who made a block; stored with it so that forgetting stale counts
/// (`reset --older-than`) lifts only blocks that counting made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BlockedBy {
    /// The counter reached the site's `bounce_limit`.
    Limit,
    /// A complaint (ARF feedback report).
    Complaint,
    /// `bouncectl block`.
    Manual,
}

impl BlockedBy {
    /// The stable name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            BlockedBy::Limit => "limit",
            BlockedBy::Complaint => "complaint",
            BlockedBy::Manual => "manual",
        }
    }
}

/// One site's counting rules, copied out of the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rules {
    /// Block when the counter reaches this; 0 = never block automatically.
    pub bounce_limit: u32,
    /// A complaint blocks at once.
    pub block_on_complaint: bool,
}

impl Rules {
    /// The rules of the named site. A site that is not (or no longer)
    /// configured still records what reaches it, but blocks nothing
    /// automatically: there is no limit to apply.
    pub fn of(config: &Config, site: &str) -> Rules {
        match config.site(site) {
            Some(s) => Rules {
                bounce_limit: s.bounce_limit,
                block_on_complaint: s.block_on_complaint,
            },
            None => Rules {
                bounce_limit: 0,
                block_on_complaint: false,
            },
        }
    }
}

/// An address's state in one site before the message is applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// Counted bounces so far.
    pub bounces: u64,
    /// Already blocked (by any cause).
    pub blocked: bool,
}

/// A block to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Block<'a> {
    /// Why: the bounce reason that reached the limit, or `feedback`.
    pub reason: &'a str,
    pub by: BlockedBy,
    pub at: Timestamp,
}

/// What one recipient of one message does to one site's counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decision<'a> {
    /// Add one to the counter.
    pub count: bool,
    /// Store an event (site, address, reason, status, diagnostic, time) so
    /// `stats` can explain the counter or block.
    pub event: bool,
    /// Newly block the address in this site.
    pub block: Option<Block<'a>>,
}

/// The sites a message of this kind, received for `site`, reaches.
///
/// A bounce reaches `site`, or with `block_globally` every configured site
/// (each applies its own limit). A complaint reaches only `site`: it is the
/// recipient's answer to that site's mail. Other kinds reach no counter.
pub fn sites_reached<'a>(config: &'a Config, site: &'a str, kind: Kind) -> Vec<&'a str> {
    match kind {
        Kind::Bounce if config.block_globally => {
            let mut sites: Vec<&str> = config.sites.iter().map(|s| s.name.as_str()).collect();
            if !sites.contains(&site) {
                sites.insert(0, site);
            }
            sites
        }
        Kind::Bounce | Kind::Complaint => vec![site],
        Kind::Delayed | Kind::AutoReply | Kind::NotBounce => Vec::new(),
    }
}

/// Applies SPEC section 4 to one recipient in one site.
///
/// `reason` is the recipient's reason (recorded as the block reason when a
/// bounce reaches the limit). An address that is already blocked keeps
/// counting but is never blocked again.
pub fn decide<'a>(
    rules: Rules,
    kind: Kind,
    reason: &'a str,
    before: Counter,
    now: Timestamp,
) -> Decision<'a> {
    match kind {
        Kind::Bounce => {
            let after = before.bounces.saturating_add(1);
            let reached = rules.bounce_limit > 0 && after >= u64::from(rules.bounce_limit);
            Decision {
                count: true,
                event: true,
                block: (reached && !before.blocked).then_some(Block {
                    reason,
                    by: BlockedBy::Limit,
                    at: now,
                }),
            }
        }
        Kind::Complaint => Decision {
            count: false,
            event: true,
            block: (rules.block_on_complaint && !before.blocked).then_some(Block {
                reason: COMPLAINT_REASON,
                by: BlockedBy::Complaint,
                at: now,
            }),
        },
        Kind::Delayed | Kind::AutoReply | Kind::NotBounce => Decision::default(),
    }
}

/// The address as stored and matched: trimmed and lowercased. Operators
/// expect `Kijitora@Example.JP` and `kijitora@example.jp` to be one
/// recipient, even though RFC 5321 lets the local part be case-sensitive.
pub fn normalize_address(address: &str) -> String {
    address.trim().to_lowercase()
}

/// The receiving domain of a normalized address (empty when it has no `@`).
pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Site};

    const NOW: Timestamp = 1_795_449_660;

    fn rules(limit: u32) -> Rules {
        Rules {
            bounce_limit: limit,
            block_on_complaint: true,
        }
    }

    fn counter(bounces: u64, blocked: bool) -> Counter {
        Counter { bounces, blocked }
    }

    fn two_sites(global: bool) -> Config {
        let mut c = Config::builtin();
        c.block_globally = global;
        c.sites[0].name = "a".into();
        c.sites.push(Site {
            name: "b".into(),
            bounce_limit: 2,
            ..c.sites[0].clone()
        });
        c
    }

    #[test]
    fn bounce_below_limit_counts_without_blocking() {
        let d = decide(
            rules(3),
            Kind::Bounce,
            "userunknown",
            counter(1, false),
            NOW,
        );
        assert!(d.count && d.event);
        assert_eq!(d.block, None);
    }

    #[test]
    fn bounce_reaching_limit_blocks_with_its_reason_and_time() {
        let d = decide(
            rules(3),
            Kind::Bounce,
            "mailboxfull",
            counter(2, false),
            NOW,
        );
        assert!(d.count);
        assert_eq!(
            d.block,
            Some(Block {
                reason: "mailboxfull",
                by: BlockedBy::Limit,
                at: NOW
            })
        );
    }

    #[test]
    fn limit_of_one_blocks_on_first_bounce() {
        let d = decide(
            rules(1),
            Kind::Bounce,
            "userunknown",
            Counter::default(),
            NOW,
        );
        assert!(d.block.is_some());
    }

    #[test]
    fn counter_above_lowered_limit_blocks_on_next_bounce() {
        let d = decide(
            rules(2),
            Kind::Bounce,
            "userunknown",
            counter(7, false),
            NOW,
        );
        assert!(d.block.is_some());
    }

    #[test]
    fn limit_zero_never_blocks() {
        let d = decide(
            rules(0),
            Kind::Bounce,
            "userunknown",
            counter(1_000, false),
            NOW,
        );
        assert!(d.count);
        assert_eq!(d.block, None);
    }

    #[test]
    fn blocked_address_keeps_counting_but_is_not_blocked_again() {
        let d = decide(rules(1), Kind::Bounce, "userunknown", counter(5, true), NOW);
        assert!(d.count && d.event);
        assert_eq!(d.block, None);
    }

    #[test]
    fn uncounted_kinds_do_nothing() {
        for kind in [Kind::Delayed, Kind::AutoReply, Kind::NotBounce] {
            assert_eq!(
                decide(rules(1), kind, "vacation", counter(0, false), NOW),
                Decision::default(),
                "{kind:?}"
            );
        }
    }

    #[test]
    fn complaint_blocks_at_once_without_counting() {
        let d = decide(
            rules(5),
            Kind::Complaint,
            "feedback",
            counter(0, false),
            NOW,
        );
        assert!(!d.count);
        assert!(d.event);
        assert_eq!(
            d.block,
            Some(Block {
                reason: COMPLAINT_REASON,
                by: BlockedBy::Complaint,
                at: NOW
            })
        );
    }

    #[test]
    fn complaint_blocks_even_with_limit_zero() {
        let d = decide(
            rules(0),
            Kind::Complaint,
            "feedback",
            counter(0, false),
            NOW,
        );
        assert!(d.block.is_some());
    }

    #[test]
    fn complaint_with_block_on_complaint_false_does_not_block() {
        let r = Rules {
            bounce_limit: 1,
            block_on_complaint: false,
        };
        let d = decide(r, Kind::Complaint, "feedback", counter(0, false), NOW);
        assert!(!d.count);
        assert_eq!(d.block, None);
    }

    #[test]
    fn complaint_on_blocked_address_is_not_a_new_block() {
        let d = decide(rules(5), Kind::Complaint, "feedback", counter(0, true), NOW);
        assert_eq!(d.block, None);
    }

    #[test]
    fn bounce_reaches_only_its_site_by_default() {
        let c = two_sites(false);
        assert_eq!(sites_reached(&c, "b", Kind::Bounce), vec!["b"]);
    }

    #[test]
    fn block_globally_bounce_reaches_every_configured_site() {
        let c = two_sites(true);
        assert_eq!(sites_reached(&c, "b", Kind::Bounce), vec!["a", "b"]);
    }

    #[test]
    fn block_globally_complaint_reaches_only_its_site() {
        let c = two_sites(true);
        assert_eq!(sites_reached(&c, "b", Kind::Complaint), vec!["b"]);
    }

    #[test]
    fn uncounted_kinds_reach_no_site() {
        let c = two_sites(true);
        for kind in [Kind::Delayed, Kind::AutoReply, Kind::NotBounce] {
            assert!(sites_reached(&c, "a", kind).is_empty());
        }
    }

    #[test]
    fn unconfigured_site_records_but_never_blocks() {
        let c = two_sites(true);
        assert_eq!(
            sites_reached(&c, "gone", Kind::Bounce),
            vec!["gone", "a", "b"]
        );
        let r = Rules::of(&c, "gone");
        assert_eq!(r.bounce_limit, 0);
        assert_eq!(
            decide(r, Kind::Complaint, "feedback", Counter::default(), NOW).block,
            None
        );
    }

    #[test]
    fn rules_come_from_the_named_site() {
        let mut c = two_sites(false);
        c.sites[1].block_on_complaint = false;
        assert_eq!(
            Rules::of(&c, "b"),
            Rules {
                bounce_limit: 2,
                block_on_complaint: false
            }
        );
        assert_eq!(
            Rules::of(&c, "a"),
            Rules {
                bounce_limit: 5,
                block_on_complaint: true
            }
        );
    }

    #[test]
    fn addresses_are_matched_case_insensitively() {
        assert_eq!(
            normalize_address(" Kijitora@Example.JP "),
            "kijitora@example.jp"
        );
        assert_eq!(domain_of("a@b@example.org"), "example.org");
        assert_eq!(domain_of("no-at-sign"), "");
    }
}
