//! Small linear scanners over text: e-mail addresses, enhanced status codes
//! and SMTP reply codes. No regex: each is one pass with bounded look-back.

/// `str::lines` (a `\r` is dropped only before a `\n`) with the `memchr`
/// crate's search for each line end.
pub fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let Some(i) = memchr::memchr(b'\n', rest.as_bytes()) else {
            return Some(std::mem::take(&mut rest));
        };
        let line = &rest[..i];
        rest = &rest[i + 1..];
        Some(line.strip_suffix('\r').unwrap_or(line))
    })
}

/// Does `text` contain `needle` (lowercase ASCII), ignoring ASCII case?
/// What `text.to_ascii_lowercase().contains(needle)` says, without the
/// copy: only where the needle's first byte (either case) is are the
/// bytes compared.
pub fn contains_ci(text: &str, needle: &str) -> bool {
    let (hay, needle) = (text.as_bytes(), needle.as_bytes());
    let Some(&first) = needle.first() else {
        return true;
    };
    memchr::memchr2_iter(first, first.to_ascii_uppercase(), hay).any(|i| {
        hay.get(i..i + needle.len())
            .is_some_and(|w| w.eq_ignore_ascii_case(needle))
    })
}

/// Is `c` an ASCII byte that `char::is_whitespace` holds (it adds U+000B
/// to `u8::is_ascii_whitespace`)?
pub(super) const fn is_ascii_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | b'\x0b' | b'\x0c')
}

/// `b.to_ascii_lowercase()` without a branch, so that a loop of it
/// vectorises (std's goes a byte at a time, some 6 instructions a byte):
/// a byte in `A..=Z` is one whose distance from `A` is below 26 (bytes
/// below `A` wrap around to large distances); setting its `0x20` bit
/// makes it lowercase, and every other byte is left as it is.
#[inline]
pub(super) const fn lower_byte(b: u8) -> u8 {
    b | ((b.wrapping_sub(b'A') < 26) as u8) << 5
}

/// What `str::trim` gives, with the ASCII whitespace at the ends dropped
/// byte by byte rather than a char decoded at a time: only when a
/// non-ASCII byte is left at an end could Unicode whitespace be there,
/// and `str::trim` then finishes.
pub fn trim(s: &str) -> &str {
    let b = s.as_bytes();
    // Most often there is nothing to trim: both ends are plain ASCII.
    let plain = |c: &u8| c.is_ascii() && !is_ascii_space(*c);
    if b.first().is_none_or(plain) && b.last().is_none_or(plain) {
        return s;
    }
    let start = b
        .iter()
        .position(|&c| !is_ascii_space(c))
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|&c| !is_ascii_space(c))
        .map_or(start, |i| i + 1);
    // (Both ends border ASCII bytes or an end of `s`: char boundaries.)
    let t = &s[start..end];
    match (t.as_bytes().first(), t.as_bytes().last()) {
        (Some(&f), Some(&l)) if f >= 0x80 || l >= 0x80 => t.trim(),
        _ => t,
    }
}

/// Longest local part and domain we accept (RFC 5321 limits).
const MAX_LOCAL: usize = 64;
const MAX_DOMAIN: usize = 255;

/// Is `lower` (lowercase ASCII) what `text` is, ASCII-lowercased? Byte by
/// byte: most texts compared differ at the first byte, where a
/// whole-slice comparison would first set itself up.
#[inline]
pub(super) fn is_lowercase_of(lower: &[u8], text: &[u8]) -> bool {
    lower.len() == text.len()
        && lower
            .iter()
            .zip(text)
            .all(|(&l, &t)| l == t.to_ascii_lowercase())
}

/// Bit 0: may be in an unquoted local part; bit 1: may be in a domain.
const CHAR_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        if b.is_ascii_alphanumeric() {
            t[c] = 3;
        }
        c += 1;
    }
    let punct = b".!#$%&'*+/=?^_`{|}~-";
    let mut i = 0;
    while i < punct.len() {
        t[punct[i] as usize] |= 1;
        i += 1;
    }
    t[b'.' as usize] |= 2;
    t[b'-' as usize] |= 2;
    t
};

