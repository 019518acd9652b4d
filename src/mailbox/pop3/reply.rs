//! POP3 reply parsing as pure functions over bytes (RFC 1939, RFC 5034).
//!
//! Each function looks at what has arrived so far and either says
//! "incomplete" or how many bytes it consumed, so the client can read in any
//! chunk size and the parser is tested without a socket.

/// The longest status line we accept. RFC 2449 allows 512 octets; servers
/// exceed that with long `-ERR` texts, so allow a lot more, but not unbounded.
pub const MAX_STATUS_LINE: usize = 64 * 1024;

/// A status line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// `+OK text`
    Ok(String),
    /// `-ERR text` (the text may start with an RFC 2449 `[CODE]`).
    Err(String),
    /// `+ data` or a bare `+`: a SASL challenge (still base64).
    Continue(String),
}

/// The result of looking at the bytes received so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parse<T> {
    /// More bytes are needed.
    Incomplete,
    /// A value and how many bytes it used.
    Done(T, usize),
}

/// Parses one status line at the start of `buf`.
pub fn status(buf: &[u8]) -> Result<Parse<Status>, String> {
    let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
        if buf.len() > MAX_STATUS_LINE {
            return Err(format!("reply line longer than {MAX_STATUS_LINE} bytes"));
        }
        return Ok(Parse::Incomplete);
    };
    let line = &buf[..nl];
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let text = |rest: &[u8]| {
        let rest = rest.strip_prefix(b" ").unwrap_or(rest);
        String::from_utf8_lossy(rest).into_owned()
    };
    let parsed = if let Some(rest) = strip_prefix_ci(line, b"+OK") {
        Status::Ok(text(rest))
    } else if let Some(rest) = strip_prefix_ci(line, b"-ERR") {
        Status::Err(text(rest))
    } else if let Some(rest) = line.strip_prefix(b"+") {
        Status::Continue(text(rest))
    } else {
        let shown = String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned();
        return Err(format!("unexpected reply {shown:?}"));
    };
    Ok(Parse::Done(parsed, nl + 1))
}

fn strip_prefix_ci<'a>(line: &'a [u8], prefix: &[u8]) -> Option<&'a [u8]> {
    if line.len() >= prefix.len() && line[..prefix.len()].eq_ignore_ascii_case(prefix) {
        let rest = &line[prefix.len()..];
        // "+OKAY" is not "+OK": the keyword must end the line or be followed by a space.
        if rest.is_empty() || rest[0] == b' ' {
            return Some(rest);
        }
    }
    None
}

/// Progress through a multi-line body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Body {
    /// Bytes of `buf` used (whole lines only).
    pub consumed: usize,
    /// The terminating `.` line was seen (and consumed).
    pub done: bool,
}

/// Decodes the complete lines at the start of `buf` into `out`: a leading
/// `.` is removed (dot-unstuffing), line endings are kept exactly as sent,
/// and the terminating `.` line is consumed but not copied. Call again with
/// the unconsumed rest plus new bytes until `done`.
pub fn body(buf: &[u8], out: &mut Vec<u8>) -> Body {
    let mut pos = 0;
    while let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') {
        let line = &buf[pos..pos + nl + 1];
        pos += nl + 1;
        if line == b".\r\n" || line == b".\n" {
            return Body {
                consumed: pos,
                done: true,
            };
        }
        out.extend_from_slice(line.strip_prefix(b".").unwrap_or(line));
    }
    Body {
        consumed: pos,
        done: false,
    }
}

/// A status line with the decoded body of a positive multi-line reply.
pub type Reply = (Status, Option<Vec<u8>>);

/// A whole reply: the status line and, for a positive reply to a multi-line
/// command, the decoded body. Used for small replies and in tests.
pub fn reply(buf: &[u8], multiline: bool) -> Result<Parse<Reply>, String> {
    let (st, used) = match status(buf)? {
        Parse::Incomplete => return Ok(Parse::Incomplete),
        Parse::Done(st, used) => (st, used),
    };
    if !multiline || !matches!(st, Status::Ok(_)) {
        return Ok(Parse::Done((st, None), used));
    }
    let mut out = Vec::new();
    let b = body(&buf[used..], &mut out);
    if !b.done {
        return Ok(Parse::Incomplete);
    }
    Ok(Parse::Done((st, Some(out)), used + b.consumed))
}

