//! Our own POP3 client (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034
//! AUTH) over any `Read + Write` stream, and the [`Pop3Mailbox`] built on it
//! (in `session.rs`).
//!
//! Replies are parsed by the pure functions of [`reply`]; this file only
//! moves bytes. Deletions are DELEs that the server applies at QUIT, so a
//! run that dies before [`Mailbox::finish`](crate::mailbox::Mailbox::finish)
//! deletes nothing.

pub mod reply;
mod session;

pub use session::{Pop3Mailbox, open};

use std::io::{self, Read, Write};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use self::reply::{Parse, Status};
use super::sasl::{self, Method};
use super::secret::Credential;

/// What went wrong in a dialogue, before it is given a server name.
#[derive(Debug)]
pub enum Failure {
    /// The socket failed while `doing` something.
    Io { doing: String, error: io::Error },
    /// The server answered `-ERR text` to `command`.
    Refused { command: String, text: String },
    /// The server said something that is not POP3.
    Protocol(String),
}

/// A POP3 dialogue over `S`.
pub struct Client<S> {
    stream: S,
    buf: Vec<u8>,
    pos: usize,
    /// Send batches of commands before reading replies (CAPA PIPELINING).
    pub pipelining: bool,
}

/// Capabilities from CAPA: one entry per line, keyword first.
#[derive(Debug, Clone, Default)]
pub struct Capabilities(pub Vec<String>);

impl Capabilities {
    /// True when a line starts with this keyword (case-insensitive).
    pub fn has(&self, keyword: &str) -> bool {
        self.0.iter().any(|l| {
            l.split_whitespace()
                .next()
                .is_some_and(|k| k.eq_ignore_ascii_case(keyword))
        })
    }

    /// The mechanisms of the `SASL` line, uppercase.
    pub fn sasl(&self) -> Vec<String> {
        self.0
            .iter()
            .filter_map(|l| {
                let mut words = l.split_whitespace();
                let first = words.next()?;
                first
                    .eq_ignore_ascii_case("SASL")
                    .then(|| words.map(str::to_ascii_uppercase).collect::<Vec<_>>())
            })
            .flatten()
            .collect()
    }
}

const READ_CHUNK: usize = 64 * 1024;

/// Pipelined commands per window: about 1.5 KB of RETRs or DELEs (RETR
/// keeps two windows in flight).
pub const PIPELINE_WINDOW: usize = 100;

impl<S: Read + Write> Client<S> {
    /// Wraps a connected stream; call [`Client::greeting`] first.
    pub fn new(stream: S) -> Client<S> {
        Client {
            stream,
            buf: Vec::with_capacity(READ_CHUNK),
            pos: 0,
            pipelining: false,
        }
    }

    /// Reads the greeting and returns its text (which may carry the APOP
    /// timestamp).
    pub fn greeting(&mut self) -> Result<String, Failure> {
        match self.status("waiting for the greeting")? {
            Status::Ok(text) => Ok(text),
            Status::Err(text) => Err(Failure::Refused {
                command: "connect".into(),
                text,
            }),
            Status::Continue(_) => Err(Failure::Protocol("greeting is a continuation".into())),
        }
    }

    /// CAPA; `None` when the server does not know it (RFC 1939 servers).
    pub fn capa(&mut self) -> Result<Option<Capabilities>, Failure> {
        self.send(b"CAPA\r\n", "sending CAPA")?;
        match self.status("reading CAPA")? {
            Status::Ok(_) => {
                let body = self.body("reading CAPA", 256)?;
                let lines = String::from_utf8_lossy(&body)
                    .lines()
                    .map(str::to_string)
                    .collect();
                Ok(Some(Capabilities(lines)))
            }
            Status::Err(_) => Ok(None),
            Status::Continue(_) => Err(Failure::Protocol("CAPA got a continuation".into())),
        }
    }