fn is_local_char(c: u8) -> bool {
    CHAR_CLASS[c as usize] & 1 != 0
}

fn is_domain_char(c: u8) -> bool {
    CHAR_CLASS[c as usize] & 2 != 0
}

/// Every address in `text`, in order, as (byte offset, address with the
/// domain lowercased).
pub fn addresses(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    each_address(text, |at, a| {
        out.push((at, a));
        true
    });
    out
}

/// Calls `f` with each address in `text`, in order, while it returns true.
pub(super) fn each_address(text: &str, mut f: impl FnMut(usize, String) -> bool) {
    each_address_part(text, |s, a| f(s, a.to_address()));
}

/// An address as written in a text, `local@domain`.
#[derive(Debug, Clone, Copy)]
pub(super) struct Written<'a> {
    /// The address's bytes in the text.
    text: &'a str,
    /// Where its `@` is in `text`.
    at: usize,
}

impl<'a> Written<'a> {
    /// The local part, as written.
    pub(super) fn local(&self) -> &'a str {
        &self.text[..self.at]
    }

    /// The address as written.
    pub(super) fn as_str(&self) -> &'a str {
        self.text
    }

    /// Is the address as written already what [`Written::to_address`]
    /// gives (no uppercase letter in its domain)?
    pub(super) fn is_address(&self) -> bool {
        !self.text.as_bytes()[self.at + 1..]
            .iter()
            .any(u8::is_ascii_uppercase)
    }

    /// The address with its domain lowercased, as [`each_address`] gives
    /// it: one copy of the written bytes.
    pub(super) fn to_address(self) -> String {
        let mut address = self.text.to_string();
        // The domain is ASCII (`is_domain_char`): lowercase it in place.
        address[self.at + 1..].make_ascii_lowercase();
        address
    }
}

/// Calls `f` with each address in `text`, in order, as its byte offset and
/// its bytes as written, while it returns true. A caller that keeps few of
/// the addresses it sees builds only those.
pub(super) fn each_address_part<'t>(text: &'t str, mut f: impl FnMut(usize, Written<'t>) -> bool) {
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'@', &b[i..]) {
        let at = i + off;
        i = at + 1;
        let mut s = at;
        if at > 0 && b[at - 1] == b'"' {
            // A quoted local part: `"john..doe"@example.org`.
            if let Some(q) = b[at.saturating_sub(MAX_LOCAL + 1)..at - 1]
                .iter()
                .rposition(|&c| c == b'"')
            {
                let q = at.saturating_sub(MAX_LOCAL + 1) + q;
                let local = &text[q..at];
                if !local[1..local.len() - 1].contains(['"', ' ', '<', '>']) && local.len() > 2 {
                    s = q;
                }
            }
        }
        let quoted = s < at && b[s] == b'"';
        if !quoted {
            // Back over local-part characters, at most `MAX_LOCAL - 1`.
            let lo = at.saturating_sub(MAX_LOCAL);
            s = b[lo..at]
                .iter()
                .rposition(|&c| !is_local_char(c))
                .map_or(lo, |p| lo + p + 1);
        }
        // A local part does not start or end with a dot; quote chars are
        // more often punctuation around the address than part of it.
        while !quoted && s < at && matches!(b[s], b'.' | b'\'' | b'=' | b'/' | b'{' | b'|') {
            s += 1;
        }
        if s == at {
            continue;
        }
        // On over domain characters, at most `MAX_DOMAIN`, in one pass
        // that also notes what the checks below need: the domain ends
        // after its last byte that is not `.` or `-`; it needs a dot
        // before that end and no `..`.
        let hi = b.len().min(at + MAX_DOMAIN + 1);
        let mut e = at + 1;
        let mut first_dot = usize::MAX;
        // (The second dot of the first `..`.)
        let mut double_dot = usize::MAX;
        for (k, &c) in b[at + 1..hi].iter().enumerate() {
            let j = at + 1 + k;
            if !is_domain_char(c) {
                break;
            }
            if c == b'.' {
                // (`b[at]` is the `@`, so `b[j - 1]` is in the domain.)
                if b[j - 1] == b'.' && double_dot == usize::MAX {
                    double_dot = j;
                }
                first_dot = first_dot.min(j);
            } else if c != b'-' {
                e = j + 1;
            }
        }
        if e <= at + 1 || first_dot >= e || b[at + 1] == b'.' || double_dot < e {
            continue;
        }
        let local = &text[s..at];
        if local.ends_with('.') && !quoted {
            continue;
        }
        let written = Written {
            text: &text[s..e],
            at: at - s,
        };
        if !f(s, written) {
            return;
        }
    }
}

