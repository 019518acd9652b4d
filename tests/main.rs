//! One integration-test binary. Each module owns one area:
//! - `classify`: golden corpus and classifier robustness
//! - `store_cli`: counting, blocking and the subcommands on local sources
//! - `mailbox`: POP3/IMAP end to end against a private Dovecot
//! - `docs`: man page and completions drift, README commands

mod support;

mod classify;
mod docs;
mod faults;
mod mailbox;
mod store_cli;
