//! Bounces that carry no DSN: the human-readable texts of qmail, Exim,
//! Sendmail, Exchange, Gmail, Yahoo and the rest. They differ in wording but
//! share a shape — an introduction, then each failed address followed by the
//! server's reply, then a separator and the returned message — so one
//! scanner driven by the tables below reads them all.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
use memchr::memmem::Finder;

use super::mime::{self, Headers};
use super::scan;

/// Lines (lowercase substrings) that start the returned original message in
/// a plain-text bounce, wherever they appear.
const ORIGINAL_MARKERS: &[&str] = &[
    "below this line is a copy of the message",
    "original message follows",
    "this is a copy of the message",
    "the header of the original message is following",
    "unsent message below",
    "content-type: message/rfc822",
    "headers of the original message",
    "undelivered message headers",
    "message headers follow",
    "included is a copy of the message",
    "here is a copy of the first part of the message",
    "your message reads (in part)",
    "original mail as follows",
];

/// Words that start the returned message only on a separator line such as
/// `------ Original message ------`.
const SEPARATOR_WORDS: &[&str] = &[
    "original message",
    "returned message",
    "original mail",
    "message header",
    "the header of the message",
    "message text follows",
    "rfc822",
];

/// Phrases (lowercase) that only bounce texts use; one of them, a
/// mailer-daemon sender or a bounce subject marks a message as a bounce.
const BOUNCE_PHRASES: &[&str] = &[
    "this is the mail system at host",
    "i'm afraid i wasn't able to deliver",
    "this message was created automatically by mail delivery software",
    "the following addresses had permanent fatal errors",
    "delivery to the following recipient failed",
    "delivery to the following recipients failed",
    "could not be delivered to",
    "your message did not reach some or all of the intended recipients",
    "delivery has failed to these recipients",
    "your message could not be delivered",
    "message could not be delivered",
    "undeliverable",
    "delivery failure",
    "permanent error",
    "permanent failure",
    "unable to deliver",
    "failed to deliver",
    "was not delivered",
    "returned to sender",
    "delivery status notification",
    "smtp error from remote",
    "transcript of session follows",
    "the following message to",
    "error for recipient",
    "could not deliver",
    "mail delivery failed",
    "failed recipient",
    "message you sent",
    "error message below",
];

/// Phrases (lowercase) that on their own mark a bounce: MTAs' fixed
/// introductions and transcript markers that people do not write.
const STRONG_BOUNCE_PHRASES: &[&str] = &[
    "this is the mail system at host",
    "i'm afraid i wasn't able to deliver",
    "this message was created automatically by mail delivery software",
    "the following addresses had permanent fatal errors",
    "the following addresses had delivery errors",
    "delivery to the following recipient failed",
    "did not reach the following recipient",
    "an error has occurred while attempting to deliver a message",
    "this is the mailer-daemon",
    "delivery has failed to these recipients",
    "smtp error from remote mail server",
    "transcript of session follows",
    "could not be delivered to: <",
    "unable to deliver message to",
    "sent <<< rcpt to:",
    ">>> rcpt to:",
    "duplicated message-id in <",
];

/// Phrases (lowercase) of delay warnings: the MTA still holds the message.
const DELAY_PHRASES: &[&str] = &[
    "this is only a temporary failure report",
    "delivery attempts will continue",
    "will continue trying to deliver",
    "will keep trying to deliver",
    "no action is required on your part",
    "this is a warning message only",
    "you do not need to resend your message",
    "you do not need to resend the message",
    "you don't need to resend",
];

/// True when a bounce text says the message is only delayed.
pub fn is_delay_warning(text_lower: &str) -> bool {
    any_phrase(&DELAY_TEXT, text_lower)
}

/// Subjects (lowercase substrings) of bounces.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliver",
    "undelivered",
    "delivery status",
    "delivery failure",
    "delivery failed",
    "delivery notification",
    "delivery problem",
    "failure notice",
    "failed delivery",
    "mail delivery",
    "returned mail",
    "return mail",
    "mail system error",
    "non remis",
    "nondeliverable",
    "non-deliverable",
    "not delivered",
    "could not be delivered",
    "bounce",
    "rejected",
    "error",
    "failure",
    "fail",
    "warning",
    "delayed",
    "unzustellbar",
    "no se puede entregar",
    "メール配信",
    "配信",
];

/// Local parts (lowercase) of bounce senders.
const DAEMON_LOCALS: &[&str] = &[
    "mailer-daemon",
    "mailer_daemon",
    "maildaemon",
    "mail-daemon",
    "postmaster",
    "post_master",
    "mdaemon",
    "bounce",
    "bounces",
    "nobody",
];

