//! Deciding a recipient's [`Reason`] from the three things a bounce tells us:
//! the enhanced status code, the SMTP reply code and the diagnostic text.
//!
//! Specific statements beat generic ones: a status such as `5.2.2` or a
//! phrase such as "mailbox full" decides at once (in the order of
//! `FIRST_ORDER`); generic codes (`5.0.0`, `5.7.1`) only decide when no
//! phrase says more.

use super::Reason;
use std::cell::OnceCell;
use std::sync::LazyLock;

use super::recipient::command_in;
use super::rules::{Hits, SECOND_PHRASES, scan, status_reason};

/// What we know about one failed recipient.
#[derive(Debug, Default, Clone)]
pub struct Evidence<'a> {
    /// Enhanced status code, e.g. `5.1.1`.
    pub status: Option<&'a str>,
    /// SMTP reply code.
    pub reply_code: Option<u16>,
    /// The diagnostic text, normalised with [`normalize`].
    pub text: &'a str,
    /// RFC 3464 Action.
    pub action: Option<&'a str>,
    /// The SMTP command the server rejected (`RCPT`, `DATA`, ...), when known.
    pub command: Option<&'a str>,
    /// Without `command`, the text that may name it (see
    /// `Evidence::command`): read only when the decision turns on it.
    pub command_text: &'a str,
    /// More of that text, when not empty: the command is looked for in
    /// `command_text`, a space and this. (Kept apart so that the joined
    /// text is only built when the decision turns on the command.)
    pub command_more: &'a str,
    /// The command found in `command_text`, once looked for.
    pub(super) found_command: OnceCell<Option<&'static str>>,
    /// The Diagnostic-Code type (`smtp`, `x-unix`, ...), lowercase.
    pub diag_type: Option<&'a str>,
}

impl Evidence<'_> {
    /// The rejected command: [`Evidence::command`], or the one that
    /// [`Evidence::command_text`] names (looked for once).
    fn command(&self) -> Option<&str> {
        self.command.or_else(|| {
            *self.found_command.get_or_init(|| match self.command_more {
                "" => command_in(self.command_text),
                more => command_in(&joined(self.command_text, more)),
            })
        })
    }
}

/// `a`, a space and `b`, in one allocation.
pub(super) fn joined(a: &str, b: &str) -> String {
    let mut both = String::with_capacity(a.len() + 1 + b.len());
    both.push_str(a);
    both.push(' ');
    both.push_str(b);
    both
}

/// Reasons whose status code or phrase decides at once, in priority order.
const FIRST_ORDER: &[Reason] = &[
    Reason::MailboxFull,
    Reason::MesgTooBig,
    Reason::ExceedLimit,
    Reason::Suspend,
    Reason::HasMoved,
    Reason::NoRelaying,
    Reason::AuthFailure,
    Reason::UserUnknown,
    Reason::Filtered,
    Reason::RequirePtr,
    Reason::NotCompliantRfc,
    Reason::BadReputation,
    Reason::Rejected,
    Reason::HostUnknown,
    Reason::SpamDetected,
    Reason::Speeding,
    Reason::TooManyConn,
    Reason::Blocked,
];

/// Status-derived reasons that a phrase may still refine.
const REFINABLE: &[Reason] = &[
    Reason::Undefined,
    Reason::OnHold,
    Reason::SystemError,
    Reason::SecurityError,
    Reason::NetworkError,
];