    /// STLS: returns the stream, ready for the TLS handshake.
    pub fn stls(mut self) -> Result<S, Failure> {
        self.simple("STLS")?;
        // Anything already buffered was sent before TLS and could have been
        // injected by an attacker (CVE-2011-0411 class): refuse it.
        if self.pos < self.buf.len() {
            return Err(Failure::Protocol("data after the STLS reply".into()));
        }
        Ok(self.stream)
    }

    /// Logs in with `method`. `greeting` is needed for APOP.
    pub fn login(
        &mut self,
        method: Method,
        user: &str,
        credential: &Credential,
        greeting: &str,
    ) -> Result<(), Failure> {
        let (Credential::Password(secret) | Credential::Token(secret)) = credential;
        let secret = secret.expose();
        match method {
            Method::User => {
                self.simple(&format!("USER {user}"))?;
                self.hidden("PASS", &format!("PASS {secret}\r\n"))
            }
            Method::Apop => {
                let ts = reply::apop_timestamp(greeting).ok_or_else(|| {
                    Failure::Protocol("the greeting has no APOP timestamp".into())
                })?;
                let digest = sasl::apop(&ts, secret);
                self.hidden("APOP", &format!("APOP {user} {digest}\r\n"))
            }
            Method::Plain => self.auth("PLAIN", |_, _| sasl::plain(user, secret)),
            Method::Login => self.auth("LOGIN", |step, _| match step {
                0 => user.as_bytes().to_vec(),
                _ => secret.as_bytes().to_vec(),
            }),
            Method::CramMd5 => self.auth("CRAM-MD5", |_, ch| sasl::cram_md5(user, secret, ch)),
            // A failed XOAUTH2 gets a JSON error as a second challenge, to
            // which the client must answer with an empty line.
            Method::XOAuth2 => self.auth("XOAUTH2", |step, _| match step {
                0 => sasl::xoauth2(user, secret),
                _ => Vec::new(),
            }),
        }
    }

    /// RFC 5034 AUTH: `respond(step, challenge)` gives each response.
    fn auth(
        &mut self,
        mech: &str,
        respond: impl Fn(usize, &[u8]) -> Vec<u8>,
    ) -> Result<(), Failure> {
        let command = format!("AUTH {mech}");
        self.send(format!("{command}\r\n").as_bytes(), "sending AUTH")?;
        for step in 0.. {
            match self.status("authenticating")? {
                Status::Ok(_) => return Ok(()),
                Status::Err(text) => return Err(Failure::Refused { command, text }),
                Status::Continue(data) => {
                    let challenge = B64.decode(data.trim()).map_err(|_| {
                        Failure::Protocol(format!("{mech} challenge is not base64"))
                    })?;
                    let mut line = B64.encode(respond(step, &challenge));
                    line.push_str("\r\n");
                    self.send(line.as_bytes(), "authenticating")?;
                }
            }
            if step > 8 {
                break;
            }
        }
        Err(Failure::Protocol(format!("{mech} did not finish")))
    }

    /// STAT: (message count, total octets).
    pub fn stat(&mut self) -> Result<(u32, u64), Failure> {
        let text = self.simple("STAT")?;
        let mut w = text.split_whitespace();
        match (
            w.next().and_then(|n| n.parse().ok()),
            w.next().and_then(|n| n.parse().ok()),
        ) {
            (Some(n), Some(size)) => Ok((n, size)),
            _ => Err(Failure::Protocol(format!("bad STAT reply {text:?}"))),
        }
    }

