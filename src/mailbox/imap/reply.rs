//! Pure parsing of the IMAP responses to our own `UID FETCH`: bytes in, one
//! response (or "incomplete") out, literals taken by their announced length.
//!
//! The `imap` crate re-parses a response from its start each time another
//! line of a literal arrives, and then parses it again into its own types:
//! most of the CPU of a mailbox run. Here a message body is located by its
//! `{n}` and never scanned.

use std::borrow::Cow;

/// Literals longer than this are refused rather than buffered.
const MAX_LITERAL: usize = 1 << 30;

/// The result of parsing the start of a buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Parse<T> {
    /// A whole response and the bytes it took.
    Done(T, usize),
    /// More bytes are needed: at least this many in all.
    Incomplete(usize),
}

/// A tagged status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    No,
    Bad,
}

/// One server response, as far as `fetch` cares.
#[derive(Debug, PartialEq, Eq)]
pub enum Response<'a> {
    /// `* n FETCH (...)`: the message's UID, size and `BODY[]` when present.
    Fetch {
        uid: Option<u32>,
        size: Option<u64>,
        body: Option<Cow<'a, [u8]>>,
    },
    /// The tagged completion `TAG STATUS text`.
    Tagged {
        tag: &'a [u8],
        status: Status,
        text: String,
    },
    /// `* BYE text`: the server is closing the connection.
    Bye(String),
    /// Anything else (`* 3 EXISTS`, `* OK ...`, `+ ...`): ignored.
    Other,
}

/// A response's pieces: text lines without their CRLF and the literals
/// announced at the end of each but the last.
struct Pieces<'a> {
    texts: Vec<&'a [u8]>,
    literals: Vec<&'a [u8]>,
}

/// Parses the response at the start of `buf`.
pub fn response(buf: &[u8]) -> Result<Parse<Response<'_>>, String> {
    let (pieces, used) = match split(buf)? {
        Parse::Done(p, used) => (p, used),
        Parse::Incomplete(n) => return Ok(Parse::Incomplete(n)),
    };
    Ok(Parse::Done(interpret(&pieces)?, used))
}

/// Splits off one response: lines, and the literal that ends a line with
/// `{n}` (or `{n+}`), up to a line that announces none.
fn split(buf: &[u8]) -> Result<Parse<Pieces<'_>>, String> {
    let mut pieces = Pieces {
        texts: Vec::new(),
        literals: Vec::new(),
    };
    let mut pos = 0;
    loop {
        let Some(nl) = memchr(b'\n', &buf[pos..]) else {
            return Ok(Parse::Incomplete(buf.len() + 1));
        };
        let end = pos + nl + 1;
        let line = trim_crlf(&buf[pos..end]);
        match literal_length(line)? {
            None => {
                pieces.texts.push(line);
                return Ok(Parse::Done(pieces, end));
            }
            Some((len, marker)) => {
                let lit_end = end + len;
                if buf.len() < lit_end {
                    // The response goes on after the literal: at least a CRLF.
                    return Ok(Parse::Incomplete(lit_end + 2));
                }
                pieces.texts.push(&line[..marker]);
                pieces.literals.push(&buf[end..lit_end]);
                pos = lit_end;
            }
        }
    }
}

fn memchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().position(|&b| b == needle)
}

fn trim_crlf(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `{123}` or `{123+}` at the end of a line: the length and where the
/// marker starts.
fn literal_length(line: &[u8]) -> Result<Option<(usize, usize)>, String> {
    let Some(inner) = line.strip_suffix(b"}") else {
        return Ok(None);
    };
    let Some(open) = inner.iter().rposition(|&b| b == b'{') else {
        return Ok(None);
    };
    let digits = &inner[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Ok(None);
    }
    match std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
    {
        Some(n) if n <= MAX_LITERAL => Ok(Some((n, open))),
        _ => Err(format!(
            "literal of {} bytes is too large",
            String::from_utf8_lossy(digits)
        )),
    }
}

/// Gives the pieces their meaning.
fn interpret<'a>(p: &Pieces<'a>) -> Result<Response<'a>, String> {
    let first = p.texts[0];
    let (tag, rest) = word(first);
    if tag == b"+" {
        return Ok(Response::Other);
    }
    if tag != b"*" {
        let (status, text) = word(rest);
        let status = if status.eq_ignore_ascii_case(b"OK") {
            Status::Ok
        } else if status.eq_ignore_ascii_case(b"NO") {
            Status::No
        } else if status.eq_ignore_ascii_case(b"BAD") {
            Status::Bad
        } else {
            return Err(format!(
                "unexpected response {:?}",
                String::from_utf8_lossy(first)
            ));
        };
        return Ok(Response::Tagged {
            tag,
            status,
            text: String::from_utf8_lossy(text).into_owned(),
        });
    }
    let (kind, after) = word(rest);
    if kind.eq_ignore_ascii_case(b"BYE") {
        return Ok(Response::Bye(String::from_utf8_lossy(after).into_owned()));
    }
    let (what, _) = word(after);
    if !(kind.iter().all(u8::is_ascii_digit) && what.eq_ignore_ascii_case(b"FETCH")) {
        return Ok(Response::Other);
    }
    fetch_attributes(p)
}

