//! Just enough MIME to classify bounces: header blocks (unfolded, RFC 2047
//! words decoded), multipart trees walked iteratively with hard limits, and
//! lenient base64 / quoted-printable decoding.
//!
//! Everything here is total: malformed input gives a best-effort result, never
//! an error, and every loop is bounded by the input size or a fixed cap so a
//! hostile message cannot make the walk quadratic or unbounded.

use std::borrow::Cow;

use super::scan::{is_ascii_space, trim};

/// Deepest multipart nesting we follow; deeper parts are ignored. Real
/// bounces nest three or four levels.
pub const MAX_DEPTH: usize = 24;
/// Most leaf parts we keep from one message.
pub const MAX_LEAVES: usize = 64;
/// Most header fields we keep from one header block.
const MAX_HEADERS: usize = 512;
/// Longest header value we keep; longer values are cut.
const MAX_HEADER_VALUE: usize = 16 * 1024;
/// Most bytes of a part body we decode: bounce texts are small, and the
/// returned original (which may be huge) only matters for its headers.
pub const MAX_DECODE: usize = 512 * 1024;

/// An unfolded header block, names lowercased, in order. A value borrows
/// from the parsed bytes unless unfolding or decoding changed it.
#[derive(Debug, Clone, Default)]
pub struct Headers<'a> {
    fields: Vec<(Cow<'static, str>, Cow<'a, str>)>,
}

impl Headers<'_> {
    /// The first value of `name` (lowercase), trimmed.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| &**v)
    }

    /// Every value of `name` (lowercase), in order.
    pub fn get_all<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.fields
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| &**v)
    }

    /// True when no field was found.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// All fields, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (&**n, &**v))
    }
}

/// The first position of `byte` in `hay` (SIMD `memchr`).
///
/// Most haystacks here are short (header lines, runs of a QP body, header
/// values) and there are hundreds of thousands of them in a run: on
/// x86_64 memchr's SSE2 searcher (always there) is inlined into the
/// caller, instead of `memchr`'s runtime dispatch to AVX2, whose call and
/// setup cost more than the search of a short haystack (measured: about
/// 30 instructions per header line fewer).
#[inline]
pub fn find_byte(hay: &[u8], byte: u8) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(sse2) = memchr::arch::x86_64::sse2::memchr::One::new(byte) {
            return sse2.find(hay);
        }
    }
    memchr::memchr(byte, hay)
}

/// The first position of `a` or `b` in `hay`: [`find_byte`] for two
/// bytes (the same inlined SSE2 searcher on x86_64, for the same reason).
#[inline]
fn find_byte2(hay: &[u8], a: u8, b: u8) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        if let Some(sse2) = memchr::arch::x86_64::sse2::memchr::Two::new(a, b) {
            return sse2.find(hay);
        }
    }
    memchr::memchr2(a, b, hay)
}

/// Lines of a byte slice (without their `\n`), like `split(b'\n')`.
struct Lines<'a>(&'a [u8]);

impl<'a> Iterator for Lines<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.0.is_empty() {
            return None;
        }
        match find_byte(self.0, b'\n') {
            Some(i) => {
                let line = &self.0[..i];
                self.0 = &self.0[i + 1..];
                Some(line)
            }
            None => Some(std::mem::take(&mut self.0)),
        }
    }
}

impl Lines<'_> {
    /// Skips the lines that start with a space or a tab: the continuation
    /// lines of a field not kept (a `Received` or `DKIM-Signature` field
    /// takes several), which the walk in [`fields_of`] would only turn
    /// down one by one. (Such a line is neither empty nor a field.)
    fn skip_continuations(&mut self) {
        while let Some(b' ' | b'\t') = self.0.first() {
            self.0 = match find_byte(self.0, b'\n') {
                Some(i) => &self.0[i + 1..],
                None => &[],
            };
        }
    }
}

/// Splits an entity into its header block and body at the first empty line
/// (`\n` or `\r\n` alone). Without an empty line, everything is header.
pub fn split_head(raw: &[u8]) -> (&[u8], &[u8]) {
    // An empty line starts at 0 or right after a `\n`: only line starts
    // that begin with `\n` or `\r` need a look.
    let empty_at = |start: usize| match raw.get(start) {
        Some(b'\n') => Some(start),
        Some(b'\r') if raw.get(start + 1).is_none_or(|&b| b == b'\n') => Some(start + 1),
        _ => None,
    };
    let starts = std::iter::once(0).chain(memchr::memchr_iter(b'\n', raw).map(|i| i + 1));
    for start in starts {
        if let Some(end) = empty_at(start) {
            let body_start = (end + 1).min(raw.len());
            return (&raw[..start], &raw[body_start..]);
        }
    }
    (raw, &[])
}

/// Parses a header block: unfolds continuation lines, lowercases names,
/// decodes RFC 2047 words. Lines without a colon are skipped (an mbox
/// `From ` line, garbage), and so are fields the classifier never reads
/// (see `WANTED`).
pub fn parse_headers(block: &[u8]) -> Headers<'_> {
    fields_of(&mut Lines(block), false, None).0
}

/// [`split_head`] and [`parse_headers`] of its header block in one pass
/// over the lines: the header block's fields, and the body.
pub fn parse_head(raw: &[u8]) -> (Headers<'_>, &[u8]) {
    let mut lines = Lines(raw);
    match fields_of(&mut lines, true, None) {
        // Stopped at the empty line: the body follows it.
        (headers, true, _) => (headers, lines.0),
        // Stopped at the field limit (or no empty line at all).
        (headers, false, _) => (headers, split_head(raw).1),
    }
}

/// The header block of `raw` (see [`parse_head`]) with only the fields
/// named in `only` (lowercase names of fields it keeps), or `None` when it holds
/// no wanted field at all, that is when `parse_head(raw).0` is empty.
///
/// For a returned original, of which only a few fields are read: the
/// others (Subject, Message-ID, Content-Type...) are then not decoded.
pub fn parse_head_only<'a>(raw: &'a [u8], only: &[&str]) -> Option<Headers<'a>> {
    let (headers, _, seen) = fields_of(&mut Lines(raw), true, Some(only));
    (seen > 0).then_some(headers)
}