    /// UIDL and LIST together: (number, UIDL, size) of every message.
    pub fn uidl_list(&mut self) -> Result<Vec<(u32, String, u64)>, Failure> {
        let pipelined = self.pipelining;
        if pipelined {
            self.send(b"UIDL\r\nLIST\r\n", "sending UIDL and LIST")?;
        }
        let uidl = self.multi("UIDL", !pipelined)?;
        let list = self.multi("LIST", !pipelined)?;
        let uids = pairs(&uidl, "UIDL")?;
        let sizes: std::collections::HashMap<u32, u64> = pairs(&list, "LIST")?
            .into_iter()
            .filter_map(|(n, s)| Some((n, s.parse().ok()?)))
            .collect();
        let mut out = Vec::with_capacity(uids.len());
        for (n, uid) in uids {
            let size = sizes.get(&n).copied().unwrap_or(0);
            out.push((n, uid.to_string(), size));
        }
        Ok(out)
    }

    /// RETR of each message, pipelined when allowed; byte-exact contents.
    ///
    /// Pipelined, the next window of RETRs is sent before this window's
    /// replies are read, so the server always has the next command when it
    /// finishes a message: at most two windows (about 3 KB) are unanswered.
    pub fn retr_many(&mut self, numbers: &[u32], sizes: &[u64]) -> Result<Vec<Vec<u8>>, Failure> {
        let mut out = Vec::with_capacity(numbers.len());
        let windows: Vec<&[u32]> = numbers.chunks(self.window()).collect();
        if self.pipelining
            && let Some(first) = windows.first()
        {
            self.send_retr(first)?;
        }
        for (w, window) in windows.iter().enumerate() {
            if self.pipelining
                && let Some(next) = windows.get(w + 1)
            {
                self.send_retr(next)?;
            }
            for (i, &n) in window.iter().enumerate() {
                if !self.pipelining {
                    self.send_retr(&[n])?;
                }
                let hint = sizes.get(w * PIPELINE_WINDOW + i).copied().unwrap_or(0);
                out.push(self.read_retr(n, hint)?);
            }
        }
        Ok(out)
    }

    /// Sends RETR commands without reading the replies (pipelining: the
    /// caller must not send more than fits the socket buffers at once).
    pub fn send_retr(&mut self, numbers: &[u32]) -> Result<(), Failure> {
        let cmds: String = numbers.iter().map(|n| format!("RETR {n}\r\n")).collect();
        self.send(cmds.as_bytes(), "sending RETR")
    }

    /// Reads the reply to `RETR n`: the message, byte for byte.
    pub fn read_retr(&mut self, n: u32, size_hint: u64) -> Result<Vec<u8>, Failure> {
        let doing = format!("during RETR {n}");
        match self.status(&doing)? {
            Status::Ok(_) => self.body(&doing, size_hint.min(64 << 20) as usize),
            Status::Err(text) => Err(Failure::Refused {
                command: format!("RETR {n}"),
                text,
            }),
            Status::Continue(_) => Err(Failure::Protocol("RETR got a continuation".into())),
        }
    }

    /// DELE of each message (applied by the server at QUIT).
    pub fn dele_many(&mut self, numbers: &[u32]) -> Result<(), Failure> {
        for window in numbers.chunks(self.window()) {
            if !self.pipelining {
                for n in window {
                    self.simple(&format!("DELE {n}"))?;
                }
                continue;
            }
            let cmds: String = window.iter().map(|n| format!("DELE {n}\r\n")).collect();
            self.send(cmds.as_bytes(), "sending DELE")?;
            for n in window {
                if let Status::Err(text) = self.status("reading DELE replies")? {
                    return Err(Failure::Refused {
                        command: format!("DELE {n}"),
                        text,
                    });
                }
            }
        }
        Ok(())
    }

    /// Commands sent before reading replies: bounded so that what we send
    /// always fits the socket buffers, or both sides could block writing.
    fn window(&self) -> usize {
        if self.pipelining {
            PIPELINE_WINDOW
        } else {
            usize::MAX
        }
    }

    /// QUIT: the server commits the DELEs.
    pub fn quit(&mut self) -> Result<(), Failure> {
        self.simple("QUIT").map(|_| ())
    }