/// The first space-separated word and what follows it.
fn word(s: &[u8]) -> (&[u8], &[u8]) {
    match s.iter().position(|&b| b == b' ') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, &[]),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Token<'a> {
    Open,
    Close,
    Atom(&'a [u8]),
    Quoted(Vec<u8>),
    Literal(&'a [u8]),
}

/// Tokens of the whole response: each text piece, then its literal.
fn tokens<'a>(p: &Pieces<'a>) -> Result<Vec<Token<'a>>, String> {
    let mut out = Vec::new();
    for (i, text) in p.texts.iter().enumerate() {
        let mut s = *text;
        while let Some(&c) = s.first() {
            match c {
                b' ' => s = &s[1..],
                b'(' => {
                    out.push(Token::Open);
                    s = &s[1..];
                }
                b')' => {
                    out.push(Token::Close);
                    s = &s[1..];
                }
                b'"' => {
                    let mut value = Vec::new();
                    let mut j = 1;
                    loop {
                        match s.get(j) {
                            None => return Err("unterminated quoted string".into()),
                            Some(b'"') => break,
                            Some(b'\\') => {
                                value.extend(s.get(j + 1));
                                j += 2;
                            }
                            Some(&b) => {
                                value.push(b);
                                j += 1;
                            }
                        }
                    }
                    out.push(Token::Quoted(value));
                    s = &s[j + 1..];
                }
                _ => {
                    // An atom; `[...]` (a section such as BODY[]) may hold
                    // spaces and parentheses.
                    let mut depth = 0usize;
                    let len = s
                        .iter()
                        .position(|&b| match b {
                            b'[' => {
                                depth += 1;
                                false
                            }
                            b']' => {
                                depth = depth.saturating_sub(1);
                                false
                            }
                            b' ' | b'(' | b')' => depth == 0,
                            _ => false,
                        })
                        .unwrap_or(s.len());
                    out.push(Token::Atom(&s[..len]));
                    s = &s[len..];
                }
            }
        }
        if let Some(lit) = p.literals.get(i) {
            out.push(Token::Literal(lit));
        }
    }
    Ok(out)
}