/// The fields of `lines`, up to the first empty line when `to_empty`
/// (consumed), and whether the walk stopped there. With `only`, wanted
/// fields not named there are skipped but still counted (the count is
/// returned third), so the [`MAX_HEADERS`] cut falls where it would
/// without `only`. (Not inlined: inlined into `parse_head`, it measured
/// slower.)
#[inline(never)]
fn fields_of<'a>(
    lines: &mut Lines<'a>,
    to_empty: bool,
    only: Option<&[&str]>,
) -> (Headers<'a>, bool, usize) {
    // Room for a message's usual wanted fields without regrowing.
    let mut fields: Vec<(Cow<'static, str>, Cow<'a, str>)> = Vec::with_capacity(16);
    // A one-line value stays a slice of `block`; unfolding copies it.
    let mut current: Option<(Cow<'static, str>, Cow<'a, [u8]>)> = None;
    let mut at_empty = false;
    // Wanted fields met so far (all pushed, unless `only` skipped some).
    let mut seen = 0;
    while let Some(line) = lines.next() {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        // (The empty line that ends a header block: see `split_head`.)
        if to_empty && line.is_empty() {
            at_empty = true;
            break;
        }
        // A parameter that lost its indentation (`boundary="..."` on a line
        // of its own after `Content-Type: multipart/mixed;`) is still part
        // of the field: some gateways fold that way, and without it the
        // whole MIME structure would be lost.
        let unindented_param = || {
            current.as_ref().is_some_and(|(_, v)| v.ends_with(b";"))
                && !line.contains(&b':')
                && line.contains(&b'=')
        };
        if line.first().is_some_and(|&b| b == b' ' || b == b'\t') || unindented_param() {
            if let Some((_, v)) = current.as_mut()
                && v.len() < MAX_HEADER_VALUE
            {
                let v = v.to_mut();
                v.push(b' ');
                v.extend_from_slice(trim_bytes(line));
            }
            continue;
        }
        if let Some((n, v)) = current.take() {
            push_field(&mut fields, n, v);
        }
        if seen >= MAX_HEADERS {
            break;
        }
        // Not a field the classifier reads (Received, DKIM-Signature...):
        // skipping it saves decoding and copying most of a header block.
        let Some((name, colon)) = wanted_field(line) else {
            lines.skip_continuations();
            continue;
        };
        seen += 1;
        if only.is_some_and(|only| !only.contains(&&*name)) {
            continue;
        }
        current = Some((name, Cow::Borrowed(trim_bytes(&line[colon + 1..]))));
    }
    if let Some((n, v)) = current.take() {
        push_field(&mut fields, n, v);
    }
    (Headers { fields }, at_empty, seen)
}

/// Where the name of the field on `line` ends (its first colon), when that
/// colon is one of the first 77 bytes and not the first.
fn name_end(line: &[u8]) -> Option<usize> {
    find_byte(&line[..line.len().min(77)], b':').filter(|&i| i > 0)
}

/// The fields the classifier reads; [`parse_headers`] keeps only these
/// (and any `X-Auto*` field, the auto-responder family). Looked up by
/// first byte through [`wanted_of_first`], which a test holds to this list.
#[cfg(test)]
const WANTED: &[&str] = &[
    "auto-submitted",
    "cc",
    "content-transfer-encoding",
    "content-type",
    "delivered-to",
    "envelope-to",
    "feedback-type",
    "from",
    "message-id",
    "original-rcpt-to",
    "precedence",
    "removal-recipient",
    "reply-to",
    "return-path",
    "sender",
    "subject",
    "to",
    "x-apple-unsubscribe",
    "x-failed-recipients",
    "x-mailer",
    "x-msg-ref",
    "x-nai-header",
    "x-original-to",
    "x-ses-outgoing",
    "x-zohomail",
];

/// The lowercase name of the field on `line` and where its colon is, when
/// the field is one the classifier reads: a [`WANTED`] name (ignoring
/// case) right before the line's first colon, or an `X-Auto*` name of
/// printable ASCII without spaces whose colon is one of the first 77 bytes.
///
/// No colon is searched for: a line holds a wanted field when it starts
/// with a wanted name followed by `:` (a wanted name holds no colon, so
/// that one is the first). Each line is matched only against the few
/// names that share its first byte, the byte after the name (the colon)
/// first: most lines are unwanted fields, and that one byte turns most
/// of them down.
fn wanted_field(line: &[u8]) -> Option<(Cow<'static, str>, usize)> {
    let first = *line.first()?;
    let is = |w: &[u8]| line.get(w.len()) == Some(&b':') && starts_with_name(line, w);
    if let Some(w) = wanted_of_first(first, line)
        .iter()
        .find(|w| is(w.as_bytes()))
    {
        return Some((Cow::Borrowed(w), w.len()));
    }
    let printable = |b: &u8| (b' ' + 1..0x7f).contains(b);
    let x_auto = line.len() > 6 && starts_with_name(line, b"x-auto");
    if !x_auto {
        return None;
    }
    let colon = name_end(line)?;
    let name = &line[..colon];
    name.iter().all(printable).then(|| {
        (
            Cow::Owned(String::from_utf8_lossy(name).to_ascii_lowercase()),
            colon,
        )
    })
}

/// Does `line` start with `name` ignoring ASCII case, where `name` is a
/// wanted name: lowercase letters and `-` only (a test holds the list to
/// that), and `line` is at least as long?
///
/// A byte equals a lowercase letter in either case exactly when it does
/// with 0x20 (the case bit) set, and a letter is told from `-` by its
/// 0x40 bit: so OR-ing each name byte's 0x40 bit, shifted to 0x20, into
/// the line's byte and comparing is `to_ascii_lowercase` equality, and
/// it works on 8 bytes at a time (the last word overlapping the one
/// before it).
fn starts_with_name(line: &[u8], name: &[u8]) -> bool {
    let same = |b: u64, w: u64| b | ((w & 0x4040_4040_4040_4040) >> 1) == w;
    let n = name.len();
    if n < 8 {
        return line
            .iter()
            .zip(name)
            .all(|(&b, &w)| same(u64::from(b), u64::from(w)));
    }
    let word = |s: &[u8], i: usize| {
        let mut w = [0; 8];
        w.copy_from_slice(&s[i..i + 8]);
        u64::from_le_bytes(w)
    };
    (0..n / 8).all(|k| same(word(line, k * 8), word(name, k * 8)))
        && same(word(line, n - 8), word(name, n - 8))
}

/// The [`WANTED`] names that may start `line`, by its first byte (and,
/// for `X-` names, its third): a `match` instead of a comparison per
/// name on every header line (a test checks it against the list).
fn wanted_of_first(first: u8, line: &[u8]) -> &'static [&'static str] {
    match first.to_ascii_lowercase() {
        b'a' => &["auto-submitted"],
        b'c' => &["cc", "content-type", "content-transfer-encoding"],
        b'd' => &["delivered-to"],
        b'e' => &["envelope-to"],
        b'f' => &["from", "feedback-type"],
        b'm' => &["message-id"],
        b'o' => &["original-rcpt-to"],
        b'p' => &["precedence"],
        b'r' => &["reply-to", "return-path", "removal-recipient"],
        b's' => &["sender", "subject"],
        b't' => &["to"],
        b'x' => match line.get(2).map(u8::to_ascii_lowercase) {
            Some(b'a') => &["x-apple-unsubscribe"],
            Some(b'f') => &["x-failed-recipients"],
            Some(b'm') => &["x-mailer", "x-msg-ref"],
            Some(b'n') => &["x-nai-header"],
            Some(b'o') => &["x-original-to"],
            Some(b's') => &["x-ses-outgoing"],
            Some(b'z') => &["x-zohomail"],
            _ => &[],
        },
        _ => &[],
    }
}

