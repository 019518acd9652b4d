//! The `{"type":"message",...}` line written by hand, byte for byte what
//! serde_json makes of [`MessageReport`]'s derived `Serialize`.
//!
//! `check --json` writes one such line per message, and serde_json spends
//! most of that on `format_escaped_str`: every key and every value goes
//! through it, a byte at a time, with three writes per string. Here keys
//! are literals and a string's runs of plain bytes are found a word at a
//! time and copied in one go. The tests compare with serde_json on reports
//! with every field set and strings with every byte that needs escaping.

use crate::message::Recipient;

use super::MessageReport;

impl MessageReport {
    /// Appends the report as one JSON object (no newline): the same bytes
    /// as `serde_json::to_writer`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Destructured without `..`: a new field fails to compile here
        // instead of going missing from the JSON.
        let MessageReport {
            kind_tag,
            source,
            uid,
            message_id,
            kind,
            recipients,
            action_taken,
            note,
        } = self;
        out.extend_from_slice(b"{\"type\":");
        name(out, kind_tag);
        out.extend_from_slice(b",\"source\":");
        string(out, source);
        out.extend_from_slice(b",\"uid\":");
        opt_string(out, uid.as_deref());
        out.extend_from_slice(b",\"message_id\":");
        opt_string(out, message_id.as_deref());
        out.extend_from_slice(b",\"kind\":");
        match kind {
            Some(k) => name(out, k.as_str()),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"recipients\":[");
        for (i, r) in recipients.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            recipient(out, r);
        }
        out.extend_from_slice(b"],\"action_taken\":");
        name(out, action_taken.as_str());
        // `skip_serializing_if = "Option::is_none"`.
        if let Some(n) = note {
            out.extend_from_slice(b",\"note\":");
            string(out, n);
        }
        out.push(b'}');
    }
}

fn recipient(out: &mut Vec<u8>, r: &Recipient) {
    let Recipient {
        address,
        status,
        reply_code,
        action,
        diagnostic,
        reason,
        hard,
    } = r;
    out.extend_from_slice(b"{\"address\":");
    string(out, address);
    out.extend_from_slice(b",\"status\":");
    opt_string(out, status.as_deref());
    out.extend_from_slice(b",\"reply_code\":");
    match reply_code {
        Some(n) => number(out, *n),
        None => out.extend_from_slice(b"null"),
    }
    out.extend_from_slice(b",\"action\":");
    opt_string(out, action.as_deref());
    out.extend_from_slice(b",\"diagnostic\":");
    opt_string(out, diagnostic.as_deref());
    out.extend_from_slice(b",\"reason\":");
    name(out, reason.as_str());
    out.extend_from_slice(b",\"hard\":");
    out.extend_from_slice(match hard {
        Some(true) => b"true",
        Some(false) => b"false",
        None => b"null",
    });
    out.push(b'}');
}

fn opt_string(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => string(out, s),
        None => out.extend_from_slice(b"null"),
    }
}

/// A `u16` in decimal.
fn number(out: &mut Vec<u8>, n: u16) {
    let mut digits = [0u8; 5];
    let mut at = digits.len();
    let mut n = n;
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
}

/// Appends one of the program's own names (a kind, reason or action:
/// lowercase letters and `_`, which need no escape) as a JSON string.
fn name(out: &mut Vec<u8>, s: &'static str) {
    debug_assert!(next_special(s.as_bytes(), 0).is_none(), "{s}");
    out.push(b'"');
    out.extend_from_slice(s.as_bytes());
    out.push(b'"');
}

