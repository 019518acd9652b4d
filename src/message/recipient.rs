//! One recipient's verdict from the evidence a bounce gives: codes found in
//! the server's reply, the SMTP command it answered, the reason tables, and
//! the few provider conventions that override them.

use std::borrow::Cow;
use std::sync::LazyLock;

use super::analyze::cut;
use super::reason::{self, Evidence, normalize};
use super::rules::PieceIndex;
use super::{Reason, Recipient, scan};

/// Most bytes of one recipient's text that the reason tables look at.
pub(super) const MAX_REASON_TEXT: usize = 4 * 1024;

/// Japanese mobile carriers whose servers answer "user unknown" when the
/// subscriber's own receive filter refuses the sender.
const FILTERING_CARRIERS: &[&str] = &["docomo.ne.jp"];

/// Reasons a vendor's format states by itself. Google Groups refuses posts
/// from non-members or to missing groups with a generic notice.
pub(super) fn vendor_reasons(mut recipients: Vec<Recipient>) -> Vec<Recipient> {
    for r in &mut recipients {
        let domain = r.address.rsplit('@').next().unwrap_or("");
        let carrier = FILTERING_CARRIERS.iter().any(|c| {
            domain
                .strip_suffix(c)
                .is_some_and(|d| d.is_empty() || d.ends_with('.'))
        });
        let exact_unknown = r.status.as_deref().is_some_and(|s| s.ends_with(".1.1"));
        // Their filter's reply names no address: "550 : User unknown".
        let anonymous = || {
            let diag = normalize(r.diagnostic.as_deref().unwrap_or(""));
            diag.contains("550 : user unknown") || diag.contains("550: : user unknown")
        };
        if r.reason == Reason::UserUnknown
            && !exact_unknown
            && (carrier && domain == "docomo.ne.jp" || anonymous())
        {
            r.reason = Reason::Filtered;
            r.hard = Some(false);
        }
        if r.address.ends_with("@googlegroups.com")
            && matches!(r.reason, Reason::OnHold | Reason::Undefined)
        {
            r.reason = Reason::Rejected;
            r.hard = Some(false);
        }
    }
    recipients
}

/// Refines a recipient's reason with the rest of the bounce text. Servers
/// often answer "user unknown" for an account that exists but is disabled. When the bounce's own text (`context`, normalised) says the
/// account is disabled or suspended, that is the more specific statement,
/// unless the server itself said x.1.1.
///
/// The other way round: a bare "user unknown" that we could not place
/// (no command, so read as a filter) is an unknown user after all when the
/// reporting MTA states so in words only used for that ("because the
/// address couldn't be found").
pub(super) fn settle_from_context(r: &mut Recipient, context: &str) {
    let suspend_may_settle = r.reason == Reason::UserUnknown
        && !r.status.as_deref().is_some_and(|s| s.ends_with(".1.1"));
    if context.is_empty() || !(suspend_may_settle || r.reason == Reason::Filtered) {
        return;
    }
    let hits = super::rules::scan_context(context);
    if suspend_may_settle && hits.first(Reason::Suspend) {
        r.reason = Reason::Suspend;
        r.hard = Reason::Suspend.hardness(true);
    } else if r.reason == Reason::Filtered && hits.certain_unknown() {
        let diag = normalize(r.diagnostic.as_deref().unwrap_or(""));
        if super::rules::scan(&diag).first(Reason::UserUnknown) {
            r.reason = Reason::UserUnknown;
            r.hard = Reason::UserUnknown.hardness(true);
        }
    }
}

/// `address` lowercased as [`words_beyond`] looks for it in normalised
/// text; most addresses already are (one pass over the bytes, no copy).
fn lowercase_address(address: &str) -> Cow<'_, str> {
    if address
        .bytes()
        .any(|b| b.is_ascii_uppercase() || !b.is_ascii())
    {
        Cow::Owned(address.to_lowercase())
    } else {
        Cow::Borrowed(address)
    }
}

/// `text`, or nothing when it only repeats the address: a bare address line
/// says nothing about why delivery failed. `address` is lowercased (see
/// [`lowercase_address`]): the caller does that once for both its texts.
fn words_beyond<'t>(text: Cow<'t, str>, address: &str) -> Cow<'t, str> {
    // Most texts start with a word that is not the address ("550 ...").
    if text.chars().next().is_some_and(char::is_alphanumeric) && !text.starts_with(address) {
        return text;
    }
    // Is there a word outside the occurrences of the address? Walked
    // from the start, stepping over each occurrence (leftmost first, as
    // `match_indices` finds them): the first other letter answers, and it
    // is seldom far.
    let mut rest: &str = &text;
    if address.is_empty() {
        // (Every position is an empty occurrence: only the letters count.)
        return if rest.chars().any(char::is_alphanumeric) {
            text
        } else {
            Cow::Borrowed("")
        };
    }
    loop {
        if let Some(after) = rest.strip_prefix(address) {
            rest = after;
            continue;
        }
        let mut chars = rest.chars();
        match chars.next() {
            Some(c) if c.is_alphanumeric() => return text,
            Some(_) => rest = chars.as_str(),
            None => return Cow::Borrowed(""),
        }
    }
}