/// Turns a raw (unfolded) value into text: cut, read as UTF-8 or Latin-1
/// (see [`bytes_to_text`]), RFC 2047 words decoded, trimmed. The common
/// plain UTF-8 value keeps the buffer it was collected in.
fn push_field<'a>(
    fields: &mut Vec<(Cow<'static, str>, Cow<'a, str>)>,
    name: Cow<'static, str>,
    value: Cow<'a, [u8]>,
) {
    let text: Cow<'a, str> = match value {
        Cow::Borrowed(b) => bytes_to_text(&b[..b.len().min(MAX_HEADER_VALUE)]),
        Cow::Owned(mut v) => {
            v.truncate(MAX_HEADER_VALUE);
            match String::from_utf8(v) {
                Ok(s) => Cow::Owned(s),
                Err(e) => Cow::Owned(e.into_bytes().iter().map(|&c| c as char).collect()),
            }
        }
    };
    let text = if has_encoded_word(&text) {
        Cow::Owned(decode_words(&text))
    } else {
        text
    };
    // (Already trimmed of ASCII whitespace by `trim_bytes`, a value stops
    // `trim` at its first and last bytes unless a non-ASCII end or a
    // vertical tab is there. `trim`'s own first test, made here, spares
    // the usual value a call.)
    let plain = |c: &u8| c.is_ascii() && !is_ascii_space(*c);
    let b = text.as_bytes();
    if b.first().is_none_or(plain) && b.last().is_none_or(plain) {
        fields.push((name, text));
        return;
    }
    let text = match text {
        Cow::Borrowed(s) => Cow::Borrowed(trim(s)),
        Cow::Owned(s) if trim(&s).len() == s.len() => Cow::Owned(s),
        Cow::Owned(s) => Cow::Owned(trim(&s).to_string()),
    };
    fields.push((name, text));
}

/// Does `s` hold `=?` (the start of an RFC 2047 word)? Most values have
/// no `=` at all: [`has_equals`] turns those down, and only the others
/// are searched for `=?`.
fn has_encoded_word(s: &str) -> bool {
    let b = s.as_bytes();
    has_equals(b) && memchr::memchr_iter(b'=', b).any(|i| b.get(i + 1) == Some(&b'?'))
}

/// Does `b` hold an `=`? Header values are short, and for them a look at
/// 8 bytes at a time costs less than a call to `memchr` (see
/// `report::json` for the bit trick: `(x - ONES) & !x & HIGHS` is nonzero
/// exactly when `x` has a zero byte, so XOR-ing `=` in first finds an `=`).
fn has_equals(b: &[u8]) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = ONES * 0x80;
    const EQUALS: u64 = ONES * b'=' as u64;
    let has_zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS != 0;
    let word = |w: &[u8]| u64::from_le_bytes(w.try_into().unwrap_or_default());
    if b.len() < 8 {
        return b.contains(&b'=');
    }
    // The whole words, then the last 8 bytes (overlapping the words
    // before them) for the rest.
    b.chunks_exact(8).any(|w| has_zero(word(w) ^ EQUALS))
        || has_zero(word(&b[b.len() - 8..]) ^ EQUALS)
}

fn trim_bytes(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .map_or(start, |i| i + 1);
    &b[start..end.max(start)]
}

/// Bytes to text: UTF-8 when valid, else each byte as Latin-1, so that
/// 8-bit garbage never stops the ASCII parts (codes, addresses) from matching.
///
/// Validated with `simdutf8` (already built for `mailparse`'s charset
/// decoding), which checks 64 bytes a step with SIMD instead of std's
/// word-at-a-time ASCII test: every header value and text body passes
/// here, and std's check was the largest single function of a run.
pub fn bytes_to_text(b: &[u8]) -> Cow<'_, str> {
    match simdutf8::basic::from_utf8(b) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => Cow::Owned(b.iter().map(|&c| c as char).collect()),
    }
}

