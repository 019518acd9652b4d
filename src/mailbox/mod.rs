//! The only code that touches the outside world for mail: local sources
//! (files, Maildir, mbox, stdin) and server mailboxes (POP3, IMAP over TLS).
//!
//! A server mailbox is driven by `ops::check` in this order, so that nothing
//! is deleted before it is recorded (SPEC section 5):
//! `list` → for each bounded batch: `fetch` → classify → commit → `remove` →
//! ... → `finish` (POP3 QUIT applies the DELEs; IMAP expunges).

pub mod ahead;
pub mod connect;
pub mod imap;
pub mod local;
pub mod pop3;
pub mod sasl;
pub mod secret;

use crate::exit::{Exit, ExitCode};

/// A mailbox problem. Messages name the server: "cannot connect to POP3
/// server mail.example.com:995: ...".
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// TCP connect failed or the server refused service.
    #[error("cannot connect to {server}: {reason}")]
    Unavailable { server: String, reason: String },
    /// The TLS handshake failed (including an untrusted certificate).
    #[error("TLS with {server} failed: {reason}")]
    Tls { server: String, reason: String },
    /// The server refused our credentials.
    #[error("{server} refused login for {user}: {reason}")]
    AuthRefused {
        server: String,
        user: String,
        reason: String,
    },
    /// Timed out, or the connection dropped mid-session: retry later.
    #[error("{server}: {reason}")]
    Temporary { server: String, reason: String },
    /// The server said something we cannot work with.
    #[error("{server}: protocol error: {reason}")]
    Protocol { server: String, reason: String },
    /// The site's settings cannot work (no secret, plaintext refused, ...).
    #[error("{server}: {reason}")]
    Config { server: String, reason: String },
}

impl ExitCode for Error {
    fn exit(&self) -> Exit {
        match self {
            Error::Unavailable { .. } | Error::Tls { .. } | Error::Protocol { .. } => {
                Exit::Unavailable
            }
            Error::AuthRefused { .. } => Exit::NoPerm,
            Error::Temporary { .. } => Exit::TempFail,
            Error::Config { .. } => Exit::Config,
        }
    }
}

/// Messages per batch: one fetch round each, classified while the next is
/// fetched; [`BATCH_BYTES`] keeps memory bounded. (Commits span several
/// batches: `store::TRANSACTION_MESSAGES`.)
pub const BATCH_MESSAGES: usize = 1000;
/// Messages in the first batch: classifying starts after this many reads
/// or fetches instead of a whole batch.
pub const FIRST_BATCH_MESSAGES: usize = 64;
/// Bytes per batch (at least one message): bounds memory however large the
/// mailbox. Read-ahead (`ahead`) holds at most one further batch.
pub const BATCH_BYTES: u64 = 8 * 1024 * 1024;

/// One message on a server, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageRef {
    /// Identity that is stable across sessions and unique across mailboxes:
    /// `pop3:USER@HOST:UIDL` or `imap:USER@HOST/FOLDER;UIDVALIDITY=V;UID=U`.
    pub uid: String,
    /// Size in octets as the server reports it.
    pub size: u64,
    /// POP3 message number or IMAP UID: the handle for this session.
    pub handle: u32,
}

/// A logged-in server mailbox.
pub trait Mailbox {
    /// `pop3s://user@host:995` or `imaps://user@host:993/INBOX`, for reports.
    fn describe(&self) -> String;
    /// Every message currently in the mailbox (folder).
    fn list(&mut self) -> Result<Vec<MessageRef>, Error>;
    /// Raw bytes of these messages, in the same order (pipelined where the
    /// server allows). Callers keep batches bounded.
    fn fetch(&mut self, refs: &[MessageRef]) -> Result<Vec<Vec<u8>>, Error>;
    /// Disposes of recorded messages per the site's `after` (delete or move).
    /// POP3 deletions take effect only at `finish`.
    fn remove(&mut self, refs: &[MessageRef]) -> Result<(), Error>;
    /// Ends the session cleanly (POP3 QUIT, IMAP EXPUNGE + LOGOUT).
    fn finish(self: Box<Self>) -> Result<(), Error>;
}

/// Connects and logs in to a site's mailbox (TLS and authentication per the
/// site's settings). The session runs on a worker thread that reads the
/// next batch ahead ([`ahead::ReadAhead`]).
pub fn open(settings: &crate::config::Mailbox) -> Result<Box<dyn Mailbox>, Error> {
    Ok(match settings.protocol {
        crate::config::Protocol::Pop3 => Box::new(ahead::ReadAhead::new(Box::new(
            pop3::open(settings)?.without_read_ahead(),
        ))),
        crate::config::Protocol::Imap => imap::open(settings)?,
    })
}