/// Phrases that name the SMTP command a server rejected, in priority
/// order (the first that occurs anywhere wins).
const COMMANDS: &[(&str, &str)] = &[
    ("end of data", "DATA"),
    ("data command", "DATA"),
    ("command data", "DATA"),
    ("[rcpt_to]", "RCPT"),
    ("command rcpt", "RCPT"),
    ("smtp:rcpt", "RCPT"),
    ("rcpt command", "RCPT"),
    ("our rcpt", "RCPT"),
    ("after rcpt", "RCPT"),
    ("mail command", "MAIL"),
    ("after data", "DATA"),
    ("reply to data", "DATA"),
    (">>> data", "DATA"),
    ("rcpt to", "RCPT"),
    (">>> rcpt", "RCPT"),
    ("mail from", "MAIL"),
    (">>> mail", "MAIL"),
    ("initial connection", "CONN"),
    ("connected to", "CONN"),
    ("ehlo", "EHLO"),
    ("helo", "HELO"),
];

/// [`COMMANDS`] in one [`PieceIndex`]: one pass over the text, not one
/// per entry.
static COMMAND_PHRASES: LazyLock<PieceIndex> = LazyLock::new(|| {
    let phrases: Vec<&'static str> = COMMANDS.iter().map(|(p, _)| *p).collect();
    PieceIndex::new(&phrases)
});

/// Builds [`COMMAND_PHRASES`] now rather than at first use.
pub(super) fn prepare() {
    LazyLock::force(&COMMAND_PHRASES);
}

/// The SMTP command a diagnostic says was rejected, when it says so.
pub(super) fn command_in(text: &str) -> Option<&'static str> {
    let mut found = [false; COMMANDS.len()];
    let first = COMMAND_PHRASES.first_found(text.as_bytes(), &mut found);
    first.map(|i| COMMANDS[i].1)
}

/// Builds one recipient from what we know. `diagnostic` is the server's
/// text; `more` is surrounding bounce text used only to find the reason
/// and codes when the diagnostic lacks them.
pub(super) fn recipient(
    address: &str,
    status: Option<&str>,
    action: Option<&str>,
    diag_type: Option<&str>,
    diagnostic: &str,
    more: &str,
) -> Recipient {
    recipient_in(address, status, action, diag_type, diagnostic, more, None)
}

