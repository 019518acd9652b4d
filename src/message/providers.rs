//! Reasons that a provider or an MTA format states by its own conventions,
//! which override the generic tables of [`super::rules`]:
//!
//! - error-code schemes that providers publish and put in their replies
//!   (Orange / La Poste `OFR_506`, `LPN007_510`; Cox `AUP#CXBL`);
//! - reply texts of a receiving provider, recognised by its host name
//!   (Mimecast's SMTP error code list);
//! - the fixed reason texts of MTA formats, recognised by the header fields
//!   or the reporting host they always carry (McAfee, MessageLabs, IMail,
//!   Amazon SES inbound, PowerMTA's bounce categories).
//!
//! The tables follow the providers' documentation as collected by the
//! Sisimai project (BSD-2-Clause), whose reason vocabulary SPEC section 3
//! adopts. Every entry describes a scheme or a format, never one sample.

use std::sync::LazyLock;

use memchr::memmem::Finder;

use super::mime::Headers;
use super::reason::{DOUBLE_SPACE, normalize};
use super::rules::{phrase_matches, status_reason};
use super::{Reason, Recipient, scan};

/// Orange (`OFR`, `OUK`) and La Poste (`LPN`, `LPNAAA`) append a code such
/// as `OFR_506` or `LPN007_510` to their replies; the last three digits
/// name the cause. Codes without a reason of their own are `undefined`.
/// Source: Orange / La Poste postmaster code lists (Sisimai Rhost::FrancePTT).
const FRANCE_PTT_CODES: &[(&str, Reason)] = &[
    ("101", Reason::Blocked),
    ("102", Reason::Blocked),
    ("103", Reason::Blocked),
    ("104", Reason::TooManyConn),
    ("305", Reason::SecurityError),
    ("401", Reason::Blocked),
    ("402", Reason::SecurityError),
    ("403", Reason::Rejected),
    ("405", Reason::Rejected),
    ("415", Reason::Rejected),
    ("416", Reason::UserUnknown),
    ("417", Reason::MailboxFull),
    ("418", Reason::UserUnknown),
    ("420", Reason::Suspend),
    ("421", Reason::Rejected),
    ("426", Reason::Suspend),
    ("505", Reason::SystemError),
    ("506", Reason::SpamDetected),
    ("510", Reason::Blocked),
    ("514", Reason::MesgTooBig),
    ("517", Reason::PolicyViolation),
    ("630", Reason::PolicyViolation),
    ("999", Reason::Blocked),
];

/// Cox's `AUP#...` codes (cox.com "email error codes").
const COX_CODES: &[(&str, Reason)] = &[
    ("cxbl", Reason::Blocked),
    ("cdrbl", Reason::Blocked),
    ("cxdns", Reason::RequirePtr),
    ("cxsndr", Reason::AuthFailure),
    ("cxsmtp", Reason::Rejected),
    ("cxcnct", Reason::TooManyConn),
    ("cxmxrt", Reason::TooManyConn),
    ("cxthrt", Reason::SecurityError),
    ("cxmj", Reason::SecurityError),
    ("ipbl", Reason::Blocked),
    ("urlbl", Reason::SpamDetected),
];

/// A receiving provider's own reply texts, used when the bounce names one
/// of its hosts.
struct Rhost {
    /// Lowercase host-name fragments that identify the provider.
    hosts: &'static [&'static str],
    /// (reason, reply code or 0 for any, lowercase phrase)
    replies: &'static [(Reason, u16, &'static str)],
}