/// Decodes RFC 2047 encoded words (`=?charset?B|Q?text?=`). Charsets other
/// than UTF-8 and Latin-1 are decoded to bytes and read as UTF-8 lossily:
/// good enough for the ASCII we match on.
pub fn decode_words(s: &str) -> String {
    if find_pair(s, b"=?").is_none() {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    let mut last_was_word = false;
    while let Some(start) = find_pair(rest, b"=?") {
        let before = &rest[..start];
        let after = &rest[start + 2..];
        let word = find_byte(after.as_bytes(), b'?').and_then(|q1| {
            let charset = &after[..q1];
            let enc = after.get(q1 + 1..q1 + 2)?;
            if after.get(q1 + 2..q1 + 3)? != "?" {
                return None;
            }
            let text_start = q1 + 3;
            let end = find_pair(&after[text_start..], b"?=")? + text_start;
            Some((charset, enc, &after[text_start..end], end + 2))
        });
        match word {
            Some((charset, enc, text, consumed)) => {
                if !(last_was_word && before.trim().is_empty()) {
                    out.push_str(before);
                }
                let bytes = if enc.eq_ignore_ascii_case("b") {
                    decode_base64(text.as_bytes())
                } else if find_byte(text.as_bytes(), b'_').is_some() {
                    decode_qp(text.replace('_', " ").as_bytes())
                } else {
                    decode_qp(text.as_bytes())
                };
                // (Compared ignoring case in place: no lowercase copy.)
                let cs = charset.as_bytes();
                let starts =
                    |p: &[u8]| cs.get(..p.len()).is_some_and(|c| c.eq_ignore_ascii_case(p));
                if starts(b"iso-8859-1")
                    || cs.eq_ignore_ascii_case(b"latin1")
                    || starts(b"windows-1252")
                {
                    out.extend(bytes.iter().map(|&c| c as char));
                } else {
                    out.push_str(&String::from_utf8_lossy(&bytes));
                }
                rest = &after[consumed..];
                last_was_word = true;
            }
            None => {
                out.push_str(&rest[..start + 2]);
                rest = after;
                last_was_word = false;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Where `pair` (two ASCII bytes) first starts in `s`: `s.find("=?")`
/// through `memchr`, without building a substring searcher for each call.
fn find_pair(s: &str, pair: &[u8; 2]) -> Option<usize> {
    let b = s.as_bytes();
    memchr::memchr_iter(pair[0], b).find(|&i| b.get(i + 1) == Some(&pair[1]))
}

/// Lenient base64: skips anything outside the alphabet, stops at padding,
/// drops a dangling partial quantum.
pub fn decode_base64(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in input {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => {
                // Padding ends a quantum; anything after it starts afresh.
                acc = 0;
                bits = 0;
                continue;
            }
            _ => continue,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    out
}

/// Lenient quoted-printable: soft line breaks removed, bad escapes kept as is.
pub fn decode_qp(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    // Copy the runs between `=` signs whole; only an `=` needs a look.
    while let Some(off) = find_byte(&input[i..], b'=') {
        out.extend_from_slice(&input[i..i + off]);
        i += off;
        // The two bytes after the `=`, a zero (neither a line end nor a
        // hex digit) past the end.
        let next = input.get(i + 1).copied().unwrap_or(0);
        let after = input.get(i + 2).copied().unwrap_or(0);
        match (next, after) {
            (b'\n', _) => i += 2,
            (b'\r', b'\n') => i += 3,
            _ => {
                let (h, l) = (HEX_VALUE[usize::from(next)], HEX_VALUE[usize::from(after)]);
                if h | l < 16 {
                    out.push(h << 4 | l);
                    i += 3;
                } else {
                    out.push(b'=');
                    i += 1;
                }
            }
        }
    }
    out.extend_from_slice(&input[i..]);
    out
}

/// The value of each hex digit (either case), 0xff for any other byte: one
/// load instead of `char::to_digit`'s range tests.
const HEX_VALUE: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => 0xff,
        };
        c += 1;
    }
    t
};

/// A parsed `Content-Type`: lowercase `type/subtype`, and the boundary of
/// a multipart. Made for every part, so the common types take no
/// allocation (see `KNOWN_TYPES`); other parameters are read from the
/// header value with [`param`].
#[derive(Debug, Clone, Default)]
pub struct ContentType {
    /// `type/subtype`, lowercase; `text/plain` when absent.
    pub mime: Cow<'static, str>,
    /// The `boundary` parameter of a `multipart/*` type.
    boundary: Option<String>,
}

/// Types a bounce's parts usually have, kept without a copy.
const KNOWN_TYPES: &[&str] = &[
    "text/plain",
    "text/html",
    "text/rfc822-headers",
    "multipart/report",
    "multipart/mixed",
    "multipart/alternative",
    "multipart/related",
    "message/delivery-status",
    "message/global-delivery-status",
    "message/rfc822",
    "message/global",
    "message/global-headers",
    "message/feedback-report",
    "application/octet-stream",
];

impl ContentType {
    /// Parses a header value leniently.
    pub fn parse(value: Option<&str>) -> ContentType {
        let mime = mime_of(value);
        let boundary = value
            .filter(|_| mime.starts_with("multipart/"))
            .and_then(|v| param(v, "boundary"))
            .map(str::to_string);
        ContentType { mime, boundary }
    }

    /// The `boundary` parameter, for a `multipart/*` type.
    pub fn boundary(&self) -> Option<&str> {
        self.boundary.as_deref()
    }
}

/// The lowercase `type/subtype` of a `Content-Type` value (`text/plain`
/// when absent or without a `/`), without a copy for the common types
/// (see `KNOWN_TYPES`).
fn mime_of(value: Option<&str>) -> Cow<'static, str> {
    let Some(value) = value else {
        return Cow::Borrowed("text/plain");
    };
    // The type ends at `;` or, when a broken header forgets it, at a space.
    // The usual value starts with its type in plain ASCII and ends it with
    // `;`, a space or the value's end: then the type is those bytes, as
    // the general way below (pieces, `trim`, `first_word`) would find.
    // A quote, a non-ASCII byte or leading whitespace takes that way.
    let bytes = value.as_bytes();
    let end = bytes
        .iter()
        .position(|&b| TYPE_STOP[usize::from(b)])
        .unwrap_or(bytes.len());
    let mime = if end > 0 && bytes.get(end).is_none_or(|&b| b != b'"' && b.is_ascii()) {
        &value[..end]
    } else {
        first_word(Params(Some(value)).next().unwrap_or_default().trim())
    };
    // (Every known type holds a `/`: the usual value needs no search.)
    if let Some(k) = known_type(mime) {
        Cow::Borrowed(k)
    } else if !mime.as_bytes().contains(&b'/') {
        Cow::Borrowed("text/plain")
    } else {
        Cow::Owned(mime.to_ascii_lowercase())
    }
}

/// The [`KNOWN_TYPES`] entry that `mime` is, ignoring case. Lowercased
/// on the stack and matched by a `match`, which goes by length first,
/// instead of a case-blind comparison with each entry in turn.
fn known_type(mime: &str) -> Option<&'static str> {
    // Most values are written in lowercase already: tried as they are
    // first, they need no copy.
    if let Some(k) = known_lowercase(mime.as_bytes()) {
        return Some(k);
    }
    let mut buf = [0u8; 32];
    let lower = buf.get_mut(..mime.len())?;
    lower.copy_from_slice(mime.as_bytes());
    lower.make_ascii_lowercase();
    known_lowercase(lower)
}

/// The [`KNOWN_TYPES`] entry that `lower` is, exactly.
fn known_lowercase(lower: &[u8]) -> Option<&'static str> {
    let known = match lower {
        b"text/plain" => 0,
        b"text/html" => 1,
        b"text/rfc822-headers" => 2,
        b"multipart/report" => 3,
        b"multipart/mixed" => 4,
        b"multipart/alternative" => 5,
        b"multipart/related" => 6,
        b"message/delivery-status" => 7,
        b"message/global-delivery-status" => 8,
        b"message/rfc822" => 9,
        b"message/global" => 10,
        b"message/global-headers" => 11,
        b"message/feedback-report" => 12,
        b"application/octet-stream" => 13,
        _ => return None,
    };
    Some(KNOWN_TYPES[known])
}

/// The first parameter `name` (lowercase) of a header value such as a
/// `Content-Type`, unquoted.
pub fn param<'v>(value: &'v str, name: &str) -> Option<&'v str> {
    Params(Some(value)).skip(1).find_map(|p| {
        // (`split_once('=')` with memchr, which costs less.)
        let eq = find_byte(p.as_bytes(), b'=')?;
        let (k, v) = (&p[..eq], &p[eq + 1..]);
        // (`scan::trim` is `str::trim`, byte by byte while the ends are ASCII.)
        trim(k)
            .eq_ignore_ascii_case(name)
            .then(|| trim_quotes(trim(v)))
    })
}

/// `s.trim_matches('"')`, byte by byte: `"` is ASCII, so no character is
/// cut.
fn trim_quotes(s: &str) -> &str {
    let b = s.as_bytes();
    let Some(start) = b.iter().position(|&c| c != b'"') else {
        return "";
    };
    let end = b.iter().rposition(|&c| c != b'"').map_or(start, |i| i + 1);
    &s[start..end]
}

/// The first word of `s`, which starts with no whitespace: what
/// `s.split_whitespace().next()` gives, looked for by byte while `s` is
/// ASCII (the usual case; `char::is_whitespace` then means these bytes).
fn first_word(s: &str) -> &str {
    let stop = |b: u8| !b.is_ascii() || is_ascii_space(b);
    match s.bytes().position(stop) {
        None => s,
        Some(i) if s.as_bytes()[i].is_ascii() => &s[..i],
        Some(_) => s.split_whitespace().next().unwrap_or(""),
    }
}