/// Header-like lines whose addresses never name the failed recipient.
const SKIP_LINE_PREFIXES: &[&str] = &[
    "from:",
    "reply-to:",
    "sender:",
    "return-path:",
    "message-id:",
    "in-reply-to:",
    "references:",
    "received:",
    "x-",
    "dkim-signature:",
    "list-",
    "subject:",
    "mail from",
    ">>> mail from",
    "envelope-from",
    "errors-to:",
    "authentication-results:",
    "arc-",
    "reporting-mta:",
    "received-from-mta:",
];

/// How strongly a message looks like a bounce (besides DSN parts).
pub fn bounce_signs(h: &Headers, text_lower: &str) -> Option<&'static str> {
    if h.get("x-failed-recipients").is_some() {
        return Some("X-Failed-Recipients header");
    }
    // The strong phrases decide alone: looked for before the headers are
    // read.
    if STRONG_TEXT
        .as_ref()
        .is_some_and(|ac| ac.is_match(text_lower))
    {
        return Some("a mail system's bounce text");
    }
    let from = h.get("from").unwrap_or("").to_ascii_lowercase();
    let from_addr = scan::header_address(&from).unwrap_or_default();
    let local = from_addr.split('@').next().unwrap_or("");
    let daemon = DAEMON_LOCALS.iter().any(|d| {
        local
            .strip_prefix(d)
            .is_some_and(|t| t.is_empty() || t.starts_with('-'))
    }) || from.contains("mailer-daemon")
        || from.contains("mail delivery")
        || from.contains("postmaster");
    let subject = h.get("subject").unwrap_or("").to_lowercase();
    let bounce_subject = any_phrase(&SUBJECT_TEXT, &subject);
    // An empty From (`<>`) is how some MTAs sign bounces.
    let daemon = daemon || from.trim() == "<>" || from.ends_with("<>");
    // A bounce phrase or a status code in the text; only looked for when
    // the answer depends on it.
    let text_sign =
        || any_phrase(&BOUNCE_TEXT, text_lower) || scan::status_code(text_lower).is_some();
    match (daemon, bounce_subject) {
        (true, true) => Some("sent by a mail system with a bounce text"),
        (true, false) if text_sign() => Some("sent by a mail system with a bounce text"),
        (false, true) if text_sign() => Some("bounce subject and text"),
        _ => None,
    }
}

/// Cuts `text` at the first line that starts the returned message; returns
/// the error part and the rest.
pub fn split_original(text: &str) -> (&str, &str) {
    let (Some(filter), Some(ac)) = (MARKER_PIECES_AC.as_ref(), MARKERS.as_ref()) else {
        return (text, "");
    };
    // Lowercased ASCII keeps every byte where it was, so matches in the
    // copy are matches in `text`; without case folding in the automaton,
    // its prefilter can skip most of the text.
    let lower = ascii_lowercase(text);
    let mut from = 0;
    // The pieces find the lines that may hold a marker; only on those does
    // the marker automaton run. No marker spans a line end, so its matches
    // in one line are those a walk over the whole text finds there.
    while let Some(piece) = filter.find(Input::new(&lower).range(from..)) {
        let start = rfind_byte(&lower[..piece.start()], b'\n').map_or(0, |i| i + 1);
        let end = mime::find_byte(&lower[piece.end()..], b'\n')
            .map_or(text.len(), |i| piece.end() + i + 1);
        from = end;
        // The first line never starts the returned message.
        if start == 0 {
            continue;
        }
        let line = scan::trim(&text[start..end]);
        let separator = ["--", "==", "__", "**"].iter().any(|p| line.starts_with(p));
        for m in ac.find_iter(Input::new(&lower).range(start..end)) {
            let is_marker = if m.pattern().as_usize() < ORIGINAL_MARKERS.len() {
                line.len() < 120
            } else {
                separator
            };
            if is_marker {
                return (&text[..start], &text[end..]);
            }
        }
    }
    (text, "")
}

/// `text.to_ascii_lowercase()` as bytes, in a loop the compiler turns into
/// vector instructions ([`scan::lower_byte`]): whole bounce texts are
/// lowercased.
fn ascii_lowercase(text: &str) -> Vec<u8> {
    text.bytes().map(scan::lower_byte).collect()
}

/// [`ORIGINAL_MARKERS`] then [`SEPARATOR_WORDS`] (all lowercase), matched
/// in lowercased text.
///
/// This and the other automata here are contiguous NFAs, not the DFAs the
/// builder picks for few patterns: a DFA's build (some 2.6 million
/// instructions for these, once in every run) costs more than all its
/// searches save, since they run on a few short lines or mostly in the
/// vector prefilter, which is the same for both kinds (measured: whole
/// run 502.1M -> 497.8M instructions for the three).
static MARKERS: LazyLock<Option<AhoCorasick>> =
    LazyLock::new(|| automaton(ORIGINAL_MARKERS.iter().chain(SEPARATOR_WORDS)));

