//! bouncectl: turn bounced mail into per-recipient counters and block lists.
//!
//! How a message flows through the layers:
//!
//! 1. [`mailbox`] is the only code that opens sockets or reads mail files. It
//!    lists a site's mailbox (POP3, IMAP, or local files), fetches messages in
//!    bounded batches and later removes the ones that were recorded.
//! 2. [`message`] is pure: raw bytes in, a [`message::Classification`] out
//!    (kind, recipients, enhanced status, reason, hard/soft).
//! 3. [`policy`] is pure: counters, limits and `now` in, decisions out
//!    (count, block, ignore).
//! 4. [`store`] is the SQLite database: counters, events, blocks and the ledger
//!    of processed messages, one transaction per batch.
//! 5. [`ops`] has one function per subcommand (`check`, `stats`, `block`,
//!    `reset`): options in, a report out. [`report`] renders reports as text or
//!    JSON.
//!
//! [`config`] reads the TOML configuration; [`exit`] maps every error to one
//! sysexits code.

pub mod config;
pub mod exit;
pub mod mailbox;
pub mod message;
pub mod ops;
pub mod policy;
pub mod report;
pub mod store;
pub mod time;