const RHOSTS: &[Rhost] = &[
    Rhost {
        // Mimecast "SMTP error codes" knowledge-base article.
        hosts: &["mimecast.com"],
        replies: &[
            (
                Reason::AuthFailure,
                550,
                "spf sender invalid - envelope rejected",
            ),
            (
                Reason::AuthFailure,
                550,
                "dkim sender invalid - envelope rejected",
            ),
            (
                Reason::AuthFailure,
                550,
                "dmarc sender invalid - envelope rejected",
            ),
            (
                Reason::BadReputation,
                451,
                "internal resources are temporarily unavailable",
            ),
            (
                Reason::BadReputation,
                550,
                "local ct ip reputation - (reject)",
            ),
            (Reason::Blocked, 421, "sender address blocked"),
            (Reason::Blocked, 451, "recipient temporarily unavailable"),
            (Reason::Blocked, 451, "ip temporarily blacklisted"),
            (Reason::MesgTooBig, 554, "maximum email size exceeded"),
            (Reason::NetworkError, 554, "mail loop detected"),
            (Reason::NoRelaying, 451, "open relay not allowed"),
            (Reason::NotAccept, 451, "account inbounds disabled"),
            (Reason::OnHold, 451, "account outbounds disabled"),
            (Reason::OnHold, 451, "hostname is not authorized"),
            (Reason::OnHold, 550, "journal message past expiration"),
            (
                Reason::PolicyViolation,
                550,
                "anti-spoofing policy - inbound not allowed",
            ),
            (
                Reason::PolicyViolation,
                550,
                "rejected by header-based anti-spoofing policy",
            ),
            (
                Reason::PolicyViolation,
                550,
                "message bounced due to content examination policy",
            ),
            (Reason::PolicyViolation, 554, "host network not allowed"),
            (
                Reason::Rejected,
                550,
                "administrative prohibition envelope blocked",
            ),
            (
                Reason::Rejected,
                550,
                "envelope rejected - block policy for envelope from address",
            ),
            (
                Reason::Rejected,
                550,
                "rejected by header-based blocked senders",
            ),
            (
                Reason::Rejected,
                550,
                "rejected by header-based manually blocked senders",
            ),
            (Reason::SecurityError, 535, "incorrect authentication data"),
            (
                Reason::SecurityError,
                553,
                "this route requires encryption (tls)",
            ),
            (
                Reason::SecurityError,
                553,
                "this route requires tls version 1.2 or greater",
            ),
            (
                Reason::SecurityError,
                553,
                "this route requires high-strength ciphers",
            ),
            (
                Reason::SecurityError,
                554,
                "configuration is invalid for this certificate",
            ),
            (
                Reason::SystemError,
                451,
                "unable to process connection at this time",
            ),
            (Reason::SystemError, 451, "message ended early"),
            (Reason::SystemError, 451, "unable to process command"),
            (
                Reason::SystemError,
                451,
                "unable to process an email at this time",
            ),
            (
                Reason::TooManyConn,
                451,
                "account service is temporarily unavailable",
            ),
            (Reason::TooManyConn, 452, "too many recipients"),
            (Reason::TooManyConn, 550, "exceeding outbound thread limit"),
            (Reason::UserUnknown, 501, "invalid address"),
            (Reason::UserUnknown, 503, "user unknown"),
            (Reason::UserUnknown, 550, "invalid recipient"),
            (
                Reason::VirusDetected,
                554,
                "email rejected due to security policies",
            ),
        ],
    },
    Rhost {
        // Yahoo Inc. (MX hosts *.yahoodns.net) "SMTP error codes" page.
        hosts: &["yahoodns.net"],
        replies: &[
            (
                Reason::AuthFailure,
                0,
                "yahoo requires all senders to authenticate with either spf or dkim",
            ),
            (Reason::Blocked, 0, " because the ip is in spamhaus's list;"),
            (
                Reason::Blocked,
                0,
                "not accepted from ip addresses on spamhaus xbl",
            ),
            (Reason::NoRelaying, 0, "relaying denied for "),
            (Reason::NotCompliantRfc, 0, "headers are not rfc compliant"),
            (
                Reason::PolicyViolation,
                0,
                "not accepted for policy reasons",
            ),
            (
                Reason::Rejected,
                0,
                "temporarily deferred due to unexpected volume or user complaints",
            ),
            (Reason::Rejected, 0, "due to unresolvable rfc.5321 domain"),
            (Reason::Rejected, 0, " will be permanently deferred"),
            (Reason::Speeding, 0, "user is receiving mail too quickly"),
            (Reason::Suspend, 0, " is no longer valid."),
            (Reason::Suspend, 0, "this mailbox is disabled"),
            (
                Reason::SyntaxError,
                0,
                "syntax error in parameters or arguments",
            ),
            (Reason::TooManyConn, 0, "max message per connection reached"),
            (Reason::UserUnknown, 0, "dd this user doesn't have a "),
            (Reason::UserUnknown, 0, "mailbox not found"),
        ],
    },
];