/// The automata here: leftmost-first (the standard match kind gets no
/// vector prefilter), contiguous NFAs (see [`MARKERS`]).
fn automaton<I, P>(patterns: I) -> Option<AhoCorasick>
where
    I: IntoIterator<Item = P>,
    P: AsRef<[u8]>,
{
    AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostFirst)
        .kind(Some(AhoCorasickKind::ContiguousNFA))
        .build(patterns)
        .ok()
}

/// Pieces of the markers: each marker holds one. They start with rarer
/// letters than the markers (`the`, `this`, `you`, `mes`sage are in every
/// bounce text), so the prefilter stops at far fewer places; a line with
/// none of them holds no marker.
const MARKER_PIECES: &[&str] = &[
    "copy of",
    "iginal m",
    "unsent m",
    "rfc822",
    "header",
    "(in part)",
    "urned m",
    "xt follows",
];

/// [`MARKER_PIECES`] in one [`automaton`].
static MARKER_PIECES_AC: LazyLock<Option<AhoCorasick>> = LazyLock::new(|| automaton(MARKER_PIECES));

/// A searcher for each of `phrases`. A few dozen phrases over a text of a
/// few hundred bytes: memmem's vector search for each (it jumps to a pair
/// of the phrase's rarer bytes) costs less than one automaton that walks
/// every byte, or whose prefilter stops at every `delivery`, `you` and
/// `this` in a bounce text.
fn finders(phrases: &[&'static str]) -> Vec<Finder<'static>> {
    phrases.iter().map(|&p| Finder::new(p)).collect()
}

/// Does `text` contain any of the phrases `finders` look for?
fn any_phrase(finders: &[Finder<'_>], text: &str) -> bool {
    finders.iter().any(|f| f.find(text.as_bytes()).is_some())
}

/// [`BOUNCE_PHRASES`], a searcher for each.
static BOUNCE_TEXT: LazyLock<Vec<Finder<'static>>> = LazyLock::new(|| finders(BOUNCE_PHRASES));
/// [`STRONG_BOUNCE_PHRASES`] in one automaton, unlike the other phrase
/// lists: they are looked for in every bounce text without a DSN, mostly
/// all in vain, and seventeen memmem searches of the whole text (each
/// with its own setup, several of them two-way) cost more than one pass
/// of the automaton's vector prefilter, even though it stops at each
/// `this` and `the ` (measured: whole run 504.4M -> 502.1M
/// instructions). See [`automaton`].
static STRONG_TEXT: LazyLock<Option<AhoCorasick>> =
    LazyLock::new(|| automaton(STRONG_BOUNCE_PHRASES));

/// [`BOUNCE_SUBJECTS`], a searcher for each (made once, not per message
/// as `str::contains` makes its own).
static SUBJECT_TEXT: LazyLock<Vec<Finder<'static>>> = LazyLock::new(|| finders(BOUNCE_SUBJECTS));

/// [`DELAY_PHRASES`], a searcher for each.
static DELAY_TEXT: LazyLock<Vec<Finder<'static>>> = LazyLock::new(|| finders(DELAY_PHRASES));

/// Builds the automaton and searchers above now rather than at first use.
pub(super) fn prepare() {
    LazyLock::force(&MARKERS);
    LazyLock::force(&MARKER_PIECES_AC);
    LazyLock::force(&DELAY_TEXT);
    LazyLock::force(&BOUNCE_TEXT);
    LazyLock::force(&STRONG_TEXT);
    LazyLock::force(&SUBJECT_TEXT);
}

/// The last position of `byte` in `hay`: [`mime::find_byte`] backwards.
/// The searches here go back a line or so, hundreds of thousands of
/// times in a run: memchr's SSE2 searcher inlined costs less than
/// `memrchr`'s runtime dispatch to AVX2 on such short stretches.
#[inline]
fn rfind_byte(hay: &[u8], byte: u8) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(sse2) = memchr::arch::x86_64::sse2::memchr::One::new(byte) {
            return sse2.rfind(hay);
        }
    }
    memchr::memrchr(byte, hay)
}

/// Does `line` start with `prefix` (lowercase ASCII), ignoring case?
fn starts_with_ci(line: &str, prefix: &str) -> bool {
    line.as_bytes()
        .get(..prefix.len())
        .is_some_and(|start| scan::is_lowercase_of(prefix.as_bytes(), start))
}

/// Does `line` start with one of [`SKIP_LINE_PREFIXES`], ignoring case?
/// Only the prefixes that start with its first letter are compared: most
/// lines start with none of their first letters, and twenty compares
/// that each fail at the first byte cost more than one look at it.
fn skip_line(line: &str) -> bool {
    let Some(&first) = line.as_bytes().first() else {
        return false;
    };
    let first = scan::lower_byte(first);
    SKIP_LINE_PREFIXES
        .iter()
        .any(|p| p.as_bytes()[0] == first && starts_with_ci(line, p))
}

/// Does `line` start with an SMTP reply code and a space (`550 ...`)?
fn reply_line(line: &str) -> bool {
    line.len() > 4 && line.as_bytes()[3] == b' ' && scan::leading_failure_code(line).is_some()
}

/// The headers of a returned message quoted as text after the separator
/// (only the fields analyze reads of a returned original, its
/// `ORIGINAL_FIELDS`), when it has a To or From.
pub fn quoted_headers(rest: &str) -> Option<Headers<'_>> {
    let start = rest.trim_start_matches(['\r', '\n', ' ']);
    // The fields of the head alone, found on the way to its end (one walk
    // over the lines, not a search for the end and then a second walk).
    // Only the fields analyze reads of a returned original are decoded.
    let h = mime::parse_head_only(start.as_bytes(), super::analyze::ORIGINAL_FIELDS)?;
    (h.get("to").is_some() || h.get("from").is_some()).then_some(h)
}