/// Lowercases and collapses whitespace runs to one space (none at either
/// end).
///
/// Whitespace is Unicode's, except that in all-ASCII text a vertical tab
/// (U+000B) is not whitespace (as `u8::is_ascii_whitespace` has it). Done
/// in two passes the compiler can turn into wide instructions for ASCII:
/// fold every character (lowercase, whitespace to a space) with no branch,
/// then drop each space that follows a space, and the ends.
pub fn normalize(text: &str) -> String {
    // Folded as if ASCII, noting on the way whether any byte is not (one
    // pass instead of `str::is_ascii` and then the fold); the rare other
    // text is folded again, by characters.
    let mut high = 0u8;
    let mut out: Vec<u8> = text
        .bytes()
        .map(|b| {
            high |= b;
            fold_ascii(b)
        })
        .collect();
    if high >= 0x80 {
        out = fold_unicode(text);
    }
    collapse_spaces(&mut out);
    if out.last() == Some(&b' ') {
        out.pop();
    }
    if out.first() == Some(&b' ') {
        out.remove(0);
    }
    // A long text is validated with `simdutf8`'s vector instructions and
    // copied, which costs less than `String::from_utf8`'s validation from
    // about 512 bytes on (measured: the copy and its allocation cost about
    // the same whatever the length, the validation grows with it).
    if out.len() >= 512 {
        return simdutf8::basic::from_utf8(&out)
            .map(String::from)
            .unwrap_or_default();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// Finds two spaces; built once (building costs more than most searches).
pub(super) static DOUBLE_SPACE: LazyLock<memchr::memmem::Finder<'static>> =
    LazyLock::new(|| memchr::memmem::Finder::new(b"  "));

/// Keeps one space of each run of spaces, moving the text between runs
/// whole (runs are where lines break, dozens of bytes apart).
fn collapse_spaces(v: &mut Vec<u8>) {
    let finder = &*DOUBLE_SPACE;
    let (mut read, mut write) = (0, 0);
    loop {
        let run = finder.find(&v[read..]).map(|i| read + i);
        // Through the run's first space, or to the end.
        let end = run.map_or(v.len(), |at| at + 1);
        v.copy_within(read..end, write);
        write += end - read;
        let Some(at) = run else { break };
        read = at + 1;
        while v.get(read) == Some(&b' ') {
            read += 1;
        }
    }
    v.truncate(write);
}

/// An ASCII byte lowercased, or a space when it is whitespace
/// (`u8::is_ascii_whitespace`), written without branches.
fn fold_ascii(b: u8) -> u8 {
    let space = (b == b' ') | (b == b'\t') | (b == b'\n') | (b == b'\r') | (b == 0x0c);
    // (Both computed, then chosen: in that form the loop vectorises.)
    let lower = super::scan::lower_byte(b);
    if space { b' ' } else { lower }
}

/// [`fold_ascii`] for text with other characters: whitespace is `char`'s
/// (which adds the vertical tab), other characters go through
/// `char::to_lowercase`. No lowercase contains a space, so collapsing
/// spaces afterwards is safe.
fn fold_unicode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(text.len() + text.len() / 8);
    let mut buf = [0u8; 4];
    let mut i = 0;
    while i < bytes.len() {
        // The ASCII bytes up to the next other character, folded together
        // (most of a mixed text's bytes: markup, addresses, spaces).
        let rest = &bytes[i..];
        let run = rest
            .iter()
            .position(|b| !b.is_ascii())
            .unwrap_or(rest.len());
        out.extend(
            rest[..run]
                .iter()
                .map(|&b| if b == 0x0b { b' ' } else { fold_ascii(b) }),
        );
        i += run;
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        let len = c.len_utf8();
        if is_caseless(c) {
            // Its own bytes, and those of the caseless characters after it
            // (a word of Arabic or Japanese), copied without a search of
            // the lowercase table.
            let mut end = i + len;
            while let Some(next) = text[end..].chars().next().filter(|&n| is_caseless(n)) {
                end += next.len_utf8();
            }
            out.extend_from_slice(&bytes[i..end]);
            i = end;
            continue;
        } else if c.is_whitespace() {
            out.push(b' ');
        } else {
            for l in c.to_lowercase() {
                out.extend_from_slice(l.encode_utf8(&mut buf).as_bytes());
            }
        }
        i += len;
    }
    out
}

/// Is `c` in a range of characters that are their own lowercase and not
/// whitespace? Latin-1's symbols and small letters, Greek and Cyrillic
/// small letters, the scripts from Hebrew to Tibetan (Arabic, Persian,
/// Indic: no case), and the CJK, kana and Hangul blocks: most characters
/// of non-ASCII bounce text, told without `char::to_lowercase`'s binary
/// search. (A test checks every character of these ranges.)
fn is_caseless(c: char) -> bool {
    matches!(
        c,
        '\u{a1}'..='\u{bf}'
            | '\u{d7}'
            | '\u{df}'..='\u{ff}'
            | '\u{3ac}'..='\u{3ce}'
            | '\u{430}'..='\u{45f}'
            | '\u{590}'..='\u{fff}'
            | '\u{3001}'..='\u{9fff}'
            | '\u{ac00}'..='\u{d7a3}'
            | '\u{ff61}'..='\u{ff9f}'
    )
}

/// The reason for one recipient.
pub fn decide(e: &Evidence<'_>) -> Reason {
    let text = e.text;
    let by_code = e.status.and_then(status_reason);
    // The command is looked for only when the decision turns on it.
    let before_data = || {
        matches!(
            e.command(),
            Some("CONN" | "EHLO" | "HELO" | "MAIL" | "RCPT")
        )
    };
    // A full mailbox by its code is the answer whatever the text says (it
    // comes first in `FIRST_ORDER`, and certain "unknown" words yield to
    // it): no phrase scan needed.
    if by_code == Some(Reason::MailboxFull) {
        return Reason::MailboxFull;
    }
    let hits = scan(text);
    if hits.certain_unknown() && !matches!(by_code, Some(Reason::MailboxFull | Reason::Suspend)) {
        return Reason::UserUnknown;
    }
    // "No MX", "couldn't find a mail exchanger": the domain exists but
    // takes no mail, whatever routing code (x.4.4) came with it.
    // (An explicit x.1.2 "bad destination system" stays hostunknown.)
    let routing = e.status.is_some_and(|s| s.get(1..) == Some(".4.4"));
    if routing && hits.second(Reason::NotAccept) {
        return Reason::NotAccept;
    }
    let says_unknown = hits.first(Reason::UserUnknown);
    // A local delivery program's failure (`X-Unix; ...`) is not an SMTP
    // reply: the SMTP phrase tables do not apply to it.
    let smtp = e.diag_type != Some("x-unix");
    for &r in FIRST_ORDER.iter().filter(|_| smtp) {
        match r {
            Reason::UserUnknown => {
                // "User unknown" means an unknown user only when the server
                // said so to RCPT or with x.1.1; after DATA it is a filter
                // speaking (Japanese carriers, per-user filters).
                let by_status = by_code == Some(r) && !other_than_user_unknown(&hits);
                // Without the command we cannot tell; like Sisimai we then
                // read it as a filter (soft), unless the words are certain.
                if by_status || (says_unknown && e.command() == Some("RCPT")) {
                    return r;
                }
            }
            Reason::Filtered => {
                if by_code == Some(Reason::Suspend) {
                    continue;
                }
                // A filtering code still needs filtering words here: the
                // same code also comes with rate limits and the like.
                let says = says_unknown || hits.first(r);
                if says && (by_code == Some(r) || !before_data()) {
                    return r;
                }
            }
            Reason::MesgTooBig if by_code == Some(Reason::ExceedLimit) => {}
            // Before DATA only the code says spam, not the words.
            Reason::SpamDetected => {
                if by_code == Some(r) || (hits.first(r) && !before_data()) {
                    return r;
                }
            }
            _ => {
                if by_code == Some(r) || hits.first(r) {
                    return r;
                }
            }
        }
    }
    let refinable = by_code.is_none_or(|r| REFINABLE.contains(&r) || r == Reason::UserUnknown);
    if !refinable && let Some(r) = by_code {
        return r;
    }
    // Spam and full mailboxes are recognised here too, when the command
    // (say RCPT) kept them from deciding above.
    for r in [Reason::MailboxFull, Reason::SpamDetected] {
        if hits.first(r) {
            return r;
        }
    }
    for (r, _) in SECOND_PHRASES {
        if hits.second(*r) {
            return *r;
        }
    }
    let class = e.status.map(|s| s.get(..3).unwrap_or(s));
    if matches!(class, Some("5.6" | "4.6")) {
        return Reason::ContentError;
    }
    if matches!(class, Some("5.7" | "4.7")) {
        return Reason::SecurityError;
    }
    if matches!(e.diag_type, Some("x-unix" | "x-postfix")) {
        return Reason::MailerError;
    }
    if let Some(r) = by_code.filter(|r| *r != Reason::UserUnknown) {
        return r;
    }
    if matches!(e.reply_code, Some(500..=504))
        || matches!(class, Some("5.5")) && e.status != Some("5.5.0")
    {
        return Reason::SyntaxError;
    }
    if matches!(e.action, Some("delayed" | "expired")) {
        return Reason::Expired;
    }
    if matches!(e.command(), Some("EHLO" | "HELO" | "CONN")) {
        return Reason::Blocked;
    }
    if !text.is_empty() {
        Reason::OnHold
    } else {
        Reason::Undefined
    }
}

/// A 5.1.1 whose text says the real cause is something else.
fn other_than_user_unknown(hits: &Hits) -> bool {
    [
        Reason::NoRelaying,
        Reason::Blocked,
        Reason::MailboxFull,
        Reason::HasMoved,
        Reason::Rejected,
        Reason::Filtered,
        Reason::Speeding,
    ]
    .iter()
    .any(|&r| hits.first(r))
        || hits.second(Reason::NotAccept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(status: &str, text: &str) -> Reason {
        let t = normalize(text);
        decide(&Evidence {
            status: Some(status),
            text: &t,
            ..Evidence::default()
        })
    }

    #[test]
    fn specific_status_decides() {
        assert_eq!(reason("5.2.2", "whatever"), Reason::MailboxFull);
        // (Decided before the text is scanned: no words overrule it.)
        for text in ["user unknown in local recipient table", "user suspended"] {
            for diag_type in [None, Some("x-unix")] {
                let t = normalize(text);
                let r = decide(&Evidence {
                    status: Some("4.2.2"),
                    text: &t,
                    diag_type,
                    ..Evidence::default()
                });
                assert_eq!(r, Reason::MailboxFull, "{text}");
            }
        }
    }

    #[test]
    fn user_unknown_needs_rcpt_or_certain_words() {
        let t = normalize("550 User unknown");
        let at = |command| {
            decide(&Evidence {
                status: Some("5.0.0"),
                text: &t,
                command,
                ..Evidence::default()
            })
        };
        assert_eq!(at(Some("RCPT")), Reason::UserUnknown);
        assert_eq!(at(Some("DATA")), Reason::Filtered);
        assert_eq!(at(None), Reason::Filtered);
        assert_eq!(
            reason("5.0.0", "The recipient name is not recognized"),
            Reason::UserUnknown
        );
    }

    #[test]
    fn generic_status_is_refined_by_text() {
        assert_eq!(reason("5.0.0", "552 Mailbox full"), Reason::MailboxFull);
        assert_eq!(
            reason("5.7.1", "Message rejected as spam"),
            Reason::SpamDetected
        );
    }

    #[test]
    fn normalize_collapses_and_lowercases() {
        assert_eq!(normalize("  550 User\r\n\tUNKNOWN  "), "550 user unknown");
        assert_eq!(normalize(" \t "), "");
        assert_eq!(normalize("Boîte  PLEINE\u{a0}x"), "boîte pleine x");
        assert_eq!(normalize("a\u{b}b"), "a\u{b}b");
        assert_eq!(normalize("é\u{b}B"), "é b");
    }

    /// The straightforward definition [`normalize`] must agree with.
    fn normalize_by_chars(text: &str) -> String {
        let ascii = text.is_ascii();
        let mut out = String::new();
        let mut space = false;
        for c in text.chars() {
            let ws = if ascii {
                c.is_ascii_whitespace()
            } else {
                c.is_whitespace()
            };
            if ws {
                space = true;
                continue;
            }
            if space && !out.is_empty() {
                out.push(' ');
            }
            space = false;
            out.extend(c.to_lowercase());
        }
        out
    }

    #[test]
    fn normalize_agrees_with_the_char_by_char_definition() {
        let pieces = [
            " ", "\t", "\r\n", "\u{b}", "\u{c}", "\u{a0}", "\u{85}", "\u{3000}", "\u{2028}", "A",
            "z", "É", "\u{130}", "Σ", "日本", "5.1.1", "<", "\u{1c}", "ǅ", "@", "[", "`", "Ж", "ж",
            "א",
        ];
        // Every string of up to three pieces.
        let mut texts = vec![String::new()];
        for _ in 0..3 {
            let mut next = Vec::new();
            for t in &texts {
                for p in pieces {
                    next.push(format!("{t}{p}"));
                }
            }
            texts = next;
        }
        for t in &texts {
            assert_eq!(normalize(t), normalize_by_chars(t), "{t:?}");
        }
        // Long texts (validated another way), ASCII or not, ending or
        // starting with whitespace.
        for t in &texts {
            for middle in ["\u{3000}", "\u{b}"] {
                let long = format!("{t} x{}{middle}{t}Y\t", "Ab  \r\n c".repeat(60));
                assert_eq!(normalize(&long), normalize_by_chars(&long), "{long:?}");
            }
        }
    }

    #[test]
    fn caseless_characters_are_their_own_lowercase() {
        for c in (0..=u32::from(char::MAX)).filter_map(char::from_u32) {
            if is_caseless(c) {
                assert!(!c.is_whitespace(), "{c:?}");
                assert!(c.to_lowercase().eq([c]), "{c:?}");
            }
        }
    }

    #[test]
    fn no_evidence_is_undefined() {
        assert_eq!(reason("", ""), Reason::Undefined);
    }
}