/// An MTA format recognised by a header field it always sets, with the
/// reason texts it uses (lowercase; `*` is a gap as in [`super::rules`]).
struct Format {
    /// Header field (lowercase name) and a lowercase fragment of its value
    /// ("" = the field's presence is enough).
    header: (&'static str, &'static str),
    /// A lowercase fragment the delivery-status text must also contain
    /// ("" = none needed).
    dsn: &'static str,
    reasons: &'static [(Reason, &'static [&'static str])],
    /// When none of `reasons` matches, the status code alone decides.
    by_status: bool,
}

const FORMATS: &[Format] = &[
    // McAfee Email Gateway: `X-NAI-Header: Modified by McAfee ...`.
    Format {
        header: ("x-nai-header", "modified by mcafee"),
        dsn: "",
        reasons: &[(
            Reason::UserUnknown,
            &[
                " user (*@*) unknown. ",
                "550 unknown user ",
                "user not exist",
                "no such user",
            ],
        )],
        by_status: false,
    },
    // Symantec MessageLabs: `X-Msg-Ref: server-N.tower-N.messagelabs.com!...`.
    Format {
        header: ("x-msg-ref", "messagelabs.com"),
        dsn: "",
        reasons: &[
            (Reason::UserUnknown, &["542 * rejected", "no such user"]),
            (
                Reason::SecurityError,
                &["please turn on smtp authentication in your mail client"],
            ),
        ],
        by_status: false,
    },
    // Ipswitch IMail Server: `X-Mailer: <SMTP32 vN.NN>`.
    Format {
        header: ("x-mailer", "<smtp32 v"),
        dsn: "",
        reasons: &[
            (Reason::HostUnknown, &["unknown host"]),
            (
                Reason::UserUnknown,
                &["^unknown user", "^invalid final delivery userid"],
            ),
            (Reason::MailboxFull, &["^user mailbox exceeds allowed size"]),
            (
                Reason::VirusDetected,
                &["requested action not taken: virus detected"],
            ),
            (Reason::Expired, &["delivery failed * attempts"]),
        ],
        by_status: false,
    },
    // Trend Micro InterScan MSS: its notice names each failed address in
    // "Unable to deliver message to <...>" when the server gave no reply.
    Format {
        header: ("subject", "could not be delivered"),
        dsn: "interscan messaging security suite",
        reasons: &[(Reason::UserUnknown, &["^unable to deliver message to <"])],
        by_status: false,
    },
    // Lotus Notes (subject "Undeliverable message"): in Japanese, "not in
    // the directory list", in UTF-8 and as the ISO-2022-JP bytes Notes
    // sends (lowercased, as the diagnostic is). Kept out of the shared
    // phrase automaton: these bytes would slow every scan.
    Format {
        header: ("subject", "undeliverable message"),
        dsn: "",
        reasons: &[(
            Reason::UserUnknown,
            &[
                "ディレクトリのリストにありません",
                "%g%#%l%/%h%j$n%j%9%h$k$\"$j$^$;$s",
            ],
        )],
        by_status: false,
    },
    // Zoho Mail: `X-ZohoMail:`; it gives up on unreachable hosts.
    Format {
        header: ("x-zohomail", ""),
        dsn: "",
        reasons: &[(Reason::Expired, &["host not reachable"])],
        by_status: false,
    },
    // Amazon SES receiving (inbound-smtp.<region>.amazonaws.com): its
    // receipt-rule bounce templates.
    Format {
        header: ("x-ses-outgoing", ""),
        dsn: "inbound-smtp.",
        reasons: &[
            (Reason::Filtered, &["mailbox does not exist"]),
            (Reason::MesgTooBig, &["message too large"]),
            (Reason::MailboxFull, &["mailbox full"]),
            (Reason::ContentError, &["message content rejected"]),
        ],
        by_status: true,
    },
];

/// PowerMTA's `X-PowerMTA-BounceCategory` values.
pub(super) fn powermta_category(category: &str) -> Option<Reason> {
    let r = match category.trim().to_ascii_lowercase().as_str() {
        "bad-domain" => Reason::HostUnknown,
        "bad-mailbox" => Reason::UserUnknown,
        "inactive-mailbox" => Reason::Suspend,
        "message-expired" => Reason::Expired,
        "no-answer-from-host" => Reason::NetworkError,
        "policy-related" => Reason::PolicyViolation,
        "quota-issues" => Reason::MailboxFull,
        "routing-errors" => Reason::SystemError,
        "spam-related" => Reason::SpamDetected,
        _ => return None,
    };
    Some(r)
}

/// Gmail's own bounce ("Google tried to deliver your message ...") ends the
/// remote server's reply with `(state N)`, the SMTP stage it reached; the
/// stage says what the refusal was about when the reply carries no specific
/// status code. Source: Gmail bounce format (Sisimai Lhost::Gmail).
const GMAIL_STATES: &[(&str, Reason)] = &[
    ("6", Reason::SystemError),
    ("8", Reason::SystemError),
    ("9", Reason::SystemError),
    ("12", Reason::NoRelaying),
    ("13", Reason::Blocked),
    ("14", Reason::UserUnknown),
    ("15", Reason::Filtered),
    ("17", Reason::Filtered),
    ("18", Reason::Filtered),
];

/// The reason a Gmail `(state N).` names, unless the reply carries a
/// specific enhanced status code (`5.1.1`, not `5.0.0` or `5.7.0`), which
/// then decides as usual.
fn gmail_state(diag: &str) -> Option<Reason> {
    static GMAIL: LazyLock<Finder<'static>> =
        LazyLock::new(|| Finder::new("google tried to deliver your message"));
    static STATE: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("(state "));
    // `(state ` needs a `(`, which most diagnostics lack: one byte
    // search before the phrase searches.
    memchr::memchr(b'(', diag.as_bytes())?;
    GMAIL.find(diag.as_bytes())?;
    let at = STATE.find(diag.as_bytes())? + 7;
    let n: String = diag[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    if !diag[at + n.len()..].starts_with(").") {
        return None;
    }
    let specific = scan::status_code(diag).is_some_and(|s| {
        let mut it = s.split('.').skip(1);
        let subject = it.next().unwrap_or("0");
        let detail = it.next().unwrap_or("0");
        subject != "0" && detail != "0"
    });
    if specific {
        return None;
    }
    GMAIL_STATES.iter().find(|(s, _)| *s == n).map(|(_, r)| *r)
}

/// Could `text` hold an Orange / La Poste code? Every code has a `_`
/// followed by three digits, or a `_` or `-` between three digits on each
/// side: the few `_` and `-` of a diagnostic are cheaper to look at than
/// the four prefix searches [`france_ptt_code`] would make.
fn may_hold_france_ptt_code(text: &[u8]) -> bool {
    let digits = |s: &[u8]| s.len() >= 3 && s[..3].iter().all(u8::is_ascii_digit);
    memchr::memchr2_iter(b'_', b'-', text).any(|i| {
        let after = digits(&text[i + 1..]);
        (text[i] == b'_' && after) || (after && i >= 3 && digits(&text[i - 3..i]))
    })
}

/// The three digits of an Orange / La Poste code in `text` (lowercase).
fn france_ptt_code(text: &str) -> Option<&str> {
    if !may_hold_france_ptt_code(text.as_bytes()) {
        return None;
    }
    // Searchers made once, not at every call (four per recipient).
    static PREFIXES: LazyLock<[(usize, Finder<'static>); 4]> =
        LazyLock::new(|| ["lpnaaa", "lpn", "ofr", "ouk"].map(|p| (p.len(), Finder::new(p))));
    for (len, finder) in PREFIXES.iter() {
        let prefix_len = *len;
        let mut from = 0;
        while let Some(i) = text.as_bytes().get(from..).and_then(|t| finder.find(t)) {
            let at = from + i;
            from = at + prefix_len;
            let before = text[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric()) {
                continue;
            }
            let rest = &text.as_bytes()[from..];
            let digits = |s: &[u8]| s.len() >= 3 && s[..3].iter().all(u8::is_ascii_digit);
            let boundary = |s: &[u8], n: usize| s.get(n).is_none_or(|c| !c.is_ascii_alphanumeric());
            // `_NNN`
            if rest.first() == Some(&b'_') && digits(&rest[1..]) && boundary(rest, 4) {
                return text.get(from + 1..from + 4);
            }
            // `NNN_NNN` or `NNN-NNN`
            if digits(rest)
                && matches!(rest.get(3), Some(b'_' | b'-'))
                && digits(&rest[4..])
                && boundary(rest, 7)
            {
                return text.get(from + 4..from + 7);
            }
        }
    }
    None
}

/// The reason a Cox `AUP#CODE` names.
fn cox_code(text: &str) -> Option<Reason> {
    static AUP: LazyLock<Finder<'static>> = LazyLock::new(|| Finder::new("aup#"));
    // Without a `#` (in nearly every diagnostic) there is nothing to
    // search for.
    memchr::memchr(b'#', text.as_bytes())?;
    let at = AUP.find(text.as_bytes())? + 4;
    let code: String = text[at..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    COX_CODES
        .iter()
        .find(|(c, _)| code.starts_with(c))
        .map(|(_, r)| *r)
}

/// The reason a provider's own code or reply text states, if any.
/// `diag` is the recipient's diagnostic, `context` (lowercase) the
/// delivery-status text or bounce text around it.
fn provider_reason(diag: &str, reply_code: Option<u16>, named: &[bool]) -> Option<Reason> {
    if let Some(code) = france_ptt_code(diag) {
        let r = FRANCE_PTT_CODES
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(Reason::Undefined, |(_, r)| *r);
        return Some(r);
    }
    if let Some(r) = gmail_state(diag) {
        return Some(r);
    }
    if let Some(r) = cox_code(diag) {
        return Some(r);
    }
    let searchers = RHOST_FINDERS.iter().zip(RHOST_REPLY_FINDERS.iter());
    for ((rh, (hosts, phrases)), &in_context) in RHOSTS.iter().zip(searchers).zip(named) {
        if !in_context && !hosts.iter().any(|h| h.find(diag.as_bytes()).is_some()) {
            continue;
        }
        let hit = rh
            .replies
            .iter()
            .zip(phrases)
            .find(|((_, code, _), phrase)| {
                (*code == 0 || reply_code == Some(*code)) && phrase.find(diag.as_bytes()).is_some()
            });
        if let Some(((r, _, _), _)) = hit {
            return Some(*r);
        }
    }
    None
}

/// Searchers for each [`RHOSTS`] entry's reply phrases, built once: a
/// `str::contains` sets up a searcher at every call (about 1,000
/// instructions for these phrases).
static RHOST_REPLY_FINDERS: LazyLock<Vec<Vec<Finder<'static>>>> = LazyLock::new(|| {
    RHOSTS
        .iter()
        .map(|rh| rh.replies.iter().map(|(_, _, p)| Finder::new(p)).collect())
        .collect()
});

/// Searchers for each [`RHOSTS`] entry's host names, built once: the
/// context is long, and `str::contains` would look at every byte of it.
static RHOST_FINDERS: LazyLock<Vec<Vec<Finder<'static>>>> = LazyLock::new(|| {
    RHOSTS
        .iter()
        .map(|rh| rh.hosts.iter().map(Finder::new).collect())
        .collect()
});