/// The APOP timestamp of a greeting: the first `<...>` containing `@`
/// (RFC 1939 section 7 calls it a msg-id).
pub fn apop_timestamp(greeting: &str) -> Option<String> {
    let start = greeting.find('<')?;
    let len = greeting[start..].find('>')?;
    let ts = &greeting[start..=start + len];
    ts.contains('@').then(|| ts.to_string())
}

/// The RFC 2449 response code of a `-ERR` text: `[IN-USE]` → `IN-USE`.
pub fn response_code(text: &str) -> Option<&str> {
    let rest = text.strip_prefix('[')?;
    Some(&rest[..rest.find(']')?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_without_newline_is_incomplete() {
        assert_eq!(status(b"+OK hel").unwrap(), Parse::Incomplete);
    }

    #[test]
    fn ok_err_and_continuation_are_told_apart() {
        assert_eq!(
            status(b"+OK ready\r\nrest").unwrap(),
            Parse::Done(Status::Ok("ready".into()), 11)
        );
        assert_eq!(
            status(b"-ERR [AUTH] no\r\n").unwrap(),
            Parse::Done(Status::Err("[AUTH] no".into()), 16)
        );
        assert_eq!(
            status(b"+ PDEyMz4=\r\n").unwrap(),
            Parse::Done(Status::Continue("PDEyMz4=".into()), 12)
        );
        assert_eq!(
            status(b"+\r\n").unwrap(),
            Parse::Done(Status::Continue(String::new()), 3)
        );
        assert_eq!(
            status(b"+ok\n").unwrap(),
            Parse::Done(Status::Ok(String::new()), 4)
        );
    }

    #[test]
    fn garbage_status_is_an_error() {
        assert!(status(b"* OK imap\r\n").is_err());
    }

    #[test]
    fn endless_status_line_is_an_error() {
        assert!(status(&vec![b'x'; MAX_STATUS_LINE + 1]).is_err());
    }

    #[test]
    fn pop3_dot_stuffed_line_is_unstuffed() {
        let mut out = Vec::new();
        let b = body(b"a\r\n..dot\r\n.\r\n", &mut out);
        assert!(b.done);
        assert_eq!(out, b"a\r\n.dot\r\n");
    }

    #[test]
    fn body_keeps_line_endings_as_sent() {
        let mut out = Vec::new();
        let b = body(b"a\nb\r\n\r\nc\r\n.\r\n", &mut out);
        assert!(b.done);
        assert_eq!(out, b"a\nb\r\n\r\nc\r\n");
    }

    #[test]
    fn body_split_anywhere_decodes_the_same() {
        let wire = b"x\r\n..\r\n...y\r\n.z\r\n.\r\n+OK next\r\n";
        for cut in 0..wire.len() {
            let mut out = Vec::new();
            let first = body(&wire[..cut], &mut out);
            if first.done {
                assert_eq!(first.consumed, wire.len() - 10);
                continue;
            }
            let mut rest = wire[first.consumed..cut].to_vec();
            rest.extend_from_slice(&wire[cut..]);
            let second = body(&rest, &mut out);
            assert!(second.done, "cut at {cut}");
            assert_eq!(out, b"x\r\n.\r\n..y\r\nz\r\n", "cut at {cut}");
            assert_eq!(first.consumed + second.consumed, wire.len() - 10);
        }
    }

    #[test]
    fn multiline_reply_waits_for_the_terminator() {
        assert_eq!(
            reply(b"+OK 2 messages\r\n1 abc\r\n", true).unwrap(),
            Parse::Incomplete
        );
        let r = reply(b"+OK\r\n1 abc\r\n2 def\r\n.\r\n", true).unwrap();
        assert_eq!(
            r,
            Parse::Done(
                (
                    Status::Ok(String::new()),
                    Some(b"1 abc\r\n2 def\r\n".to_vec())
                ),
                22
            )
        );
    }

    #[test]
    fn negative_reply_to_multiline_command_has_no_body() {
        let r = reply(b"-ERR no such message\r\n", true).unwrap();
        assert_eq!(
            r,
            Parse::Done((Status::Err("no such message".into()), None), 22)
        );
    }

    #[test]
    fn apop_timestamp_found_in_greeting() {
        assert_eq!(
            apop_timestamp("POP3 server ready <1896.697170952@dbc.mtview.ca.us>").as_deref(),
            Some("<1896.697170952@dbc.mtview.ca.us>")
        );
        assert_eq!(apop_timestamp("Dovecot ready."), None);
    }

    #[test]
    fn response_code_is_extracted() {
        assert_eq!(response_code("[IN-USE] locked"), Some("IN-USE"));
        assert_eq!(response_code("plain text"), None);
    }
}