/// `* n FETCH (UID u RFC822.SIZE s BODY[] {len}...)`, in any order; other
/// attributes (FLAGS, ...) are skipped.
fn fetch_attributes<'a>(p: &Pieces<'a>) -> Result<Response<'a>, String> {
    let toks = tokens(p)?;
    let Some(start) = toks.iter().position(|t| *t == Token::Open) else {
        return Err("FETCH response without attributes".into());
    };
    let (mut uid, mut size, mut body) = (None, None, None);
    let mut depth = 0usize;
    let mut i = start;
    while i < toks.len() {
        match &toks[i] {
            Token::Open => depth += 1,
            Token::Close => depth = depth.saturating_sub(1),
            Token::Atom(name) if depth == 1 => {
                let value = toks.get(i + 1);
                if name.eq_ignore_ascii_case(b"UID") {
                    uid = number(value);
                } else if name.eq_ignore_ascii_case(b"RFC822.SIZE") {
                    size = number(value);
                } else if name.eq_ignore_ascii_case(b"BODY[]") {
                    body = match value {
                        Some(Token::Literal(l)) => Some(Cow::Borrowed(*l)),
                        Some(Token::Quoted(q)) => Some(Cow::Owned(q.clone())),
                        // NIL: the server has no content for it.
                        _ => None,
                    };
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(Response::Fetch { uid, size, body })
}

fn number<T: std::str::FromStr>(token: Option<&Token<'_>>) -> Option<T> {
    match token {
        Some(Token::Atom(a)) => std::str::from_utf8(a).ok()?.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn done(buf: &[u8]) -> (Response<'_>, usize) {
        match response(buf).unwrap() {
            Parse::Done(r, used) => (r, used),
            Parse::Incomplete(n) => panic!("incomplete, wants {n}"),
        }
    }

    fn fetch(uid: u32, body: &[u8]) -> Response<'_> {
        Response::Fetch {
            uid: Some(uid),
            size: None,
            body: Some(Cow::Borrowed(body)),
        }
    }

    #[test]
    fn fetch_literal_is_taken_by_length_byte_exact() {
        // The literal holds CRLFs, a ")" line and something like a tagged line.
        let body = b"From: a\r\n)\r\nb1 OK not really\r\n\r\n.\r\n";
        let buf = [
            b"* 1 FETCH (UID 42 BODY[] {".as_slice(),
            body.len().to_string().as_bytes(),
            b"}\r\n",
            body,
            b")\r\nb1 OK done\r\n",
        ]
        .concat();
        let (r, used) = done(&buf);
        assert_eq!(r, fetch(42, body));
        let (t, _) = done(&buf[used..]);
        assert_eq!(
            t,
            Response::Tagged {
                tag: b"b1",
                status: Status::Ok,
                text: "done".into()
            }
        );
    }

    #[test]
    fn fetch_uid_after_the_body_and_other_attributes_are_found() {
        let buf = b"* 3 FETCH (FLAGS (\\Seen UID) BODY[] {2}\r\nhi UID 7 RFC822.SIZE 2)\r\n";
        let (r, used) = done(buf);
        assert_eq!(used, buf.len());
        assert_eq!(
            r,
            Response::Fetch {
                uid: Some(7),
                size: Some(2),
                body: Some(Cow::Borrowed(b"hi".as_slice()))
            }
        );
    }

    #[test]
    fn fetch_quoted_and_nil_bodies() {
        let (r, _) = done(b"* 1 FETCH (UID 5 BODY[] \"a \\\"q\\\" (x)\")\r\n");
        assert_eq!(
            r,
            Response::Fetch {
                uid: Some(5),
                size: None,
                body: Some(Cow::Owned(b"a \"q\" (x)".to_vec()))
            }
        );
        let (r, _) = done(b"* 1 FETCH (UID 5 BODY[] NIL)\r\n");
        assert_eq!(
            r,
            Response::Fetch {
                uid: Some(5),
                size: None,
                body: None
            }
        );
    }

    #[test]
    fn sizes_listing_is_parsed() {
        let (r, _) = done(b"* 12 FETCH (UID 34 RFC822.SIZE 5678)\r\n");
        assert_eq!(
            r,
            Response::Fetch {
                uid: Some(34),
                size: Some(5678),
                body: None
            }
        );
    }

    #[test]
    fn partial_literal_asks_for_its_end() {
        let buf = b"* 1 FETCH (UID 4 BODY[] {900}\r\nFrom: a@example.org\r\n";
        assert_eq!(
            response(buf).unwrap(),
            Parse::Incomplete(buf.len() - 21 + 900 + 2)
        );
        assert_eq!(response(b"* 1 FETCH (UI").unwrap(), Parse::Incomplete(14));
        assert_eq!(response(b"").unwrap(), Parse::Incomplete(1));
    }

    #[test]
    fn empty_literal_and_non_synchronising_literal() {
        let (r, used) = done(b"* 1 FETCH (UID 1 BODY[] {0+}\r\n)\r\n");
        assert_eq!(r, fetch(1, b""));
        assert_eq!(used, 33);
    }

    #[test]
    fn bye_no_bad_and_untagged_data() {
        assert_eq!(
            done(b"* BYE shutting down\r\n").0,
            Response::Bye("shutting down".into())
        );
        assert_eq!(done(b"* 5 EXISTS\r\n").0, Response::Other);
        assert_eq!(done(b"* OK [ALERT] hi\r\n").0, Response::Other);
        assert_eq!(
            done(b"b2 NO [UNAVAILABLE] try later\r\n").0,
            Response::Tagged {
                tag: b"b2",
                status: Status::No,
                text: "[UNAVAILABLE] try later".into()
            }
        );
        assert!(matches!(
            done(b"b2 bad what\r\n").0,
            Response::Tagged {
                status: Status::Bad,
                ..
            }
        ));
        assert!(response(b"b2 MAYBE\r\n").is_err());
    }

    #[test]
    fn huge_literal_is_refused_not_buffered() {
        assert!(response(b"* 1 FETCH (UID 1 BODY[] {99999999999}\r\n").is_err());
    }

    #[test]
    fn braces_that_are_not_a_literal_end_the_line() {
        let (r, used) = done(b"* OK see {x}\r\nrest");
        assert_eq!((r, used), (Response::Other, 14));
    }
}