/// Which [`RHOSTS`] entries `text` names one of the hosts of.
fn named_in(text: &str) -> [bool; RHOSTS.len()] {
    let mut named = [false; RHOSTS.len()];
    for (named, hosts) in named.iter_mut().zip(RHOST_FINDERS.iter()) {
        *named = hosts.iter().any(|h| h.find(text.as_bytes()).is_some());
    }
    named
}

/// Applies provider codes and format tables to the recipients of one
/// bounce. `context` is the lowercase delivery-status (or bounce) text.
pub(super) fn apply(headers: &Headers, context: &str, recipients: &mut [Recipient]) {
    if recipients.is_empty() {
        return;
    }
    let shown = formats_of(headers, context);
    let formats = FORMATS
        .iter()
        .zip(shown)
        .filter(|&(_, s)| s)
        .map(|(f, _)| f);
    // Which providers the text around the recipients names: once per
    // message, not per recipient (an array on the stack, not a list).
    let named = named_in(context);
    for r in recipients.iter_mut() {
        if matches!(r.reason, Reason::Vacation | Reason::Feedback) {
            continue;
        }
        let diag = normalize_collapsed(r.diagnostic.as_deref().unwrap_or(""));
        let by_format = formats.clone().find_map(|f| {
            f.reasons
                .iter()
                .find(|(_, ps)| ps.iter().any(|p| format_phrase(&diag, p)))
                .map(|(reason, _)| *reason)
                .or_else(|| {
                    f.by_status
                        .then(|| r.status.as_deref().and_then(status_reason))
                        .flatten()
                })
        });
        let Some(reason) = by_format.or_else(|| provider_reason(&diag, r.reply_code, &named))
        else {
            continue;
        };
        set_reason(r, reason);
    }
}