/// Most distinct recipients and mentions of each that we collect.
const MAX_RECIPIENTS: usize = 100;
const MAX_MENTIONS: usize = 4;

/// At most 1,000 bytes of a line (on a char boundary).
fn clip(line: &str) -> &str {
    let mut end = line.len().min(1000);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    &line[..end]
}

/// One recipient found in a bounce text, with the lines that talk about it.
#[derive(Debug, Clone)]
pub struct TextRecipient {
    /// The failed address.
    pub address: String,
    /// The lines around each mention, joined.
    pub text: String,
}

/// Most lines of a bounce text [`recipients`] reads.
const MAX_LINES: usize = 2000;

/// Lines below a mention that [`recipients`] may add to its text.
const LINES_BELOW: usize = 8;

/// A set of line numbers below [`MAX_LINES`], as bits: on the stack (256
/// bytes), where a list of them would be an allocation per bounce text.
struct LineSet([u64; MAX_LINES.div_ceil(64)]);

impl LineSet {
    fn new() -> LineSet {
        LineSet([0; MAX_LINES.div_ceil(64)])
    }

    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }

    /// The line numbers in the set below `end`, in increasing order. Only
    /// the words that can hold them are read: most bounce texts have a few
    /// dozen lines, one word of the 32.
    fn iter(&self, end: usize) -> impl Iterator<Item = usize> + '_ {
        let words = &self.0[..end.div_ceil(64).min(self.0.len())];
        words.iter().enumerate().flat_map(move |(w, &word)| {
            let mut bits = word;
            std::iter::from_fn(move || {
                (bits != 0).then(|| {
                    let b = bits.trailing_zeros() as usize;
                    // (Clears the lowest set bit.)
                    bits &= bits - 1;
                    w * 64 + b
                })
            })
            .take_while(move |&i| i < end)
        })
    }
}

/// The first [`MAX_LINES`] lines of `text` as [`scan::lines`] numbers
/// them, and the numbers of those with an `@` (only they can name an
/// address). The lines stop [`LINES_BELOW`] lines below the last `@`:
/// none further is read, and a text without an `@` is not split at all.
///
/// [`recipients`] reads only the lines with an `@`, the line just above
/// each and the [`LINES_BELOW`] below: every other line is left empty
/// here. The search goes from `@` to `@` (few in a bounce text) and
/// splits only the lines around them; the lines far from any `@` are
/// counted a vector of bytes at a time ([`count_newlines`]), not found
/// one by one with a search call each.
fn lines_with_at(text: &str) -> (Vec<&str>, LineSet) {
    let b = text.as_bytes();
    let mut with_at = LineSet::new();
    let Some(last_at) = memchr::memrchr(b'@', b) else {
        return (Vec::new(), with_at);
    };
    // Room for lines of 32 bytes on average (most are longer): one
    // allocation instead of a doubling series that copies them all.
    let mut lines: Vec<&str> = Vec::with_capacity((last_at / 32 + 1 + LINES_BELOW).min(MAX_LINES));
    // Has a line with an `@` been taken yet?
    let mut seen_at = false;
    // The start of the next line to take.
    let mut start = 0;
    while start <= last_at && lines.len() < MAX_LINES {
        // (There is one: `last_at` is in the range.)
        let Some(at) = mime::find_byte(&b[start..=last_at], b'@').map(|k| start + k) else {
            break;
        };
        let line_start = rfind_byte(&b[start..at], b'\n').map_or(start, |k| start + k + 1);
        // The lines below the last line with an `@` (none before the
        // first) and the one just above this one are read.
        let below = if seen_at { LINES_BELOW } else { 0 };
        push_between(&mut lines, text, start, line_start, below);
        if lines.len() == MAX_LINES {
            break;
        }
        with_at.insert(lines.len());
        seen_at = true;
        start = push_line(&mut lines, text, line_start);
    }
    let mut below = 0;
    while below < LINES_BELOW && lines.len() < MAX_LINES && start < text.len() {
        start = push_line(&mut lines, text, start);
        below += 1;
    }
    (lines, with_at)
}