/// The first address in `text` (the rest is not looked at).
pub fn first_address(text: &str) -> Option<String> {
    first_written(text).map(Written::to_address)
}

/// [`first_address`] as written, not yet copied.
fn first_written(text: &str) -> Option<Written<'_>> {
    let mut first = None;
    each_address_part(text, |_, a| {
        first = Some(a);
        false
    });
    first
}

/// The address part of a header such as `"Name" <a@b>` or `rfc822; a@b`.
pub fn header_address(value: &str) -> Option<String> {
    header_written(value).map(Written::to_address)
}

/// [`header_address`] as written in `value`: a caller that can borrow
/// the address copies it only when its domain needs lowercasing (see
/// [`Written::is_address`]).
pub(super) fn header_written(value: &str) -> Option<Written<'_>> {
    if let Some(open) = value.rfind('<')
        && let Some(close) = value[open..].find('>')
        && let Some(a) = first_written(&value[open + 1..open + close])
    {
        return Some(a);
    }
    first_written(value)
}

/// The first enhanced status code (`[245].d{1,3}.d{1,3}`) in `text`, not
/// part of a longer dotted number such as an IP address.
pub fn status_code(text: &str) -> Option<&str> {
    let b = text.as_bytes();
    // A code's second byte is a dot: jump from dot to dot (one byte to
    // look for costs less per jump than the three first digits), trying
    // the byte before each, so the starts are tried in order.
    for d in memchr::memchr_iter(b'.', b) {
        if let Some(code) = d.checked_sub(1).and_then(|i| status_code_at(text, i)) {
            return Some(code);
        }
    }
    None
}

/// The enhanced status code that starts at byte `i` of `text`, if one
/// does (see [`status_code`]).
#[inline]
fn status_code_at(text: &str, i: usize) -> Option<&str> {
    let b = text.as_bytes();
    if !(matches!(b[i], b'2' | b'4' | b'5')
        && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.'))
        && b.get(i + 1) == Some(&b'.'))
    {
        return None;
    }
    let mut j = i + 2;
    let d1 = digits(b, &mut j);
    if !((1..=3).contains(&d1) && b.get(j) == Some(&b'.')) {
        return None;
    }
    j += 1;
    let d2 = digits(b, &mut j);
    let next_ok = match b.get(j) {
        None => true,
        Some(b'.') => !b.get(j + 1).is_some_and(|c| c.is_ascii_digit()),
        Some(c) => !c.is_ascii_alphanumeric(),
    };
    ((1..=3).contains(&d2) && next_ok).then(|| &text[i..j])
}

fn digits(b: &[u8], j: &mut usize) -> usize {
    let start = *j;
    while *j < b.len() && b[*j].is_ascii_digit() {
        *j += 1;
    }
    *j - start
}

/// The first SMTP failure reply code (`[45]dd` standing alone, followed by a
/// space, `-`, `:` or the end) in `text`; a success code (`2dd`, such as a
/// greeting in a transcript) only when there is no failure code.
pub fn reply_code(text: &str) -> Option<u16> {
    // Most diagnostics start with their failure code ("550 5.1.1 ..."):
    // it is the first code, found without setting up a search.
    if let Some(code) = leading_failure_code(text) {
        return Some(code);
    }
    let mut success = None;
    let mut rest = text;
    let mut offset = 0;
    while let Some(code) = any_reply_code(rest) {
        if code.0 >= 400 {
            return Some(code.0);
        }
        success = success.or(Some(code.0));
        offset += code.1 + 3;
        rest = text.get(offset..).unwrap_or("");
    }
    success
}