/// [`recipient`] with `more` already normalised by the caller, when it has
/// `more_lower` = `normalize(cut(more, MAX_REASON_TEXT))` at hand.
pub(super) fn recipient_in(
    address: &str,
    status: Option<&str>,
    action: Option<&str>,
    diag_type: Option<&str>,
    diagnostic: &str,
    more: &str,
    more_lower: Option<&str>,
) -> Recipient {
    let address_lower = lowercase_address(address);
    // Reason phrases sit near the start; capping keeps the table scan cheap.
    let diag_norm = words_beyond(
        Cow::Owned(normalize(cut(diagnostic, MAX_REASON_TEXT))),
        &address_lower,
    );
    let more_lower = match more_lower {
        Some(l) => Cow::Borrowed(l),
        None => Cow::Owned(normalize(cut(more, MAX_REASON_TEXT))),
    };
    let more_norm = words_beyond(more_lower, &address_lower);
    // The wider text is the diagnostic, a space and `more_norm`, unless
    // that says nothing new; it is only joined when read (see below and
    // `Evidence::command_more`).
    let more_beyond: &str = if more_norm.is_empty() || diag_norm.contains(&*more_norm) {
        ""
    } else {
        &more_norm
    };
    let diag_code = scan::status_code(&diag_norm);
    // (The wider text is only searched when its code is used.)
    let text_status = || diag_code.or_else(|| scan::status_code(&more_norm));
    // The server's own code in its reply is more precise than a Status
    // field the reporting MTA filled in, unless it is the generic x.0.0.
    let diag_status = diag_code.filter(|s| !s.ends_with(".0.0"));
    let status = match status {
        Some(s) if s.ends_with(".0.0") => text_status().or(Some(s)),
        Some(s) => diag_status.or(Some(s)),
        None => text_status(),
    };
    let diag_reply = scan::reply_code(&diag_norm);
    // An X-Unix diagnostic is a program's exit status, not an SMTP reply.
    let reply_code = if matches!(diag_type, Some("x-unix")) {
        scan::reply_code(&more_norm)
    } else {
        // A failure code anywhere beats a 2xx-looking number in the
        // recipient's own lines ("Size (in bytes): 222").
        match diag_reply {
            Some(d) if d >= 400 => Some(d),
            d => match (d, scan::reply_code(&more_norm)) {
                (Some(_), Some(m)) if m >= 400 => Some(m),
                (d, m) => d.or(m),
            },
        }
    };
    let action = action
        .map(str::to_string)
        .or_else(|| {
            status.map(|s| {
                if s.starts_with('4') {
                    "delayed"
                } else {
                    "failed"
                }
                .to_string()
            })
        })
        .or(Some("failed".into()));
    // The server's own words decide first; the surrounding bounce text
    // (transcripts, other recipients' lines) only when they say nothing.
    let mut ev = Evidence {
        status,
        reply_code,
        text: &diag_norm,
        action: action.as_deref(),
        command_text: &diag_norm,
        command_more: more_beyond,
        diag_type,
        ..Evidence::default()
    };
    let mut reason = reason::decide(&ev);
    let vague = [
        Reason::OnHold,
        Reason::Undefined,
        Reason::SecurityError,
        Reason::SystemError,
        Reason::SyntaxError,
        Reason::Expired,
        Reason::NetworkError,
    ];
    // (When the wider text is the diagnostic itself, the answer would be
    // the same: skip the second scan.)
    if (vague.contains(&reason) || diag_norm.is_empty()) && !more_beyond.is_empty() {
        let text = reason::joined(&diag_norm, more_beyond);
        ev.text = &text;
        let wider = reason::decide(&ev);
        if !matches!(wider, Reason::OnHold | Reason::Undefined) {
            reason = wider;
        }
    }
    let permanent = status.map_or_else(
        || reply_code.is_none_or(|c| c >= 500),
        |s| s.starts_with('5'),
    );
    // When the recipient's own lines carry no failure code but the bounce
    // text has a reply line ("Error message below: 550 - no such user"),
    // that line is the server's answer.
    let own_failure = diag_reply.is_some_and(|c| c >= 400);
    let reply_line = (!own_failure && status.is_none())
        .then(|| {
            scan::lines(more)
                .map(str::trim)
                .find(|l| l.len() > 4 && scan::leading_failure_code(l).is_some())
        })
        .flatten();
    let diagnostic = if let Some(line) = reply_line {
        line
    } else if diagnostic.trim().is_empty() {
        more.trim()
    } else {
        diagnostic.trim()
    };
    let diagnostic = collapse_cut(diagnostic, MAX_DIAGNOSTIC);
    Recipient {
        address: address.to_string(),
        status: status.map(str::to_string),
        reply_code,
        action,
        diagnostic: Some(diagnostic).filter(|d| !d.is_empty()),
        reason,
        hard: reason.hardness(permanent),
    }
}

/// Most bytes of a reported diagnostic.
const MAX_DIAGNOSTIC: usize = 1000;

/// `text`'s words joined by one space, cut to `max` bytes (see [`cut`]).
/// Joining stops once past `max`: with no diagnostic of its own, a
/// recipient reports the whole bounce text, which may be long.
///
/// Words are split where `str::split_whitespace` splits them, but found
/// a stretch at a time: between two whitespace characters other than a
/// space (see [`next_stop`]) the text's words are copied whole, with only
/// its runs of spaces collapsed (see [`push_spaced`]).
fn collapse_cut(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + 1));
    let b = text.as_bytes();
    // `word`: where the current stretch starts; `i`: where to look on from.
    let (mut i, mut word) = (0, 0);
    while out.len() <= max {
        let Some(at) = next_stop(b, i) else {
            break;
        };
        let n = whitespace_len(text, at);
        // (Past a lead byte that starts no whitespace, `i` may stop inside
        // its character: it only marks where to search on.)
        i = at + n.max(1);
        if n > 0 {
            push_spaced(&mut out, &text[word..at]);
            word = i;
        }
    }
    if out.len() <= max {
        push_spaced(&mut out, &text[word..]);
    }
    let end = cut(&out, max).len();
    out.truncate(end);
    out
}