/// Pushes the line of `text` that starts at `start` and returns the start
/// of the next one. As in [`scan::lines`], a line ended by a newline loses
/// a final `\r`, and the last line, when the text does not end with a
/// newline, keeps it.
fn push_line<'t>(lines: &mut Vec<&'t str>, text: &'t str, start: usize) -> usize {
    match mime::find_byte(&text.as_bytes()[start..], b'\n') {
        Some(k) => {
            let line = &text[start..start + k];
            lines.push(line.strip_suffix('\r').unwrap_or(line));
            start + k + 1
        }
        None => {
            lines.push(&text[start..]);
            text.len()
        }
    }
}

/// Pushes the lines of `text[start..end]`, each ended by a newline, up to
/// [`MAX_LINES`] in all: the first `below` and the last as they are, and
/// those between (which [`recipients`] never reads) as empty lines.
fn push_between<'t>(
    lines: &mut Vec<&'t str>,
    text: &'t str,
    mut start: usize,
    end: usize,
    below: usize,
) {
    for _ in 0..below {
        if start == end || lines.len() == MAX_LINES {
            return;
        }
        start = push_line(lines, text, start);
    }
    if start == end {
        return;
    }
    let b = text.as_bytes();
    // (`end - 1` is the newline that ends the last line.)
    let last = rfind_byte(&b[start..end - 1], b'\n').map_or(start, |k| start + k + 1);
    let room = MAX_LINES - lines.len();
    lines.resize(lines.len() + count_newlines(&b[start..last]).min(room), "");
    if lines.len() < MAX_LINES {
        push_line(lines, text, last);
    }
}

/// How many newlines `b` holds. The compares are summed in `u8` over
/// chunks of at most 255 bytes (so that no sum overflows), a loop the
/// compiler turns into vector compares and adds: a fraction of an
/// instruction a byte, where a search call per line costs some 65.
fn count_newlines(b: &[u8]) -> usize {
    b.chunks(255)
        .map(|chunk| usize::from(chunk.iter().fold(0u8, |n, &c| n + u8::from(c == b'\n'))))
        .sum()
}

/// A recipient found so far in a bounce text: its address and the lines
/// that mention it, kept in place (no list to allocate per recipient).
///
/// Line numbers are `u32` (there are at most [`MAX_LINES`]) so that a
/// `Found` is the size of a [`TextRecipient`]: the list of them then
/// becomes the returned list in place, without a `realloc` to fit.
struct Found {
    address: String,
    at: [u32; MAX_MENTIONS],
    mentions: u32,
    /// `is_sender`'s answer for the address, once asked: a repeat (the
    /// same address ignoring case) gets the same answer, and the question
    /// costs a walk over the sender fields.
    sender: Option<bool>,
}

const _: () = assert!(std::mem::size_of::<Found>() == std::mem::size_of::<TextRecipient>());

impl Found {
    /// The lines that mention the recipient, in the order found.
    fn at(&self) -> &[u32] {
        &self.at[..self.mentions as usize]
    }

    /// Does one of the recipient's mentions sit on line `i`?
    fn mentioned_on(&self, i: usize) -> bool {
        self.at().iter().any(|&k| k as usize == i)
    }
}

/// Is `text` the address `written`, ignoring ASCII case? Most often it
/// is written the same: one `memcmp` says so before a compare that folds
/// case byte by byte.
fn is_address_ci(text: &str, written: &str) -> bool {
    text == written || text.eq_ignore_ascii_case(written)
}

/// Most lines one recipient's text takes: each of its mentions takes
/// itself and up to 8 lines below, and a lone mention also the line above.
const MAX_TAKEN: usize = MAX_MENTIONS * 9 + 1;

/// The lines a recipient's text takes, in order, each once; on the stack
/// (one recipient's text never takes more than [`MAX_TAKEN`]).
struct Taken {
    lines: [usize; MAX_TAKEN],
    len: usize,
}

impl Taken {
    fn as_slice(&self) -> &[usize] {
        &self.lines[..self.len]
    }

    /// Takes line `k` unless it is already taken: blocks of two mentions
    /// may overlap.
    fn take(&mut self, k: usize) {
        if !self.as_slice().contains(&k) {
            self.lines[self.len] = k;
            self.len += 1;
        }
    }
}