/// Appends `s` as a JSON string, escaped as serde_json does: `\"`, `\\`,
/// `\b \f \n \r \t`, `\u00xx` (lowercase hex) for the other control bytes;
/// everything else, non-ASCII included, as it is.
fn string(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    while let Some(i) = next_special(bytes, start) {
        out.extend_from_slice(&bytes[start..i]);
        escape(out, bytes[i]);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

/// The position of the first byte at or after `from` that must be escaped.
///
/// Two words a step: most strings (diagnostics) are long and plain, and
/// one test of both words' flags halves the loop's own work.
fn next_special(bytes: &[u8], from: usize) -> Option<usize> {
    let rest = bytes.get(from..)?;
    let word = |at: usize| special_bytes(rest[at..at + 8].try_into().unwrap_or([0; 8]));
    let mut at = 0;
    while at + 16 <= rest.len() {
        let (lo, hi) = (word(at), word(at + 8));
        if lo | hi != 0 {
            let p = if lo != 0 {
                first_flagged(lo)
            } else {
                8 + first_flagged(hi)
            };
            return Some(from + at + p);
        }
        at += 16;
    }
    if at + 8 <= rest.len() {
        let hit = word(at);
        if hit != 0 {
            return Some(from + at + first_flagged(hit));
        }
        at += 8;
    }
    if at == rest.len() {
        return None;
    }
    if rest.len() < 8 {
        return rest
            .iter()
            .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
            .map(|p| from + p);
    }
    // The last eight bytes, overlapping words already found clean: those
    // are flagged in no case (a wrong flag only follows a right one), so
    // the first flag is still exact.
    let last = rest.len() - 8;
    let hit = word(last);
    (hit != 0).then(|| from + last + first_flagged(hit))
}

/// Eight bytes at a time: the high bit of a byte of the result is set for
/// the first byte that must be escaped (`"`, `\\`, below 0x20), and maybe
/// for later ones; zero when none must.
///
/// `(y - n * ONES) & !y & HIGHS` flags the bytes of `y` below `n` (for
/// `n <= 0x80`; a classic bit trick). Two such tests cover the three
/// cases: with bit 1 flipped (`^ 0x02`), the bytes below 0x20 stay below
/// 0x20, `"` (0x22) becomes 0x20 and nothing else becomes either, so
/// "below 0x21" is "below 0x20 or `"`"; and `\\` is the zero byte of
/// `x ^ 0x5c`. Neither xor touches the high bit, so `!x` stands for `!y`
/// in both. A borrow only comes from a flagged byte and only runs towards
/// the more significant bytes, which are the later ones as the word is
/// read little-endian, so the first flag is exact and only those after it
/// may be wrong.
fn special_bytes(w: [u8; 8]) -> u64 {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);
    let x = u64::from_le_bytes(w);
    let control_or_quote = (x ^ (ONES * 0x02)).wrapping_sub(ONES * 0x21);
    let backslash = (x ^ (ONES * u64::from(b'\\'))).wrapping_sub(ONES);
    (control_or_quote | backslash) & !x & HIGHS
}

/// The byte index of the first flag of [`special_bytes`].
fn first_flagged(hit: u64) -> usize {
    (hit.trailing_zeros() / 8) as usize
}

fn escape(out: &mut Vec<u8>, b: u8) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    match b {
        b'"' => out.extend_from_slice(b"\\\""),
        b'\\' => out.extend_from_slice(b"\\\\"),
        b'\n' => out.extend_from_slice(b"\\n"),
        b'\r' => out.extend_from_slice(b"\\r"),
        b'\t' => out.extend_from_slice(b"\\t"),
        0x08 => out.extend_from_slice(b"\\b"),
        0x0c => out.extend_from_slice(b"\\f"),
        _ => out.extend_from_slice(&[
            b'\\',
            b'u',
            b'0',
            b'0',
            HEX[usize::from(b >> 4)],
            HEX[usize::from(b & 0xf)],
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::{Kind, Reason};
    use crate::report::Action;

    fn ours(s: &str) -> String {
        let mut out = Vec::new();
        string(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strings_escape_as_serde_json_does() {
        let mut cases: Vec<String> = [
            "",
            "plain",
            "say \"hi\"",
            "back\\slash",
            "a\\\"b\"\\",
            "550 5.1.1 <kijitora@example.jp>: user unknown",
            "Grüße, 日本語, emoji 📬, and \u{7f} \u{80} \u{ffff}",
            "\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"",
            "exactly8",
            "sixteen bytes!!!",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        // Every control byte and both escaped printables, alone and at
        // every position of a string longer than two words.
        let specials = (0u8..0x20).chain([b'"', b'\\', b' ', 0x7f]);
        for b in specials {
            let c = char::from(b);
            cases.push(c.to_string());
            for at in 0..20 {
                let mut s: String = "abcdefghijklmnopqrstu".chars().take(20).collect();
                s.insert(at, c);
                cases.push(s);
                let mut s = "é".repeat(10);
                s.insert(at / 2 * 2, c);
                cases.push(s);
            }
        }
        // Every length across the word and tail boundaries, with one or
        // two bytes to escape anywhere.
        for len in 1..=40 {
            for at in 0..len {
                let mut s: Vec<u8> = (0..len).map(|k| b'a' + (k % 26) as u8).collect();
                s[at] = b'"';
                cases.push(String::from_utf8(s.clone()).unwrap());
                s[(at * 7 + 3) % len] = b'\n';
                cases.push(String::from_utf8(s).unwrap());
            }
        }
        let all: String = (0u8..0x80).map(char::from).collect();
        cases.push(all.clone());
        cases.push(all.repeat(3) + "ü");
        for s in &cases {
            assert_eq!(ours(s), serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }

    #[test]
    fn each_byte_alone_is_flagged_when_it_must_be_escaped() {
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut w = [b'a'; 8];
                w[at] = b;
                let expected = (b < 0x20 || b == b'"' || b == b'\\').then_some(at);
                let hit = special_bytes(w);
                assert_eq!((hit != 0).then(|| first_flagged(hit)), expected, "{w:x?}");
            }
        }
    }

    #[test]
    fn the_first_flag_of_a_word_is_its_first_special_byte() {
        // Words of bytes around every boundary the bit tricks rely on, in
        // pseudo-random mixes (xorshift), against a plain scan.
        let alphabet = [
            0x00, 0x01, 0x02, 0x03, 0x1d, 0x1f, 0x20, 0x21, 0x22, 0x23, 0x5b, 0x5c, 0x5d, 0x5e,
            0x7f, 0x80, 0x82, 0xa0, 0xa2, 0xdc, 0xff,
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let w: [u8; 8] =
                std::array::from_fn(|k| alphabet[(state >> (k * 5)) as usize % alphabet.len()]);
            let expected = w.iter().position(|&b| b < 0x20 || b == b'"' || b == b'\\');
            let hit = special_bytes(w);
            assert_eq!((hit != 0).then(|| first_flagged(hit)), expected, "{w:x?}");
        }
    }

    fn recipient(n: u16) -> Recipient {
        Recipient {
            address: format!("user{n}@example.com"),
            status: Some("5.1.1".into()),
            reply_code: Some(n),
            action: Some("failed".into()),
            diagnostic: Some(format!("550 \"no\" such\tuser\\{n}\n\u{1}")),
            reason: Reason::ALL[usize::from(n) % Reason::ALL.len()],
            hard: Some(n.is_multiple_of(2)),
        }
    }

    #[test]
    fn reports_serialize_as_serde_json_does() {
        let bare = Recipient {
            address: "x@y".into(),
            status: None,
            reply_code: None,
            action: None,
            diagnostic: None,
            reason: Reason::ALL[0],
            hard: None,
        };
        let mut reports = Vec::new();
        for (i, kind) in [
            None,
            Some(Kind::Bounce),
            Some(Kind::Delayed),
            Some(Kind::AutoReply),
            Some(Kind::Complaint),
            Some(Kind::NotBounce),
        ]
        .into_iter()
        .enumerate()
        {
            reports.push(MessageReport {
                kind_tag: "message",
                source: "/var/mail/bounces \"x\"".into(),
                uid: i.is_multiple_of(2).then(|| format!("cur/{i}.host:2,S")),
                message_id: (i % 3 != 0).then(|| format!("id{i}@h")),
                kind,
                recipients: (0..i as u16).map(recipient).collect(),
                action_taken: Action::DryRun,
                note: (i % 2 == 1).then(|| "why\n\"so\"".to_string()),
            });
        }
        reports[0].recipients.push(bare);
        for (i, a) in Action::ALL.into_iter().enumerate() {
            reports[i].action_taken = a;
        }
        let codes = [0, 9, 10, 99, 100, 550, 9999, 10000, u16::MAX];
        reports[5].recipients = codes.into_iter().map(recipient).collect();
        for reason in Reason::ALL {
            let mut r = recipient(1);
            r.reason = *reason;
            reports[4].recipients.push(r);
        }
        for r in &reports {
            let mut out = Vec::new();
            r.write_json(&mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(r).unwrap()
            );
        }
    }
}