/// Where the first byte of `b[from..]` is that may start whitespace other
/// than a space ([`MAY_START_WHITESPACE`] less the space), if any.
///
/// Eight bytes at a time: a word of bytes that are all in 0x20..=0x7F
/// (printable ASCII, the space, DEL) holds none. In `x - 0x20..20 | x`
/// a byte's high bit is set when it is 0x80 or above, or below 0x20 (the
/// subtraction wraps); a borrow only carries into the next byte from a
/// byte below 0x20, so no other byte is flagged falsely while the word
/// is clean. A flagged word is then looked at byte by byte.
fn next_stop(b: &[u8], from: usize) -> Option<usize> {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    let stop = |c: u8| c != b' ' && MAY_START_WHITESPACE[c as usize];
    let mut i = from;
    while let Some(chunk) = b.get(i..i + 8) {
        let x = u64::from_le_bytes(chunk.try_into().unwrap_or_default());
        if (x.wrapping_sub(ONES * 0x20) | x) & (ONES * 0x80) != 0
            && let Some(k) = chunk.iter().position(|&c| stop(c))
        {
            return Some(i + k);
        }
        i += 8;
    }
    b[i.min(b.len())..]
        .iter()
        .position(|&c| stop(c))
        .map(|k| i + k)
}

/// Appends the words of `stretch` (text whose only whitespace is the
/// space), joined by one space, as [`push_word`] appends one word: its
/// end spaces dropped and each run of spaces inside made one.
fn push_spaced(out: &mut String, stretch: &str) {
    let mut rest = stretch.trim_matches(' ');
    while let Some(k) = reason::DOUBLE_SPACE.find(rest.as_bytes()) {
        push_word(out, &rest[..k]);
        rest = rest[k..].trim_start_matches(' ');
    }
    push_word(out, rest);
}

/// The bytes a whitespace character can start with: ASCII whitespace and
/// the lead bytes of the non-ASCII ones (see [`whitespace_len`]).
const MAY_START_WHITESPACE: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        t[c] = scan::is_ascii_space(c as u8) || matches!(c, 0xC2 | 0xE1..=0xE3);
        c += 1;
    }
    t
};

/// Appends `word` (if any) to `out`, after a space unless it is first.
fn push_word(out: &mut String, word: &str) {
    if word.is_empty() {
        return;
    }
    if !out.is_empty() {
        out.push(' ');
    }
    out.push_str(word);
}