    /// A one-line command with a one-line reply.
    fn simple(&mut self, command: &str) -> Result<String, Failure> {
        self.send(
            format!("{command}\r\n").as_bytes(),
            &format!("sending {command}"),
        )?;
        self.expect_ok(command)
    }

    /// A command carrying a secret: the text in errors is only `name`.
    fn hidden(&mut self, name: &str, line: &str) -> Result<(), Failure> {
        self.send(line.as_bytes(), &format!("sending {name}"))?;
        self.expect_ok(name).map(|_| ())
    }

    fn expect_ok(&mut self, command: &str) -> Result<String, Failure> {
        match self.status(&format!("waiting for the reply to {command}"))? {
            Status::Ok(text) => Ok(text),
            Status::Err(text) => Err(Failure::Refused {
                command: command.to_string(),
                text,
            }),
            Status::Continue(_) => Err(Failure::Protocol(format!("{command} got a continuation"))),
        }
    }

    /// A multi-line command (sent unless already pipelined).
    fn multi(&mut self, command: &str, send: bool) -> Result<Vec<u8>, Failure> {
        if send {
            self.send(
                format!("{command}\r\n").as_bytes(),
                &format!("sending {command}"),
            )?;
        }
        let doing = format!("reading {command}");
        match self.status(&doing)? {
            Status::Ok(_) => self.body(&doing, 4096),
            Status::Err(text) => Err(Failure::Refused {
                command: command.to_string(),
                text,
            }),
            Status::Continue(_) => Err(Failure::Protocol(format!("{command} got a continuation"))),
        }
    }

    fn send(&mut self, bytes: &[u8], doing: &str) -> Result<(), Failure> {
        self.stream
            .write_all(bytes)
            .and_then(|()| self.stream.flush())
            .map_err(|error| Failure::Io {
                doing: doing.to_string(),
                error,
            })
    }

    fn status(&mut self, doing: &str) -> Result<Status, Failure> {
        loop {
            match reply::status(&self.buf[self.pos..]).map_err(Failure::Protocol)? {
                Parse::Done(st, used) => {
                    self.pos += used;
                    return Ok(st);
                }
                Parse::Incomplete => self.fill(doing)?,
            }
        }
    }

    fn body(&mut self, doing: &str, size_hint: usize) -> Result<Vec<u8>, Failure> {
        let mut out = Vec::with_capacity(size_hint + 64);
        loop {
            let b = reply::body(&self.buf[self.pos..], &mut out);
            self.pos += b.consumed;
            if b.done {
                return Ok(out);
            }
            self.fill(doing)?;
        }
    }

    /// Reads more bytes, first dropping what was consumed so the buffer
    /// stays about one chunk however long the session.
    fn fill(&mut self, doing: &str) -> Result<(), Failure> {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + READ_CHUNK, 0);
        let n = loop {
            match self.stream.read(&mut self.buf[len..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => break r,
            }
        };
        match n {
            Ok(0) => {
                self.buf.truncate(len);
                Err(Failure::Io {
                    doing: doing.to_string(),
                    error: io::ErrorKind::UnexpectedEof.into(),
                })
            }
            Ok(n) => {
                self.buf.truncate(len + n);
                Ok(())
            }
            Err(error) => {
                self.buf.truncate(len);
                Err(Failure::Io {
                    doing: doing.to_string(),
                    error,
                })
            }
        }
    }
}

/// Parses "N value" lines of a UIDL or LIST body.
fn pairs<'a>(body: &'a [u8], what: &str) -> Result<Vec<(u32, &'a str)>, Failure> {
    let text = std::str::from_utf8(body)
        .map_err(|_| Failure::Protocol(format!("{what} reply is not text")))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut w = l.split_whitespace();
            match (w.next().and_then(|n| n.parse().ok()), w.next()) {
                (Some(n), Some(v)) => Ok((n, v)),
                _ => Err(Failure::Protocol(format!("bad {what} line {l:?}"))),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