/// The bytes that end the type in [`mime_of`]'s usual case: `;`, `"`,
/// non-ASCII, and the ASCII spaces ([`is_ascii_space`]). One load per
/// byte instead of a comparison with each.
static TYPE_STOP: [bool; 256] = {
    let mut stop = [false; 256];
    let mut b = 0;
    while b < 256 {
        let byte = b as u8;
        stop[b] = byte == b';' || byte == b'"' || !byte.is_ascii() || is_ascii_space(byte);
        b += 1;
    }
    stop
};

/// The pieces of a header value between `;` outside double quotes.
struct Params<'v>(Option<&'v str>);

impl<'v> Iterator for Params<'v> {
    type Item = &'v str;

    fn next(&mut self) -> Option<&'v str> {
        let s = self.0?;
        let b = s.as_bytes();
        let mut quoted = false;
        let mut from = 0;
        while let Some(at) = find_byte2(&b[from..], b'"', b';') {
            let i = from + at;
            if b[i] == b'"' {
                quoted = !quoted;
            } else if !quoted {
                self.0 = Some(&s[i + 1..]);
                return Some(&s[..i]);
            }
            from = i + 1;
        }
        self.0 = None;
        Some(s)
    }
}

/// How a part's body is transfer-encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transfer {
    Identity,
    Base64,
    QuotedPrintable,
}

/// One non-multipart part of a message.
#[derive(Debug, Clone)]
pub struct Leaf<'a> {
    /// The part's own headers (empty for a single-part message: see
    /// [`Parsed::headers`]).
    pub headers: Headers<'a>,
    /// Its content type.
    pub ctype: ContentType,
    /// Nesting depth (0 = the message itself).
    pub depth: usize,
    /// The encoded body, already cut to what decodes to at most
    /// [`MAX_DECODE`] bytes.
    raw: &'a [u8],
    transfer: Transfer,
    /// The decoded body, made on first use: most parts (HTML alternatives,
    /// attachments, returned originals) are never read.
    decoded: std::cell::OnceCell<Vec<u8>>,
}

impl Transfer {
    /// From a `Content-Transfer-Encoding` value, leniently.
    fn of(cte: &str) -> Transfer {
        let has = |name: &str| {
            cte.as_bytes()
                .windows(name.len())
                .any(|w| w.eq_ignore_ascii_case(name.as_bytes()))
        };
        if has("base64") {
            Transfer::Base64
        } else if has("quoted-printable") {
            Transfer::QuotedPrintable
        } else {
            Transfer::Identity
        }
    }
}

impl<'a> Leaf<'a> {
    fn new(
        headers: Headers<'a>,
        ctype: ContentType,
        body: &'a [u8],
        transfer: Transfer,
        depth: usize,
    ) -> Self {
        let cap = match transfer {
            Transfer::Base64 => MAX_DECODE * 4 / 3 + 4,
            _ => MAX_DECODE,
        };
        Leaf {
            headers,
            ctype,
            depth,
            raw: &body[..body.len().min(cap)],
            transfer,
            decoded: std::cell::OnceCell::new(),
        }
    }

    /// Its body, transfer-decoded, at most [`MAX_DECODE`] bytes (or a
    /// little more for base64).
    pub fn body(&self) -> &[u8] {
        match self.transfer {
            Transfer::Identity => self.raw,
            Transfer::Base64 => self.decoded.get_or_init(|| decode_base64(self.raw)),
            Transfer::QuotedPrintable => self.decoded.get_or_init(|| decode_qp(self.raw)),
        }
    }

    /// The body as text (see [`bytes_to_text`]).
    pub fn text(&self) -> Cow<'_, str> {
        bytes_to_text(self.body())
    }
}

/// A message split into top-level headers and leaf parts (depth first, in
/// document order). `message/rfc822` parts are leaves: a returned original
/// is data about the bounce, not part of it.
#[derive(Debug, Clone)]
pub struct Parsed<'a> {
    /// The message's own headers.
    pub headers: Headers<'a>,
    /// Leaf parts in document order.
    pub leaves: Vec<Leaf<'a>>,
    /// True when limits cut the walk short.
    pub truncated: bool,
}

/// Parses a message without recursion.
pub fn parse(raw: &[u8]) -> Parsed<'_> {
    let (headers, top_body) = parse_head(raw);
    // Room for a usual bounce's leaves (three or four, a few more with an
    // HTML alternative or attachments), so that pushing them does not regrow it.
    let mut leaves = Vec::with_capacity(8);
    let mut truncated = false;
    // Stack of entities still to visit, in reverse document order. Room
    // for a usual bounce's parts, so that pushing them does not regrow it.
    let mut stack: Vec<(&[u8], usize)> = Vec::with_capacity(8);
    stack.push((raw, 0));
    while let Some((entity, depth)) = stack.pop() {
        if leaves.len() >= MAX_LEAVES {
            truncated = true;
            break;
        }
        // The message's own header block was parsed above; its leaf (a
        // single-part message) gets empty headers rather than a copy.
        let (part_headers, body) = if depth == 0 {
            (Headers::default(), top_body)
        } else {
            parse_head(entity)
        };
        let fields = if depth == 0 { &headers } else { &part_headers };
        // (A leaf's type keeps no boundary: the boundary is read here, from
        // the header value, without a copy.)
        let content_type = fields.get("content-type");
        let ctype = ContentType {
            mime: mime_of(content_type),
            boundary: None,
        };
        let transfer = Transfer::of(fields.get("content-transfer-encoding").unwrap_or(""));
        if ctype.mime.starts_with("multipart/") {
            if depth >= MAX_DEPTH {
                truncated = true;
                continue;
            }
            let boundary = content_type.and_then(|v| param(v, "boundary"));
            if let Some(boundary) = boundary.filter(|b| !b.is_empty()) {
                // The children go straight onto the stack (no list of
                // their own), then are turned to reverse document order.
                let at = stack.len();
                split_multipart(body, boundary.as_bytes(), |c| stack.push((c, depth + 1)));
                if stack.len() > at {
                    stack[at..].reverse();
                    continue;
                }
                // No delimiter at all: read the body as plain text.
                let ctype = ContentType::parse(None);
                leaves.push(Leaf::new(
                    part_headers,
                    ctype,
                    body,
                    Transfer::Identity,
                    depth,
                ));
                continue;
            }
        }
        leaves.push(Leaf::new(part_headers, ctype, body, transfer, depth));
    }
    Parsed {
        headers,
        leaves,
        truncated,
    }
}

/// Finds `\n--`: where a line that may be a multipart delimiter starts.
/// One searcher for the process; a searcher for each `--boundary` would
/// cost more to build than the search it saves.
static LINE_DASHES: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
    std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\n--"));