/// Does `line` hold `mailto:` (any case)? Each colon is found with the
/// inlined [`mime::find_byte`]: a line holds few, and `memchr_iter`'s
/// runtime dispatch per search costs more than searching a line.
fn has_mailto(line: &str) -> bool {
    let b = line.as_bytes();
    let mut from = 0;
    while let Some(k) = mime::find_byte(&b[from..], b':') {
        let p = from + k;
        if p >= 6 && b[p - 6..p].eq_ignore_ascii_case(b"mailto") {
            return true;
        }
        from = p + 1;
    }
    false
}

/// Finds failed recipients in the error part of a bounce text.
/// `is_sender` tells whether an address (as written in `error`) is the
/// sender's, never a recipient, ignoring ASCII case; it is asked only
/// about the addresses found, so a caller need not list every sender
/// address first.
pub fn recipients(error: &str, is_sender: impl Fn(&str) -> bool) -> Vec<TextRecipient> {
    let (lines, with_at) = lines_with_at(error);
    let mut found: Vec<Found> = Vec::new();
    for i in with_at.iter(lines.len()) {
        // (`lines` holds at most MAX_LINES.)
        let line_no = i as u32;
        let line = lines[i];
        let l = line.trim_start();
        if skip_line(l) || has_mailto(l) {
            continue;
        }
        // Each address as it is found, as its parts: compared without
        // building it, built only when it is a new recipient.
        scan::each_address_part(line, |_, written| {
            let local = written.local();
            // A line that is only the address and a colon heads a failed
            // recipient's entry (Exim, qmail); it names a recipient even
            // when that address also sent the message (mail to oneself,
            // forwarding back to the sender).
            let heading = || {
                l.trim_end()
                    .strip_suffix(':')
                    .map(|a| a.trim_start_matches('<').trim_end_matches('>'))
                    .is_some_and(|a| is_address_ci(a, written.as_str()))
            };
            // A recipient found before: its address passed the daemon
            // check (which reads the address alone, ignoring case), and
            // a full or repeated mention is dropped whatever it is, so
            // nothing else is asked.
            if let Some(f) = found
                .iter_mut()
                .find(|f| is_address_ci(&f.address, written.as_str()))
            {
                if (f.mentions as usize) < MAX_MENTIONS
                    && !f.mentioned_on(i)
                    && (heading() || !*f.sender.get_or_insert_with(|| is_sender(written.as_str())))
                {
                    f.at[f.mentions as usize] = line_no;
                    f.mentions += 1;
                }
                return true;
            }
            // A mailer-daemon is never a recipient; asked first, as it
            // reads the address alone. (`heading` before `is_sender`:
            // asking `is_sender` may parse the returned message's header.)
            if DAEMON_LOCALS
                .iter()
                .any(|d| scan::is_lowercase_of(d.as_bytes(), local.as_bytes()))
            {
                return true;
            }
            let sender = (!heading()).then(|| is_sender(written.as_str()));
            if sender == Some(true) {
                return true;
            }
            // Caps keep hostile texts (thousands of addresses) linear.
            if found.len() < MAX_RECIPIENTS {
                found.push(Found {
                    address: written.to_address(),
                    at: [line_no; MAX_MENTIONS],
                    mentions: 1,
                    sender,
                });
            }
            true
        });
    }
    // The lines that mention a recipient, as bits by line number (there
    // are at most MAX_LINES): on the stack, not a list to allocate.
    let mut mentioned = LineSet::new();
    for &k in found.iter().flat_map(Found::at) {
        mentioned.insert(k as usize);
    }
    let mention_line = |j: usize| mentioned.contains(j);
    found
        .into_iter()
        .map(|f| {
            let at = f.at();
            let mut taken = Taken {
                lines: [0; MAX_TAKEN],
                len: 0,
            };
            for &i in at {
                let i = i as usize;
                // The line just above, in the same paragraph, often carries
                // the reason (Lotus Notes, some gateways).
                if i > 0
                    && !scan::trim(lines[i - 1]).is_empty()
                    && !mention_line(i - 1)
                    && at.len() == 1
                {
                    taken.take(i - 1);
                }
                taken.take(i);
                let mut blank_seen = false;
                let reply = reply_line(lines[i]);
                for (j, next) in lines.iter().enumerate().skip(i + 1).take(LINES_BELOW) {
                    if mention_line(j) && !f.mentioned_on(j) {
                        break;
                    }
                    // `554 <a@b>... reason` is a whole entry; a next line
                    // with its own reply code (`550 host (smtp)... Host
                    // unknown`) starts the next recipient's entry.
                    if reply && reply_line(next) {
                        break;
                    }
                    if scan::trim(next).is_empty() {
                        // One blank line may separate an address from its
                        // reply (Gmail, Exchange); a second ends the block,
                        // and so does one after more than two lines.
                        if blank_seen || taken.len > 2 {
                            break;
                        }
                        blank_seen = true;
                        continue;
                    }
                    taken.take(j);
                }
            }
            // A text is every taken line followed by `\n`, built at its
            // final size: one allocation.
            let taken = taken.as_slice();
            let size = taken.iter().map(|&k| clip(lines[k]).len() + 1).sum();
            let mut text = String::with_capacity(size);
            for &k in taken {
                text.push_str(clip(lines[k]));
                text.push('\n');
            }
            TextRecipient {
                address: f.address,
                text,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_mailto_agrees_with_memchr_iter() {
        for l in [
            "",
            ":",
            "mailto:",
            "MailTo:x",
            "a:b mailto",
            "xmailto::",
            "ailto:mailto:",
            "<a@b> :: MAILTO:a@b",
            "é:mailto:",
            "mail:to:",
        ] {
            let want = memchr::memchr_iter(b':', l.as_bytes())
                .any(|p| p >= 6 && l.as_bytes()[p - 6..p].eq_ignore_ascii_case(b"mailto"));
            assert_eq!(has_mailto(l), want, "{l:?}");
        }
    }

    #[test]
    fn skip_line_is_any_prefix() {
        for l in [
            "",
            "F",
            "From: a@b",
            "FROM:",
            "x-y: a@b",
            "X",
            ">>> MAIL FROM:<a@b>",
            ">>> RCPT TO:<a@b>",
            "Received: from",
            "rcpt to:<a@b>",
            "ARC-Seal: i=1",
            "<a@b>",
            "éfrom:",
            "list-id: <l@b>",
            "mail from:<a@b>",
            "mailto:a@b",
        ] {
            let want = SKIP_LINE_PREFIXES.iter().any(|p| starts_with_ci(l, p));
            assert_eq!(skip_line(l), want, "{l:?}");
        }
    }

    #[test]
    fn rfind_byte_is_memrchr() {
        let long = format!("{}\n{}", "x".repeat(70), "y\n".repeat(20));
        for t in ["", "\n", "a\nb", "ab", &long, &long[..40], &long[3..]] {
            for byte in [b'\n', b'x', b'z'] {
                assert_eq!(
                    rfind_byte(t.as_bytes(), byte),
                    memchr::memrchr(byte, t.as_bytes())
                );
            }
        }
    }

    #[test]
    fn ascii_lowercase_is_to_ascii_lowercase() {
        let all: Vec<u8> = (0..=255u8).collect();
        let all = String::from_utf8_lossy(&all).into_owned();
        for t in ["", "A", "Z@[`az{", "ÀÉ Straße MAILER-DAEMON", &all] {
            assert_eq!(
                ascii_lowercase(t),
                t.to_ascii_lowercase().as_bytes(),
                "{t:?}"
            );
        }
        for b in 0..=127u8 {
            let s = char::from(b).to_string();
            assert_eq!(
                ascii_lowercase(&s),
                s.to_ascii_lowercase().as_bytes(),
                "{b}"
            );
        }
    }

    #[test]
    fn markers_are_lowercase() {
        for m in ORIGINAL_MARKERS.iter().chain(SEPARATOR_WORDS) {
            assert_eq!(*m, m.to_ascii_lowercase());
            assert!(MARKER_PIECES.iter().any(|p| m.contains(p)), "{m}");
        }
    }

    #[test]
    fn qmail_text_names_the_recipient_and_reply() {
        let text = "Hi. This is the qmail-send program at mx.example.jp.\nI'm afraid I wasn't able to deliver your message.\n\n<kijitora@example.jp>:\n192.0.2.1 does not like recipient.\nRemote host said: 550 5.1.1 <kijitora@example.jp>... User Unknown\n\n--- Below this line is a copy of the message.\n\nFrom: neko@example.org\n";
        let (err, rest) = split_original(text);
        assert!(rest.starts_with("\nFrom:"));
        let r = recipients(err, |a| a.eq_ignore_ascii_case("neko@example.org"));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].address, "kijitora@example.jp");
        assert!(r[0].text.contains("User Unknown"));
    }

    #[test]
    fn a_heading_line_names_the_recipient_even_when_it_is_the_sender() {
        let text = "The following address(es) failed:\n\nme@example.fr:\nSMTP error from remote server: 550 5.2.0 rejected\n\nFrom: <me@example.fr>\n";
        let r = recipients(text, |a| a.eq_ignore_ascii_case("me@example.fr"));
        assert_eq!(r.len(), 1);
        assert!(r[0].text.contains("550 5.2.0"));
        // Mentioned anywhere else, the sender is still left out.
        let r = recipients("Sent by me@example.fr, 550 rejected\n", |a| {
            a.eq_ignore_ascii_case("me@example.fr")
        });
        assert!(r.is_empty());
    }

    #[test]
    fn line_set_iterates_its_lines_in_order() {
        for lines in [
            &[][..],
            &[0],
            &[63, 64],
            &[1, 2, 3, 127, 128, 500, MAX_LINES - 1],
            &[0, 5, 5, 64, 64, 1999],
        ] {
            let mut set = LineSet::new();
            for &i in lines {
                set.insert(i);
            }
            let want: std::collections::BTreeSet<usize> = lines.iter().copied().collect();
            assert_eq!(
                set.iter(MAX_LINES).collect::<Vec<_>>(),
                want.iter().copied().collect::<Vec<_>>()
            );
            assert!((0..MAX_LINES).all(|i| set.contains(i) == want.contains(&i)));
            for end in [0, 1, 64, 65, 500] {
                let below: Vec<usize> = want.iter().copied().filter(|&i| i < end).collect();
                assert_eq!(set.iter(end).collect::<Vec<_>>(), below);
            }
        }
    }

    #[test]
    fn lines_with_at_are_scan_lines_to_8_below_the_last_at() {
        let long = format!("x\n{}a@b\n{}end", "l\n".repeat(3), "m\r\n".repeat(12));
        // `@` lines far apart, near, and the text ending on an empty line.
        let gaps = format!(
            "top\n{}a@b\r\n{}c@d\n1\n\n2\r\ne@f\n{}g@h@i\n{}",
            "t\n".repeat(20),
            "m\r\n\n".repeat(15),
            "x\r\n".repeat(9),
            "y\n".repeat(4),
        );
        for t in [
            "",
            "a@b",
            "a\r\nb@c\r",
            "\n@\n\n",
            "x@y\ry\n\r@z@",
            "@\n",
            "no at\nhere\n",
            &long,
            "a@b\n1\n2\n3\n4\n5\n6\n7\n8",
            "a@b\n1\n2\n3\n4\n5\n6\n7\n8\n9",
            &gaps,
            &format!("{gaps}\r\n\r\n@"),
            &format!("{}{gaps}", "z\r\n".repeat(30)),
        ] {
            let (lines, with_at) = lines_with_at(t);
            let with_at: Vec<usize> = with_at.iter(MAX_LINES).collect();
            let all: Vec<&str> = scan::lines(t).collect();
            let want: Vec<usize> = (0..all.len()).filter(|&i| all[i].contains('@')).collect();
            assert_eq!(with_at, want, "{t:?}");
            let len = want
                .last()
                .map_or(0, |&k| (k + 1 + LINES_BELOW).min(all.len()));
            assert_eq!(lines.len(), len, "{t:?}");
            // The lines read (with an `@`, just above one, or at most
            // LINES_BELOW below one) are as written; the others empty.
            for (k, line) in lines.iter().enumerate() {
                let read = want.iter().any(|&i| k + 1 >= i && k <= i + LINES_BELOW);
                assert_eq!(*line, if read { all[k] } else { "" }, "{t:?} line {k}");
            }
        }
        let many = "a@b\n".repeat(MAX_LINES + 5);
        let (lines, with_at) = lines_with_at(&many);
        assert_eq!(
            (lines.len(), with_at.iter(MAX_LINES).count()),
            (MAX_LINES, MAX_LINES)
        );
        // The cut falls in the lines between two `@`, and on a line with one.
        let far = format!("a@b\n{}c@d\n", "x\n".repeat(MAX_LINES + 5));
        let (lines, with_at) = lines_with_at(&far);
        let with_at: Vec<usize> = with_at.iter(MAX_LINES).collect();
        assert_eq!((lines.len(), with_at.as_slice()), (MAX_LINES, &[0][..]));
        let edge = format!("a@b\n{}c@d\ne\n", "x\n".repeat(MAX_LINES - 2));
        let (lines, with_at) = lines_with_at(&edge);
        let with_at: Vec<usize> = with_at.iter(MAX_LINES).collect();
        assert_eq!(
            (lines.len(), with_at.as_slice()),
            (MAX_LINES, &[0, MAX_LINES - 1][..])
        );
        assert_eq!(lines[MAX_LINES - 1], "c@d");
    }

    #[test]
    fn a_reply_line_with_its_own_code_starts_the_next_entry() {
        let text = "554 <a@example.edu>... Remote protocol error\n550 example.org (smtp)... 550 Host unknown\n554 <b@example.org>... 550 Host unknown\n";
        let r = recipients(text, |_| false);
        assert_eq!(r.len(), 2);
        assert!(!r[0].text.contains("Host unknown"), "{}", r[0].text);
        assert!(r[1].text.contains("Host unknown"));
    }
}
