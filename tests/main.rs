//! One integration-test binary. Each module owns one area:
//! - `classify`: golden corpus and classifier robustness
//! - `store_cli`: counting, blocking and the subcommands on local sources
//! - `mailbox`: POP3/IMAP at library level against a private Dovecot
//! - `mailbox_cli`: `bouncectl check` end to end against a private Dovecot
//! - `mailbox_scripted`: POP3/IMAP against scripted servers that misbehave
//! - `docs`: man page and completions drift, README commands

mod support;

mod classify;
mod docs;
mod faults;
mod mailbox;
mod mailbox_cli;
mod mailbox_scripted;
mod store_cli;