/// The bodies between `--boundary` delimiter lines, preamble and epilogue
/// dropped, given to `part` in order (at most [`MAX_LEAVES`]). An
/// unterminated last part runs to the end.
fn split_multipart<'a>(body: &'a [u8], boundary: &[u8], mut part: impl FnMut(&'a [u8])) {
    // How many parts were given so far.
    let mut parts = 0;
    // Headers are split on `\n`, so a boundary never holds one; if it did,
    // no line could start with it.
    if find_byte(boundary, b'\n').is_some() {
        return;
    }
    let delimiter_len = boundary.len() + 2;
    let is_delimiter =
        |pos: usize| body[pos..].starts_with(b"--") && body[pos + 2..].starts_with(boundary);
    // The next line at or after `from` (a line start or its `\n`) that
    // starts with `--boundary`.
    let next_delimiter = |from: usize| {
        if from == 0 && is_delimiter(0) {
            return Some(0);
        }
        let mut from = from;
        loop {
            let pos = from + LINE_DASHES.find(&body[from..])? + 1;
            if is_delimiter(pos) {
                return Some(pos);
            }
            from = pos;
        }
    };
    let mut part_start: Option<usize> = None;
    let mut from = 0;
    while let Some(pos) = next_delimiter(from) {
        let end = find_byte(&body[pos..], b'\n').map_or(body.len(), |i| pos + i);
        let tail = &body[pos + delimiter_len..end];
        if let Some(s) = part_start {
            // The line break before a delimiter belongs to the delimiter.
            let mut e = pos.saturating_sub(1).max(s);
            if e > s && body[e - 1] == b'\r' {
                e -= 1;
            }
            part(&body[s..e]);
            parts += 1;
        }
        if tail.starts_with(b"--") {
            return;
        }
        part_start = Some((end + 1).min(body.len()));
        if parts >= MAX_LEAVES {
            return;
        }
        // (At the delimiter line's `\n`, or at the end.)
        from = end;
    }
    if let Some(s) = part_start {
        part(&body[s.min(body.len())..]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `split_multipart` as first written: a searcher for `--boundary`.
    /// `decode_qp` as first written: `char::to_digit` on each hex digit.
    fn decode_qp_reference(input: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(input.len());
        let mut i = 0;
        while let Some(off) = find_byte(&input[i..], b'=') {
            out.extend_from_slice(&input[i..i + off]);
            i += off;
            let next = input.get(i + 1).copied();
            if next == Some(b'\n') {
                i += 2;
                continue;
            }
            if next == Some(b'\r') && input.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            let hex = |b: Option<&u8>| b.and_then(|&b| (b as char).to_digit(16));
            if let (Some(h), Some(l)) = (hex(input.get(i + 1)), hex(input.get(i + 2))) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
            out.push(b'=');
            i += 1;
        }
        out.extend_from_slice(&input[i..]);
        out
    }

    #[test]
    fn qp_decodes_as_the_reference_does() {
        // Every pair of bytes after an `=`, at the end and not, then
        // pseudo-random mixes (xorshift) of the bytes that matter.
        let mut cases: Vec<Vec<u8>> = vec![b"=".to_vec(), b"a=".to_vec(), b"=\r".to_vec()];
        for a in 0..=255u8 {
            cases.push(vec![b'x', b'=', a]);
            for b in [
                0, b'\n', b'\r', b'0', b'9', b'a', b'f', b'g', b'A', b'F', b'G', b'=', 0xff,
            ] {
                cases.push(vec![b'=', a, b]);
                cases.push(vec![b'=', a, b, b'z']);
            }
        }
        let alphabet = b"=\r\n0159aAfFgG \x00\xff";
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 0..400 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let mut x = state;
            cases.push(
                (0..len % 40)
                    .map(|_| {
                        x = x.rotate_left(5) ^ 0x5851_f42d;
                        alphabet[x as usize % alphabet.len()]
                    })
                    .collect(),
            );
        }
        for c in &cases {
            assert_eq!(decode_qp(c), decode_qp_reference(c), "{c:?}");
        }
    }

    fn split_multipart_reference<'a>(body: &'a [u8], boundary: &[u8]) -> Vec<&'a [u8]> {
        let mut parts = Vec::new();
        // Headers are split on `\n`, so a boundary never holds one; if it did,
        // no line could start with it.
        if find_byte(boundary, b'\n').is_some() {
            return parts;
        }
        let mut delimiter = Vec::with_capacity(boundary.len() + 2);
        delimiter.extend_from_slice(b"--");
        delimiter.extend_from_slice(boundary);
        let finder = memchr::memmem::Finder::new(&delimiter);
        let mut part_start: Option<usize> = None;
        let mut from = 0;
        // Jump from one occurrence of `--boundary` to the next; only those at
        // the start of a line are delimiters.
        while let Some(i) = body.get(from..).and_then(|rest| finder.find(rest)) {
            let pos = from + i;
            if pos > 0 && body[pos - 1] != b'\n' {
                from = pos + 1;
                continue;
            }
            let end = find_byte(&body[pos..], b'\n').map_or(body.len(), |i| pos + i);
            let tail = &body[pos + delimiter.len()..end];
            if let Some(s) = part_start {
                // The line break before a delimiter belongs to the delimiter.
                let mut e = pos.saturating_sub(1).max(s);
                if e > s && body[e - 1] == b'\r' {
                    e -= 1;
                }
                parts.push(&body[s..e]);
            }
            if tail.starts_with(b"--") {
                return parts;
            }
            part_start = Some((end + 1).min(body.len()));
            if parts.len() >= MAX_LEAVES {
                return parts;
            }
            from = end + 1;
        }
        if let Some(s) = part_start {
            parts.push(&body[s.min(body.len())..]);
        }
        parts
    }

    #[test]
    fn split_multipart_agrees_with_the_reference() {
        let bodies: [&[u8]; 9] = [
            b"--b\none\n--b\ntwo\n--b--\nepilogue",
            b"pre\n--b\r\none\r\n--b--\r\n",
            b"x--b\n--bb\n--b\n--b\n",
            b"--b",
            b"--b--",
            b"\n--b\nrest without end",
            b"no delimiter\n--c\n",
            b"--b\n\n--b\n",
            b"",
        ];
        for body in bodies {
            for boundary in [&b"b"[..], b"bb", b"-", b"b\nx"] {
                let mut parts = Vec::new();
                split_multipart(body, boundary, |p| parts.push(p));
                assert_eq!(
                    parts,
                    split_multipart_reference(body, boundary),
                    "{:?} {:?}",
                    String::from_utf8_lossy(body),
                    String::from_utf8_lossy(boundary)
                );
            }
        }
    }

    #[test]
    fn known_types_are_matched_ignoring_case() {
        for (i, k) in KNOWN_TYPES.iter().enumerate() {
            assert_eq!(known_type(k), Some(*k), "{i}");
            assert_eq!(known_type(&k.to_ascii_uppercase()), Some(*k));
            assert_eq!(known_type(&k[1..]), None);
        }
        assert_eq!(known_type("text/plainx"), None);
        assert_eq!(known_type(&"a".repeat(40)), None);
    }

    #[test]
    fn mime_of_agrees_with_the_general_way() {
        let general = |v: &str| {
            let first = Params(Some(v)).next().unwrap_or_default().trim();
            let m = first_word(first);
            if m.contains('/') {
                m.to_ascii_lowercase()
            } else {
                "text/plain".into()
            }
        };
        for v in [
            "text/plain; charset=us-ascii",
            "Text/Plain",
            "text/plain ; x=1",
            " text/html",
            "\"text/plain\"; a",
            "multipart/mixed;boundary=\"a;b\"",
            "text/pl\u{e9}in; a",
            "text/plain\u{a0}x",
            "text",
            "",
            "message/rfc822\t",
            "x-foo/Bar baz;",
            "a\"b/c;d\"/e f",
        ] {
            assert_eq!(mime_of(Some(v)), general(v), "{v:?}");
        }
        assert_eq!(mime_of(None), "text/plain");
    }

    #[test]
    fn parse_head_only_keeps_the_named_fields_of_parse_head() {
        let only = ["from", "to"];
        for raw in [
            &b"Subject: hi\r\nFrom: a@b\r\nTo: c@d,\r\n e@f\r\nReceived: x\r\nfrom: g@h\r\n\r\nTo: no"[..],
            b"Subject: only this\n\nFrom: body@x",
            b"Received: x\nX-Other: y\n",
            b"Content-Type: multipart/mixed;\nboundary=\"x\"\nTo: t@u\n",
            b"",
        ] {
            let full = parse_head(raw).0;
            let kept: Vec<_> = full.iter().filter(|(n, _)| only.contains(n)).collect();
            let got = parse_head_only(raw, &only);
            assert_eq!(got.is_none(), full.is_empty(), "{raw:?}");
            let got: Vec<_> = got.iter().flat_map(|h| h.iter()).collect();
            assert_eq!(got, kept, "{raw:?}");
        }
    }

    #[test]
    fn folded_header_is_unfolded_and_name_lowercased() {
        let h = parse_headers(b"Subject: a\n b\nX-Autoreply:  z \n");
        assert_eq!(h.get("subject"), Some("a b"));
        assert_eq!(h.get("x-autoreply"), Some("z"));
    }

    #[test]
    fn only_printable_names_before_the_first_colon_are_fields() {
        let h = parse_headers(
            b"To : a\nX-Auto x: b\nX-Auto\xc3\xa9: c\n: d\nSubject\x7f: e\nX-AUTO-Ok: f\nFrom: g: h\n",
        );
        let got: Vec<_> = h.iter().collect();
        assert_eq!(got, [("x-auto-ok", "f"), ("from", "g: h")]);
        let long = format!("X-Auto{}: i\n", "a".repeat(70));
        assert_eq!(parse_headers(long.as_bytes()).iter().count(), 1);
        let too_long = format!("X-Auto{}: i\n", "a".repeat(71));
        assert!(parse_headers(too_long.as_bytes()).is_empty());
    }

    /// The field on `line` as first found: its first colon (see
    /// `name_end`), then the name before it looked up in `WANTED`.
    fn wanted_field_reference(line: &[u8]) -> Option<(String, usize)> {
        let colon = name_end(line)?;
        let name = &line[..colon];
        let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
        let printable = |b: &u8| (b' ' + 1..0x7f).contains(b);
        let found = WANTED.contains(&lower.as_str())
            || (name.len() >= 6 && lower.starts_with("x-auto") && name.iter().all(printable));
        found.then_some((lower, colon))
    }

    #[test]
    fn starts_with_name_is_lowercase_equality() {
        for w in WANTED.iter().chain(&["x-auto"]) {
            let w = w.as_bytes();
            for at in 0..w.len() {
                for b in 0..=255u8 {
                    let mut line = w.to_vec();
                    line[at] = b;
                    line.push(b':');
                    let want = line
                        .iter()
                        .zip(w)
                        .all(|(b, w)| b.to_ascii_lowercase() == *w);
                    assert_eq!(starts_with_name(&line, w), want, "{line:?}");
                }
            }
        }
    }

    #[test]
    fn wanted_fields_are_the_wanted_list() {
        for first in 0..=255u8 {
            for third in [b'a', b'F', b'm', b'n', b'o', b's', b'z', b'q'] {
                for w in wanted_of_first(first, &[first, b'-', third]) {
                    assert!(WANTED.contains(w), "{w}");
                    assert_eq!(w.as_bytes()[0], first.to_ascii_lowercase(), "{w}");
                }
            }
        }
        let mut lines: Vec<Vec<u8>> = Vec::new();
        for w in WANTED {
            for name in [
                w.to_string(),
                w.to_ascii_uppercase(),
                format!("{w}x"),
                w[1..].to_string(),
            ] {
                for rest in [": v", ":", " : v", "x: v", "\r: v"] {
                    lines.push(format!("{name}{rest}").into_bytes());
                }
            }
        }
        for other in [
            "X-Auto: a",
            "x-autoreply: b",
            "X-AUTO-RESPONSE-SUPPRESS: c",
            "x-auto",
            "x-auto:",
            "X-Auto x: d",
            "x-aut: e",
            "",
            ":",
            "Received: from x",
            "reply-to",
            "Content-Type\r: x",
        ] {
            lines.push(other.as_bytes().to_vec());
        }
        lines.push(b"X-Auto\xc3\xa9: c".to_vec());
        lines.push(format!("X-Auto{}: i", "a".repeat(70)).into_bytes());
        lines.push(format!("X-Auto{}: i", "a".repeat(71)).into_bytes());
        for line in &lines {
            let got = wanted_field(line).map(|(n, c)| (n.into_owned(), c));
            assert_eq!(
                got,
                wanted_field_reference(line),
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
        for w in WANTED {
            assert!(wanted_field(format!("{w}: v").as_bytes()).is_some(), "{w}");
            // (What `starts_with_name` relies on.)
            assert!(
                w.bytes().all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{w}"
            );
        }
    }

    #[test]
    fn first_word_is_split_whitespace_next() {
        for s in [
            "",
            "a",
            "text/plain",
            "text/plain x",
            "a\tb",
            "a\u{b}b",
            "a\u{a0}b",
            "é b",
            "ab\u{3000}c",
        ] {
            assert_eq!(
                first_word(s),
                s.split_whitespace().next().unwrap_or(""),
                "{s:?}"
            );
        }
    }

    #[test]
    fn encoded_words_are_decoded() {
        assert_eq!(
            decode_words("=?UTF-8?B?T3V0IG9mIG9mZmljZQ==?="),
            "Out of office"
        );
        assert_eq!(
            decode_words("=?iso-8859-1?Q?Abwesenheitsnotiz_=E4?="),
            "Abwesenheitsnotiz ä"
        );
    }

    #[test]
    fn broken_base64_decodes_what_it_can() {
        assert!(decode_base64(b"aGVs\n!!bG8=garbage").starts_with(b"hello"));
    }

    #[test]
    fn soft_breaks_and_bad_escapes_in_qp() {
        assert_eq!(decode_qp(b"a=\nb=3Dc=ZZ"), b"ab=c=ZZ");
    }

    #[test]
    fn trim_and_encoded_word_checks_agree_with_str() {
        for v in [
            "a",
            "",
            "\u{b}a",
            "a\u{b}",
            "\u{a0}x",
            "x\u{3000}",
            "é",
            "a=b",
            "=?",
            "x=?y",
        ] {
            assert_eq!(trim(v), v.trim(), "{v:?}");
            assert_eq!(has_encoded_word(v), v.contains("=?"), "{v:?}");
        }
    }

    #[test]
    fn has_equals_finds_an_equals_anywhere() {
        for len in 0..40 {
            let plain = vec![b'a'; len];
            assert!(!has_equals(&plain));
            for at in 0..len {
                for other in [b'a', 0x3c, 0x3e, 0xbd, 0x00, 0xff] {
                    let mut v = vec![other; len];
                    assert_eq!(has_equals(&v), other == b'=');
                    v[at] = b'=';
                    assert!(has_equals(&v), "{len} {at} {other}");
                }
            }
        }
    }

    /// `fields_of` as first written: every line handled on its own, the
    /// continuation lines of a field not kept too. Fields as strings, the
    /// rest of the input, whether it stopped at the empty line, the count.
    fn fields_reference<'a>(
        raw: &'a [u8],
        to_empty: bool,
        only: Option<&[&str]>,
    ) -> (Vec<(String, String)>, &'a [u8], bool, usize) {
        let mut lines = Lines(raw);
        let mut fields = Vec::new();
        let mut current: Option<(Cow<'static, str>, Cow<'_, [u8]>)> = None;
        let mut at_empty = false;
        let mut seen = 0;
        for line in lines.by_ref() {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if to_empty && line.is_empty() {
                at_empty = true;
                break;
            }
            let unindented_param = || {
                current.as_ref().is_some_and(|(_, v)| v.ends_with(b";"))
                    && !line.contains(&b':')
                    && line.contains(&b'=')
            };
            if line.first().is_some_and(|&b| b == b' ' || b == b'\t') || unindented_param() {
                if let Some((_, v)) = current.as_mut()
                    && v.len() < MAX_HEADER_VALUE
                {
                    let v = v.to_mut();
                    v.push(b' ');
                    v.extend_from_slice(trim_bytes(line));
                }
                continue;
            }
            if let Some((n, v)) = current.take() {
                push_field(&mut fields, n, v);
            }
            if seen >= MAX_HEADERS {
                break;
            }
            let Some((name, colon)) = wanted_field(line) else {
                continue;
            };
            seen += 1;
            if only.is_some_and(|only| !only.contains(&&*name)) {
                continue;
            }
            current = Some((name, Cow::Borrowed(trim_bytes(&line[colon + 1..]))));
        }
        if let Some((n, v)) = current.take() {
            push_field(&mut fields, n, v);
        }
        let fields = fields
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        (fields, lines.0, at_empty, seen)
    }

    #[test]
    fn fields_of_agrees_with_the_line_by_line_reference() {
        let many: Vec<u8> = (0..MAX_HEADERS + 3)
            .flat_map(|i| format!("Received: r{i}\n x\nTo: t{i}\n\tmore\n").into_bytes())
            .chain(b"\nbody".iter().copied())
            .collect();
        let inputs: [&[u8]; 14] = [
            b"Received: a\r\n\tb\r\n c\r\nTo: x@y\r\n\r\nbody",
            b"DKIM-Signature: v=1;\n\tb=abc\n\tdef\nSubject: s\n\n",
            b"Received: a\n \nTo: t\n\n",
            b"Received: a\n\r\nTo: t\n",
            b"Received: a\r \rTo: t\n\nb",
            b"X-Spam: a\n\tb\n\tc",
            b"X-Spam: a\n\tb\n\t",
            b"Content-Type: multipart/mixed;\nboundary=\"b\"\n\nbody",
            b"X-Other: a;\nboundary=\"b\"\nTo: t\n\n",
            b"Message-ID: <m>\n folded\nFrom: f\n  x\nTo: t\n\n",
            b"From a@b Mon\nReceived: a\n b\nTo: t",
            b"\tleading continuation\nTo: t\n\n",
            b"",
            &many,
        ];
        let only: &[&str] = &["to", "from"];
        for raw in inputs {
            for to_empty in [true, false] {
                for only in [None, Some(only)] {
                    let mut lines = Lines(raw);
                    let (headers, at_empty, seen) = fields_of(&mut lines, to_empty, only);
                    let got: Vec<_> = headers
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .collect();
                    let want = fields_reference(raw, to_empty, only);
                    let what = String::from_utf8_lossy(raw);
                    assert_eq!((got, lines.0, at_empty, seen), want, "{what}");
                }
            }
        }
    }

    #[test]
    fn params_split_at_semicolons_outside_quotes() {
        let pieces = |v| Params(Some(v)).collect::<Vec<_>>();
        assert_eq!(pieces("a; b=\"x;y\"; c"), ["a", " b=\"x;y\"", " c"]);
        assert_eq!(pieces("a;;\"\";"), ["a", "", "\"\"", ""]);
        assert_eq!(pieces("\"unclosed; b=1"), ["\"unclosed; b=1"]);
        assert_eq!(pieces(""), [""]);
        let v = "multipart/report; report-type=x; boundary=\"b;1\"";
        assert_eq!(param(v, "boundary"), Some("b;1"));
    }

    #[test]
    fn parse_head_is_split_head_then_parse_headers() {
        for raw in [
            &b"To: a@b\nSubject: s\n\nbody\n"[..],
            b"To: a@b\r\nSubject: s\r\n\r\nbody",
            b"To: a@b\n folded\n\r",
            b"\nbody",
            b"To: a@b\nno empty line",
            b"",
        ] {
            let (head, body) = split_head(raw);
            let (headers, rest) = parse_head(raw);
            assert_eq!(rest, body);
            let want: Vec<_> = parse_headers(head)
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            let got: Vec<_> = headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn unindented_parameter_line_still_belongs_to_its_field() {
        let msg = b"Content-Type: multipart/alternative;\nboundary=\"b\"\nSubject: s\n\n--b\nContent-Type: text/plain\n\none\n--b--\n";
        let p = parse(msg);
        assert_eq!(p.headers.get("subject"), Some("s"));
        assert_eq!(p.leaves.len(), 1);
        assert_eq!(p.leaves[0].body(), b"one");
        // A line without ':' after a field that does not end in ';' is
        // still dropped, not glued on.
        let h = parse_headers(b"Subject: a\nnonsense=1\n");
        assert_eq!(h.get("subject"), Some("a"));
    }

    #[test]
    fn multipart_leaves_in_document_order() {
        let msg = b"Content-Type: multipart/mixed; boundary=\"b\"\n\npre\n--b\nContent-Type: text/plain\n\none\n--b\nContent-Type: message/rfc822\n\nTo: x@y\n\nbody\n--b--\n";
        let p = parse(msg);
        assert_eq!(p.leaves.len(), 2);
        assert_eq!(p.leaves[0].body(), b"one");
        assert_eq!(p.leaves[1].ctype.mime, "message/rfc822");
    }
}