/// Is `name` one of the header fields [`FORMATS`] look at? Spelled out
/// so that a field is told apart by its length and a compare or two.
fn is_format_field(name: &str) -> bool {
    matches!(
        name,
        "x-nai-header" | "x-msg-ref" | "x-mailer" | "subject" | "x-zohomail" | "x-ses-outgoing"
    )
}

/// The [`FORMATS`] a bounce's headers and delivery-status text show, as a
/// flag per format (no list to allocate). One walk over the header fields
/// (not one per format); a format is shown when any value of its field
/// contains its fragment.
fn formats_of(headers: &Headers, context: &str) -> [bool; FORMATS.len()] {
    let search = &*FORMAT_SEARCH;
    let mut shown = [false; FORMATS.len()];
    for (name, value) in headers.iter() {
        if !is_format_field(name) {
            continue;
        }
        for ((f, s), shown) in FORMATS.iter().zip(search).zip(&mut shown) {
            if !*shown && f.header.0 == name && contains_ci_at(value, f.header.1, s.anchor) {
                *shown = true;
            }
        }
    }
    for (s, shown) in search.iter().zip(&mut shown) {
        if let Some(dsn) = &s.dsn {
            *shown = *shown && dsn.find(context.as_bytes()).is_some();
        }
    }
    shown
}