/// The first reply code and its byte offset.
fn any_reply_code(text: &str) -> Option<(u16, usize)> {
    let b = text.as_bytes();
    // Only a 2, 4 or 5 can start one: jump from one to the next.
    memchr::memchr3_iter(b'2', b'4', b'5', &b[..b.len().saturating_sub(2)])
        .find(|&i| code_at(b, i))
        .and_then(|i| text[i..i + 3].parse().ok().map(|c| (c, i)))
}

/// The failure reply code (4xx, 5xx) a line starts with, if it does
/// (`550 ...`, `421-...`).
pub fn leading_failure_code(line: &str) -> Option<u16> {
    let b = line.as_bytes();
    (b.len() >= 3 && matches!(b[0], b'4' | b'5') && code_at(b, 0))
        .then(|| line[..3].parse().ok())
        .flatten()
}

/// Is there a reply code at `b[i..i + 3]`, standing on its own?
fn code_at(b: &[u8], i: usize) -> bool {
    i + 3 <= b.len()
        && matches!(b[i], b'2' | b'4' | b'5')
        && b[i + 1].is_ascii_digit()
        && b[i + 2].is_ascii_digit()
        && (i == 0
            || !(b[i - 1].is_ascii_alphanumeric()
                || matches!(b[i - 1], b'.' | b'-' | b'/' | b'=' | b'+' | b'#')))
        && b.get(i + 3).is_none_or(|&c| {
            c == b' '
                || c == b'-'
                || c == b':'
                || c == b'\n'
                || c == b'\r'
                || c == b';'
                || c == b','
        })
        && b[i + 1] <= b'5'
}