/// The length of the whitespace character (`char::is_whitespace`) that
/// starts at byte `i` of `text`, or 0. Non-ASCII whitespace (U+0085,
/// U+00A0, U+1680, U+2000..U+3000) starts with byte C2, E1, E2 or E3, which
/// is always the first byte of a character: only there is one decoded.
fn whitespace_len(text: &str, i: usize) -> usize {
    match text.as_bytes()[i] {
        b if scan::is_ascii_space(b) => 1,
        0xC2 | 0xE1..=0xE3 => text[i..]
            .chars()
            .next()
            .filter(|c| c.is_whitespace())
            .map_or(0, char::len_utf8),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_beyond_steps_over_each_mention_of_the_address() {
        let w =
            |t: &str, a: &str| words_beyond(Cow::Borrowed(t), &lowercase_address(a)).into_owned();
        assert_eq!(w("<a@b.c>: a@b.c", "a@b.c"), "");
        assert_eq!(w("<a@b.c>: unknown", "a@b.c"), "<a@b.c>: unknown");
        assert_eq!(w("a@b.ca@b.c;", "A@B.C"), "");
        assert_eq!(w("-- ", ""), "");
        assert_eq!(w("-- x", ""), "-- x");
    }

    #[test]
    fn command_in_takes_the_first_command_in_table_order() {
        let by_table = |t: &str| {
            COMMANDS
                .iter()
                .find(|(p, _)| t.contains(p))
                .map(|(_, c)| *c)
        };
        let mut texts = vec![
            String::new(),
            "550 5.1.1 user unknown".to_string(),
            "conversation with mx failed after rcpt to: <a@b.c>, then end of data".to_string(),
            "helo".to_string(),
            "x>>> mail from:<a@b.c>".to_string(),
        ];
        for (i, (p, _)) in COMMANDS.iter().enumerate() {
            let (q, _) = COMMANDS[COMMANDS.len() - 1 - i];
            texts.push(p.to_string());
            texts.push(format!("- {q} -- {p}"));
        }
        for t in &texts {
            assert_eq!(command_in(t), by_table(t), "{t:?}");
        }
    }

    #[test]
    fn collapse_cut_is_join_then_cut() {
        let long = "word  é\t".repeat(300);
        let spaces = "a\u{85}b\u{a0}\u{1680}c\u{2000}d\u{200a}e\u{2028}\u{2029}f\u{202f}g\u{205f}h\u{3000}i\u{b}j\u{c}k\u{1c}l\u{200b}m\u{2030}n\u{3001}o";
        let spaced = format!("{spaces} ").repeat(40);
        // Lone spaces (kept inside a word run) beside other whitespace and
        // beside lead bytes that start none.
        let lone = "one two €three \u{a0}four five\u{2000} six  seven\tx y\n".repeat(60);
        let mixed = "  a  b \t c\u{7f}d\u{1f}e \r\n  f\u{a0} g\u{3000}\u{e9}h  ".repeat(30);
        for text in [
            "",
            mixed.as_str(),
            &mixed[1..],
            &mixed[3..],
            &mixed[5..],
            &mixed[7..],
            "        x",
            "abcdefg  hijklmn\u{85}",
            "a b",
            " a b c ",
            "a b\u{85}c € d\u{3000} e",
            lone.as_str(),
            "  a \n b  ",
            " ",
            "x",
            "日本\u{3000}語 ",
            long.as_str(),
            spaced.as_str(),
        ] {
            for max in [0, 1, 5, 6, 999, 1000, 5000] {
                let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
                assert_eq!(collapse_cut(text, max), cut(&joined, max), "{max}");
            }
        }
    }

    #[test]
    fn collapse_cut_is_join_then_cut_on_mixed_pieces() {
        // Texts of pieces chosen by a fixed pseudo-random sequence: spaces
        // and other whitespace in every order and at every alignment.
        let pieces = [
            " ", "  ", "a", "bc", "\t", "\n", "\u{a0}", "\u{7f}", "\u{3000}", "é", "\x1f",
            "\u{2030}", "word",
        ];
        for text in scan::piece_texts(&pieces, 12345, 2000, 40) {
            let joined = text.split_whitespace().collect::<Vec<_>>().join(" ");
            for max in [0, 3, 8, 1000] {
                assert_eq!(collapse_cut(&text, max), cut(&joined, max), "{text:?}");
            }
        }
    }

    #[test]
    fn whitespace_len_is_char_is_whitespace() {
        for c in (0..=char::MAX as u32).filter_map(char::from_u32) {
            let s = format!("{c}x");
            let want = if c.is_whitespace() { c.len_utf8() } else { 0 };
            assert_eq!(whitespace_len(&s, 0), want, "{c:?}");
        }
    }

    #[test]
    fn a_failure_code_elsewhere_beats_a_number_in_the_details() {
        let more = "Error: Invalid user address\n\nError message below:\n550 - Requested action not taken: no such user here\n";
        let r = recipient(
            "a@example.com",
            None,
            None,
            None,
            "RCPT TO: a@example.com\nSize (in bytes): 222",
            more,
        );
        assert_eq!(r.reply_code, Some(550));
        assert_eq!(
            r.diagnostic.as_deref(),
            Some("550 - Requested action not taken: no such user here")
        );
    }

    #[test]
    fn context_says_disabled_or_certainly_unknown() {
        let mut r = recipient(
            "a@example.jp",
            Some("5.0.0"),
            None,
            None,
            "550 user unknown (in reply to RCPT TO command)",
            "",
        );
        assert_eq!(r.reason, Reason::UserUnknown);
        settle_from_context(&mut r, &normalize("The user(s) account is disabled."));
        assert_eq!((r.reason, r.hard), (Reason::Suspend, Some(false)));

        // x.1.1 from the server outweighs the surrounding words.
        let mut r = recipient(
            "a@example.jp",
            Some("5.1.1"),
            None,
            None,
            "550 5.1.1 user unknown",
            "",
        );
        settle_from_context(&mut r, &normalize("The user(s) account is disabled."));
        assert_eq!(r.reason, Reason::UserUnknown);

        let mut r = recipient(
            "a@example.jp",
            Some("5.0.0"),
            None,
            None,
            "550 <a@example.jp>: User unknown",
            "",
        );
        assert_eq!(r.reason, Reason::Filtered);
        settle_from_context(
            &mut r,
            &normalize("because the address couldn't be found, or is unable to receive mail"),
        );
        assert_eq!((r.reason, r.hard), (Reason::UserUnknown, Some(true)));

        // Without such words a bare "user unknown" stays a filter.
        let mut r = recipient(
            "a@example.jp",
            Some("5.0.0"),
            None,
            None,
            "550 <a@example.jp>: User unknown",
            "",
        );
        settle_from_context(&mut r, &normalize("delivery failed"));
        assert_eq!(r.reason, Reason::Filtered);
    }
}