/// How [`formats_of`] looks for a [`Format`]: made once, not per message.
struct FormatSearch {
    /// The byte of the header fragment to look for first (see
    /// [`anchor_of`]).
    anchor: usize,
    /// A searcher for `dsn` (`None` when no text is needed).
    dsn: Option<Finder<'static>>,
}

static FORMAT_SEARCH: LazyLock<Vec<FormatSearch>> = LazyLock::new(|| {
    FORMATS
        .iter()
        .map(|f| FormatSearch {
            anchor: anchor_of(f.header.1),
            dsn: (!f.dsn.is_empty()).then(|| Finder::new(f.dsn)),
        })
        .collect()
});

/// The position in `needle` of the byte least likely to be in a header
/// value: a `u`, `c` or space (the first bytes of most fragments) is in
/// most subjects and would make [`contains_ci_at`] compare often. Ranked
/// roughly by English letter frequency; other punctuation ranks rarest.
fn anchor_of(needle: &str) -> usize {
    const BY_FREQUENCY: &[u8] = b" etaoinsrhldcumfpgwybvkxjqz";
    let rank = |c: u8| match BY_FREQUENCY
        .iter()
        .position(|&f| f == c.to_ascii_lowercase())
    {
        Some(r) => r,
        None if c.is_ascii_digit() || matches!(c, b'.' | b'-') => 10,
        None => BY_FREQUENCY.len(),
    };
    let b = needle.as_bytes();
    // (The first of equally rare bytes.)
    (0..b.len()).rev().max_by_key(|&i| rank(b[i])).unwrap_or(0)
}

