//! Every output type: `Display` for text, `Serialize` for JSON (SPEC section 6).
//! Renderers take `W: Write`; nothing here reads or writes state.

use std::fmt;

use serde::Serialize;

use crate::message::{Kind, Recipient};

mod json;
pub mod text;

/// What `check` did with one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `--dry-run`: classified only.
    DryRun,
    /// Recorded in the database and left where it was (local file, `after =
    /// "keep"`, or a `not_bounce` left on the server).
    Recorded,
    /// Recorded, then deleted from the server.
    Deleted,
    /// Recorded, then moved to another IMAP folder.
    Moved,
    /// Skipped: the ledger already has it (deleted again if `after = "delete"`).
    AlreadySeen,
    /// Could not be fetched or read; nothing recorded.
    Error,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 6] = [
        Action::DryRun,
        Action::Recorded,
        Action::Deleted,
        Action::Moved,
        Action::AlreadySeen,
        Action::Error,
    ];

    /// The name used in JSON (`action_taken`) and in text lines.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::DryRun => "dry_run",
            Action::Recorded => "recorded",
            Action::Deleted => "deleted",
            Action::Moved => "moved",
            Action::AlreadySeen => "already_seen",
            Action::Error => "error",
        }
    }
}

/// One `{"type":"message",...}` line.
#[derive(Debug, Clone, Serialize)]
pub struct MessageReport {
    #[serde(rename = "type")]
    pub kind_tag: &'static str,
    /// The path given, or `site:protocol://user@host/folder`.
    pub source: String,
    /// POP3 UIDL, IMAP `UIDVALIDITY/UID`, or the position in an mbox/Maildir.
    pub uid: Option<String>,
    pub message_id: Option<String>,
    /// `None` when the message could not be read at all.
    pub kind: Option<Kind>,
    pub recipients: Vec<Recipient>,
    pub action_taken: Action,
    /// Why the classifier decided so, or what went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The closing `{"type":"summary",...}` line.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    #[serde(rename = "type")]
    pub kind_tag: SummaryTag,
    pub messages: u64,
    pub bounces: u64,
    pub delayed: u64,
    pub auto_replies: u64,
    pub complaints: u64,
    pub not_bounces: u64,
    /// Recipient counters incremented.
    pub counted: u64,
    pub newly_blocked: u64,
    pub deleted: u64,
    /// Messages skipped by fingerprint.
    pub already_seen: u64,
    pub errors: u64,
}

/// Serializes as the constant `"summary"`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SummaryTag;

impl Serialize for SummaryTag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("summary")
    }
}

impl Summary {
    /// Counts one classified message by kind.
    pub fn add_kind(&mut self, kind: Kind) {
        self.messages += 1;
        match kind {
            Kind::Bounce => self.bounces += 1,
            Kind::Delayed => self.delayed += 1,
            Kind::AutoReply => self.auto_replies += 1,
            Kind::Complaint => self.complaints += 1,
            Kind::NotBounce => self.not_bounces += 1,
        }
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {} bounces, {} delayed, {} auto-replies, {} complaints, {} not bounces; \
             {} counted, {} newly blocked, {} deleted, {} already seen, {} errors",
            self.messages,
            if self.messages == 1 {
                "message"
            } else {
                "messages"
            },
            self.bounces,
            self.delayed,
            self.auto_replies,
            self.complaints,
            self.not_bounces,
            self.counted,
            self.newly_blocked,
            self.deleted,
            self.already_seen,
            self.errors
        )
    }
}

impl fmt::Display for MessageReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.source)?;
        if let Some(uid) = &self.uid {
            write!(f, "#{uid}")?;
        }
        let kind = self.kind.map_or("unreadable", Kind::as_str);
        write!(f, ": {kind}")?;
        for r in &self.recipients {
            write!(f, " {} {}", r.address, r.reason)?;
            if let Some(s) = &r.status {
                write!(f, " {s}")?;
            }
            match r.hard {
                Some(true) => write!(f, " hard")?,
                Some(false) => write!(f, " soft")?,
                None => {}
            }
        }
        write!(f, " [{}]", self.action_taken.as_str())?;
        if let Some(n) = &self.note {
            write!(f, " ({n})")?;
        }
        Ok(())
    }
}

/// `stats` without an address.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub sites: Vec<SiteStats>,
    /// Counted events per reason.
    pub reasons: std::collections::BTreeMap<String, u64>,
    /// Counted bounces per receiving domain, most first.
    pub domains: Vec<DomainStats>,
}

/// One site's totals.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SiteStats {
    pub site: String,
    /// Addresses with a counter row.
    pub addresses: u64,
    /// Sum of the site's counters.
    pub bounces: u64,
    pub blocked: u64,
}

/// One receiving domain's total.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DomainStats {
    pub domain: String,
    pub bounces: u64,
}

/// `stats ADDRESS`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AddressStats {
    pub address: String,
    pub sites: Vec<AddressSite>,
    pub events: Vec<AddressEvent>,
}

/// One address in one site.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AddressSite {
    pub site: String,
    pub bounces: u64,
    pub blocked: bool,
    /// RFC 3339.
    pub blocked_at: Option<String>,
    pub block_reason: Option<String>,
}

/// One counted event.
#[derive(Debug, Clone, Default, Serialize)]
pub struct AddressEvent {
    pub site: String,
    /// RFC 3339.
    pub at: String,
    pub reason: String,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::Action;

    #[test]
    fn action_text_names_match_json() {
        for a in Action::ALL {
            assert_eq!(serde_json::to_value(a).unwrap(), a.as_str());
        }
    }
}