/// Texts made of `pieces` in a fixed pseudo-random order (a linear
/// congruential sequence from `seed`): `count` texts of fewer than `most`
/// pieces each, for tests that hold a fast scan to a plain one.
#[cfg(test)]
pub(super) fn piece_texts(pieces: &[&str], mut seed: u32, count: usize, most: u32) -> Vec<String> {
    let mut next = || {
        seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
        seed >> 16
    };
    (0..count)
        .map(|_| {
            let n = next() % most;
            (0..n)
                .map(|_| pieces[next() as usize % pieces.len()])
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contains_ci_is_a_lowercase_copy_s_contains() {
        for (text, needle) in [
            (
                "Multipart/Report; report-type=Feedback-Report",
                "feedback-report",
            ),
            ("feedback-repor", "feedback-report"),
            ("X-Mailer: <SMTP32 v8.22>", "<smtp32 v"),
            ("", ""),
            ("abc", ""),
            ("ÄbC", "bc"),
            ("fFfeedback-report", "feedback-report"),
        ] {
            assert_eq!(
                contains_ci(text, needle),
                text.to_ascii_lowercase().contains(needle),
                "{text:?} {needle:?}"
            );
        }
    }

    #[test]
    fn trim_is_str_trim() {
        for t in [
            "",
            " ",
            "\t\r\n\x0b\x0c ",
            "a",
            " a b ",
            "\u{a0}x\u{85}",
            " \u{3000}y\u{2003} ",
            "é",
            " é ",
            "\u{a0}",
            " \u{a0} ",
            "x\u{1c}",
            "\u{1f}a",
        ] {
            assert_eq!(trim(t), t.trim(), "{t:?}");
        }
    }

    #[test]
    fn addresses_stop_at_the_length_limits() {
        let text = format!("{}@{}.example.org", "x".repeat(70), "d".repeat(250));
        let a = addresses(&text);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].0, 6);
        assert_eq!(
            a[0].1,
            format!("{}@{}.exam", "x".repeat(64), "d".repeat(250))
        );
        assert_eq!(addresses("ab@C.De"), vec![(0, "ab@c.de".to_string())]);
    }

    #[test]
    fn lines_are_str_lines() {
        for t in [
            "",
            "a",
            "a\n",
            "a\r\nb\r",
            "\n\n",
            "a\r",
            "\r\n",
            "x\ry\n\rz",
        ] {
            assert_eq!(
                lines(t).collect::<Vec<_>>(),
                t.lines().collect::<Vec<_>>(),
                "{t:?}"
            );
        }
    }

    #[test]
    fn addresses_found_with_domain_lowercased() {
        let a = addresses("<Kijitora@Example.JP>: host said ... neko@example.org.");
        let got: Vec<_> = a.into_iter().map(|(_, a)| a).collect();
        assert_eq!(got, vec!["Kijitora@example.jp", "neko@example.org"]);
    }

    #[test]
    fn header_written_is_header_address() {
        for v in [
            "",
            "rfc822; a@b.example",
            "\"Name\" <Kijitora@Example.JP>",
            "<> x@y.org",
            "<not an address> z@Q.ORG",
            "a@b.c <d@E.f> <g@h.i>",
            "\"john..doe\"@Example.org",
            "<\"q\"@x.jp",
            "no address",
        ] {
            let w = header_written(v);
            assert_eq!(w.map(Written::to_address), header_address(v), "{v:?}");
            if let Some(w) = w {
                assert_eq!(w.is_address(), w.as_str() == w.to_address(), "{v:?}");
            }
        }
    }

    /// `status_code` as first written: every 2, 4 or 5 tried in turn (the
    /// test holds the dot-to-dot walk to the same first start).
    fn status_code_reference(text: &str) -> Option<&str> {
        memchr::memchr3_iter(b'2', b'4', b'5', text.as_bytes())
            .find_map(|i| status_code_at(text, i))
    }

    #[test]
    fn status_code_is_the_reference() {
        for t in [
            "",
            ".",
            "5.",
            ".5.1.1",
            "5.1.1",
            "x5.1.1",
            "..5.1.1 4.2.2",
            "5..1.1 4.4.7.",
            "2.0.0.1 5.7.1",
            "4.4.4.4 5.1.10 then 5.1.1000 and 5.1.1a 4.3.2.",
            "1.2.3 6.1.1 5.1 5.1. 5.1.x 4.12.345;",
            "550-5.1.1 é5.2.2 (5.3.4)",
            "5.5.5.5.5",
            "25.1.1 #5.1.1",
            "4.1.1é",
        ] {
            assert_eq!(status_code(t), status_code_reference(t), "{t:?}");
        }
        // And texts of pieces in a fixed pseudo-random order.
        let pieces = [
            "5", "4", "2", "1", "12", ".", "..", " ", "a", "é", "-", "5.1.1",
        ];
        for t in piece_texts(&pieces, 7, 3000, 16) {
            assert_eq!(status_code(&t), status_code_reference(&t), "{t:?}");
        }
    }

    #[test]
    fn status_code_skips_ip_addresses() {
        assert_eq!(
            status_code("host 192.0.2.1 said: 550 5.1.1 unknown"),
            Some("5.1.1")
        );
        assert_eq!(status_code("from 4.2.2.1 said"), None);
    }

    #[test]
    fn reply_code_is_the_first_code_found() {
        // `reply_code` as first written, without the leading-code start.
        let reference = |text: &str| {
            let mut success = None;
            let mut offset = 0;
            while let Some((c, i)) = any_reply_code(text.get(offset..).unwrap_or("")) {
                if c >= 400 {
                    return Some(c);
                }
                success = success.or(Some(c));
                offset += i + 3;
            }
            success
        };
        for t in [
            "",
            "5",
            "55",
            "550",
            "550 x",
            "550-x",
            "5500 451 x",
            "450",
            "4501",
            "250 ok 550 no",
            "599",
            "560 x",
            "550:",
            "550é",
            "421\n",
            "220 hi",
            "55a 451;",
        ] {
            assert_eq!(reply_code(t), reference(t), "{t:?}");
        }
    }

    #[test]
    fn reply_code_needs_to_stand_alone() {
        assert_eq!(reply_code("192.0.2.250 said: 550-5.1.1 x"), Some(550));
        assert_eq!(reply_code("#5.1.1 size 12345"), None);
    }
}
