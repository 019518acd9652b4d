//! The pure classifier: raw bytes of one message in, a [`Classification`] out.
//!
//! It reads no clock, opens no file, never panics and never fails: what it
//! cannot read is [`Kind::NotBounce`] with an explanation.
//!
//! Layout: [`mime`] parses headers and parts; [`dsn`] reads RFC 3464 fields;
//! [`vendors`] reads bounce texts that carry no DSN; [`ses`] Amazon SES JSON
//! notifications; [`arf`] feedback reports; [`autoreply`] vacation replies;
//! [`verp`] envelope addresses; [`rules`] holds the status-code and phrase
//! tables and [`reason`] applies them; `recipient` builds each recipient's
//! verdict; `analyze` ties the steps together in SPEC order.

mod analyze;
pub mod arf;
pub mod autoreply;
pub mod dsn;
pub mod mime;
mod providers;
pub mod reason;
mod recipient;
pub mod rules;
pub mod scan;
pub mod ses;
pub mod vendors;
pub mod verp;

use serde::{Deserialize, Serialize};

/// What a message is, as far as counting goes (SPEC section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A permanent or temporary delivery failure: counted.
    Bounce,
    /// A DSN whose Action is `delayed`: not counted.
    Delayed,
    /// Vacation / out-of-office reply: not counted.
    AutoReply,
    /// ARF (RFC 5965) feedback report: blocks at once by default.
    Complaint,
    /// Anything else: left on the server by default.
    NotBounce,
}

impl Kind {
    /// The stable name used in JSON and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bounce => "bounce",
            Kind::Delayed => "delayed",
            Kind::AutoReply => "auto_reply",
            Kind::Complaint => "complaint",
            Kind::NotBounce => "not_bounce",
        }
    }

    /// Inverse of [`Kind::as_str`].
    pub fn parse(s: &str) -> Option<Kind> {
        [
            Kind::Bounce,
            Kind::Delayed,
            Kind::AutoReply,
            Kind::Complaint,
            Kind::NotBounce,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

macro_rules! reasons {
    ($($variant:ident => $name:literal,)*) => {
        /// Why delivery failed, in the vocabulary the Sisimai project
        /// established (SPEC section 3), plus `vacation` and `feedback`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Reason {
            $(#[doc = $name] #[serde(rename = $name)] $variant,)*
        }

        impl Reason {
            /// Every reason, in vocabulary order.
            pub const ALL: &'static [Reason] = &[$(Reason::$variant,)*];

            /// The stable lowercase name used in JSON, the database and config.
            pub fn as_str(self) -> &'static str {
                match self { $(Reason::$variant => $name,)* }
            }
        }
    };
}

reasons! {
    UserUnknown => "userunknown",
    HostUnknown => "hostunknown",
    HasMoved => "hasmoved",
    NotAccept => "notaccept",
    MailboxFull => "mailboxfull",
    ExceedLimit => "exceedlimit",
    MesgTooBig => "mesgtoobig",
    Filtered => "filtered",
    Rejected => "rejected",
    Blocked => "blocked",
    SpamDetected => "spamdetected",
    VirusDetected => "virusdetected",
    PolicyViolation => "policyviolation",
    SecurityError => "securityerror",
    AuthFailure => "authfailure",
    RequirePtr => "requireptr",
    BadReputation => "badreputation",
    NotCompliantRfc => "notcompliantrfc",
    Speeding => "speeding",
    TooManyConn => "toomanyconn",
    RateLimited => "ratelimited",
    NoRelaying => "norelaying",
    Expired => "expired",
    Suspend => "suspend",
    OnHold => "onhold",
    SystemError => "systemerror",
    SystemFull => "systemfull",
    NetworkError => "networkerror",
    MailerError => "mailererror",
    ContentError => "contenterror",
    SyntaxError => "syntaxerror",
    Undefined => "undefined",
    Vacation => "vacation",
    Feedback => "feedback",
}

impl Reason {
    /// Inverse of [`Reason::as_str`].
    pub fn parse(s: &str) -> Option<Reason> {
        Reason::ALL.iter().copied().find(|r| r.as_str() == s)
    }

    /// SPEC section 3: hard only when the address itself is bad — userunknown,
    /// hostunknown, hasmoved, and notaccept with a 5xx code. `None` for
    /// vacation and feedback, where the question does not apply.
    pub fn hardness(self, permanent: bool) -> Option<bool> {
        match self {
            Reason::Vacation | Reason::Feedback => None,
            Reason::UserUnknown | Reason::HostUnknown | Reason::HasMoved => Some(true),
            Reason::NotAccept => Some(permanent),
            _ => Some(false),
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One recipient a message reports on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recipient {
    /// The address, domain lowercased. For an auto-reply the address that
    /// replied; for a complaint the address complained about.
    pub address: String,
    /// Enhanced status code (RFC 3463), e.g. `5.1.1`.
    pub status: Option<String>,
    /// SMTP reply code, e.g. 550.
    pub reply_code: Option<u16>,
    /// RFC 3464 Action: failed, delayed, delivered, relayed, expanded.
    pub action: Option<String>,
    /// The remote server's text.
    pub diagnostic: Option<String>,
    /// Why delivery failed.
    pub reason: Reason,
    /// True only when the address itself is bad; null for vacation/feedback.
    pub hard: Option<bool>,
}

/// The verdict on one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Classification {
    /// What the message is.
    pub kind: Kind,
    /// The message's own Message-ID, without angle brackets.
    pub message_id: Option<String>,
    /// Who the message reports on (empty for `not_bounce`).
    pub recipients: Vec<Recipient>,
    /// ARF Feedback-Type for complaints (abuse, opt-out, ...).
    pub feedback_type: Option<String>,
    /// Why the classifier decided as it did when that is not obvious
    /// (always set for `not_bounce`).
    pub explanation: Option<String>,
}

/// Per-site knobs the classifier needs.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// VERP pattern on the envelope recipient, e.g.
    /// `bounces+{local}={domain}@example.com`.
    pub verp: Option<Verp>,
}

/// A compiled VERP pattern: a literal prefix, `{local}`, a literal separator,
/// `{domain}`, a literal suffix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verp {
    pattern: String,
}

impl Verp {
    /// Checks and compiles a pattern. It must contain `{local}` and `{domain}`
    /// once each and an `@`.
    pub fn parse(pattern: &str) -> Result<Verp, String> {
        for ph in ["{local}", "{domain}"] {
            if pattern.matches(ph).count() != 1 {
                return Err(format!("must contain {ph} exactly once"));
            }
        }
        if !pattern.contains('@') {
            return Err("must be an address pattern containing '@'".into());
        }
        Ok(Verp {
            pattern: pattern.to_string(),
        })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.pattern
    }
}

/// Builds the classifier's phrase automata (about 8 million instructions,
/// once per process) now, on two threads: the phrase index on one, the
/// rest on the other. Otherwise the first [`classify`] builds them while
/// every other classifying thread waits; a caller can run this on a
/// thread of its own while it lists or reads the first messages.
pub fn prepare() {
    std::thread::scope(|s| {
        s.spawn(rules::prepare);
        recipient::prepare();
        vendors::prepare();
    });
}

/// Classifies one message. Never panics, never fails.
pub fn classify(raw: &[u8], opts: &Options) -> Classification {
    analyze::run(raw, opts)
}