/// [`scan::contains_ci`] (`needle` lowercase), looking first for
/// `needle[anchor]` in either case and comparing the window around it:
/// any match has that byte at that place, so no match is missed.
fn contains_ci_at(text: &str, needle: &str, anchor: usize) -> bool {
    let (hay, needle) = (text.as_bytes(), needle.as_bytes());
    let Some(&c) = needle.get(anchor) else {
        return needle.is_empty();
    };
    memchr::memchr2_iter(c, c.to_ascii_uppercase(), hay).any(|i| {
        i.checked_sub(anchor)
            .and_then(|start| hay.get(start..start + needle.len()))
            .is_some_and(|w| w.eq_ignore_ascii_case(needle))
    })
}

/// [`normalize`] for a diagnostic as recipients report it, its words
/// already joined by single spaces: then only the case is left to fold,
/// which `to_ascii_lowercase` does a word of bytes at a time. Any other
/// text (not ASCII, other whitespace, a space at an end or after a space)
/// goes through [`normalize`].
fn normalize_collapsed(diag: &str) -> String {
    let b = diag.as_bytes();
    // One pass the compiler turns into wide instructions (a fold without
    // an early exit): no control byte, no byte past ASCII and no two
    // spaces in a row is the common case, and is collapsed text. Only
    // otherwise are the exact conditions looked at (a vertical tab, say,
    // is no whitespace here).
    let plain = !b
        .iter()
        .fold(false, |bad, &c| bad | !(0x20..0x80).contains(&c))
        && !b
            .iter()
            .zip(b.iter().skip(1))
            .fold(false, |bad, (&x, &y)| bad | ((x == b' ') & (y == b' ')));
    let collapsed = b.first() != Some(&b' ')
        && b.last() != Some(&b' ')
        && (plain
            || diag.is_ascii()
                && memchr::memchr3(b'\n', b'\r', b'\t', b).is_none()
                && memchr::memchr(0x0c, b).is_none()
                && DOUBLE_SPACE.find(b).is_none());
    if collapsed {
        diag.to_ascii_lowercase()
    } else {
        normalize(diag)
    }
}

/// A [`Format`] phrase: `^` at the start anchors it to the start of the
/// diagnostic.
fn format_phrase(diag: &str, pattern: &str) -> bool {
    match pattern.strip_prefix('^') {
        Some(p) => diag.starts_with(p),
        None => phrase_matches(diag, pattern),
    }
}

/// Sets a recipient's reason and the hard flag that goes with it.
pub(super) fn set_reason(r: &mut Recipient, reason: Reason) {
    let permanent = match r.status.as_deref() {
        Some(s) => s.starts_with('5'),
        None => r.reply_code.is_none_or(|c| c >= 500),
    };
    r.reason = reason;
    r.hard = reason.hardness(permanent);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn france_ptt_codes() {
        assert_eq!(france_ptt_code("mail rejete. ofr_506 [506]"), Some("506"));
        assert_eq!(france_ptt_code("please try later. lpn007_510"), Some("510"));
        assert_eq!(france_ptt_code("lpnaaa_108 x"), Some("108"));
        assert_eq!(france_ptt_code("xofr_506"), None);
        assert_eq!(france_ptt_code("ofr_5060"), None);
        assert_eq!(france_ptt_code("no code here"), None);
        assert_eq!(france_ptt_code("ofr-506 ofr_50"), None);
        assert_eq!(france_ptt_code("lpn123-456"), Some("456"));
        assert_eq!(france_ptt_code("ouk_1234 ouk_123"), Some("123"));
    }

    #[test]
    fn gmail_states() {
        let g =
            "google tried to deliver your message, but it was rejected by the recipient domain.";
        assert_eq!(
            gmail_state(&format!(
                "{g} 500 remote server does not support tls (state 6)."
            )),
            Some(Reason::SystemError)
        );
        assert_eq!(
            gmail_state(&format!("{g} 550 550 5.1.1 user unknown (state 18).")),
            None
        );
        assert_eq!(gmail_state("550 no such user (state 18)."), None);
    }

    #[test]
    fn cox_codes() {
        assert_eq!(cox_code("rejected aup#cxbl"), Some(Reason::Blocked));
        assert_eq!(cox_code("aup#ipbl1010"), Some(Reason::Blocked));
        assert_eq!(cox_code("aup#"), None);
    }

    #[test]
    fn format_fields_are_all_listed() {
        for f in FORMATS {
            assert!(is_format_field(f.header.0), "{}", f.header.0);
        }
    }

    /// `provider_reason` as first written, with `str::contains`.
    fn provider_reason_reference(diag: &str, reply_code: Option<u16>) -> Option<Reason> {
        for rh in RHOSTS {
            if !rh.hosts.iter().any(|h| diag.contains(h)) {
                continue;
            }
            let hit = rh.replies.iter().find(|(_, code, phrase)| {
                (*code == 0 || reply_code == Some(*code)) && diag.contains(phrase)
            });
            if let Some((r, _, _)) = hit {
                return Some(*r);
            }
        }
        None
    }

    #[test]
    fn rhost_replies_agree_with_the_reference() {
        for (diag, code) in [
            ("mx.mimecast.com said: 550 invalid recipient", Some(550)),
            ("mx.mimecast.com said: 550 invalid recipient", Some(451)),
            ("mx.mimecast.com said: 451 too many recipients", None),
            ("mimecast.com 452 too many recipients", Some(452)),
            (
                "mta7.am0.yahoodns.net: 554 this mailbox is disabled",
                Some(554),
            ),
            ("yahoodns.net: mailbox not found", None),
            (
                "yahoodns.net: user is receiving mail too quickly",
                Some(421),
            ),
            ("550 invalid recipient", Some(550)),
            ("", None),
        ] {
            assert_eq!(
                provider_reason(diag, code, &[false; RHOSTS.len()]),
                provider_reason_reference(diag, code),
                "{diag:?}"
            );
        }
    }

    #[test]
    fn contains_ci_at_is_contains_ci() {
        let texts = [
            "",
            "u",
            "Undeliverable Message",
            "RE: UNDELIVERABLE MESSAGE!",
            "undeliverable messag",
            "ndeliverable message",
            "vvv undeliverablE message vvv",
            "Mail could not be delivered",
            "could not be deliveredcould not be delivered",
            "<SMTP32 v8.15>",
            "<smtp32 v",
            "smtp32 v",
            "server-7.tower-21.MessageLabs.com!1!2",
            "Modified by McAfee Email Gateway",
            "modified by mcafe",
            "Ünicode undeliverable message é",
        ];
        let mut needles: Vec<&str> = FORMATS.iter().map(|f| f.header.1).collect();
        needles.extend(["v", "ab", "zz"]);
        for needle in needles {
            for at in [anchor_of(needle), 0, needle.len().saturating_sub(1)] {
                for text in texts {
                    assert_eq!(
                        contains_ci_at(text, needle, at),
                        scan::contains_ci(text, needle),
                        "{text:?} {needle:?} {at}"
                    );
                }
            }
        }
        assert_eq!(anchor_of("undeliverable message"), 6);
        assert_eq!(anchor_of(""), 0);
    }

    #[test]
    fn normalize_collapsed_is_normalize() {
        for d in [
            "",
            " ",
            "550 5.1.1 User Unknown",
            " a",
            "a ",
            "a  b",
            "a\tb",
            "a\r\nb",
            "a\u{b}b",
            "a\u{c}b",
            "Boîte PLEINE",
            "a\u{a0}B",
            "a\u{0}B",
            "  ",
            "a b  ",
            "A\u{b}",
            "x\u{1f} y",
            "a  \u{b}",
        ] {
            assert_eq!(normalize_collapsed(d), normalize(d), "{d:?}");
        }
    }

    #[test]
    fn powermta_categories() {
        assert_eq!(powermta_category("bad-mailbox"), Some(Reason::UserUnknown));
        assert_eq!(powermta_category("other"), None);
    }
}
