//! The POP3 [`Mailbox`]: connect, STLS, login, then list / fetch / remove /
//! finish for `ops::check`, with read-ahead so that the server sends the next
//! batch while this one is classified and recorded.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};

use super::reply;
use super::{Capabilities, Client, Failure};
use crate::config::{Mailbox as Settings, Tls};
use crate::mailbox::connect::{Stream, Target};
use crate::mailbox::sasl::{self, Offer};
use crate::mailbox::secret::{self, Credential};
use crate::mailbox::{Error, Mailbox, MessageRef};

/// Read-ahead bounds, the same as `ops::check`'s batches: at most this many
/// messages and bytes are requested before they are asked for.
const PREFETCH_MESSAGES: usize = crate::mailbox::BATCH_MESSAGES;
const PREFETCH_BYTES: u64 = crate::mailbox::BATCH_BYTES;

/// A logged-in POP3 mailbox (over a [`Stream`]; any stream in tests).
pub struct Pop3Mailbox<S: Read + Write = Stream> {
    client: Client<S>,
    target: Target,
    user: String,
    scheme: &'static str,
    /// (number, size) of every listed message, in list order.
    listed: Vec<(u32, u64)>,
    /// Read-ahead RETRs sent whose replies are still on the wire, in order.
    inflight: VecDeque<(u32, u64)>,
    /// Read-ahead messages taken off the wire (before a DELE or QUIT could
    /// be answered), waiting for the `fetch` that asks for them.
    ready: HashMap<u32, Vec<u8>>,
    /// Pipeline the next batch's RETRs after each fetch. Off when a worker
    /// thread reads ahead instead (`mailbox::ahead`): then the next batch
    /// is read while the caller works, not when it next calls.
    read_ahead: bool,
}

/// Connects, upgrades to TLS as configured, and logs in.
pub fn open(settings: &Settings) -> Result<Pop3Mailbox, Error> {
    let target = Target::of(settings, "POP3");
    let credential = secret::resolve(settings.secret.as_ref(), &target.server())?;
    let fail = |f: Failure| failure(&target, &settings.username, f);
    let tcp = target.tcp()?;
    let ca = settings.ca_file.as_deref();
    let stream = match settings.tls {
        Tls::Implicit => Stream::Tls(Box::new(target.tls(tcp, ca)?)),
        Tls::StartTls | Tls::None => Stream::Plain(tcp),
    };
    let mut client = Client::new(stream);
    let greeting = client.greeting().map_err(fail)?;
    let mut caps = client.capa().map_err(fail)?;
    if settings.tls == Tls::StartTls {
        if caps.as_ref().is_some_and(|c| !c.has("STLS")) {
            return Err(Error::Tls {
                server: target.server(),
                reason: "the server does not offer STLS (tls = \"starttls\")".into(),
            });
        }
        let tcp = match client.stls() {
            Ok(Stream::Plain(tcp)) => tcp,
            Ok(Stream::Tls(_)) => unreachable!("STLS is only sent on a plain connection"),
            Err(Failure::Refused { text, .. }) => {
                return Err(Error::Tls {
                    server: target.server(),
                    reason: format!("the server refused STLS: {text}"),
                });
            }
            Err(f) => return Err(fail(f)),
        };
        client = Client::new(Stream::Tls(Box::new(target.tls(tcp, ca)?)));
        // The greeting's APOP timestamp still applies; capabilities may differ.
        caps = client.capa().map_err(fail)?;
    }
    let offer = Offer {
        listed: caps.is_some(),
        sasl: caps.as_ref().map(Capabilities::sasl).unwrap_or_default(),
        apop: reply::apop_timestamp(&greeting).is_some(),
        user: caps.as_ref().is_none_or(|c| c.has("USER")),
    };
    let encrypted = client.stream.is_encrypted();
    let method = sasl::choose(
        settings.auth,
        &offer,
        matches!(credential, Credential::Token(_)),
        encrypted,
        settings.allow_plaintext_auth,
    )
    .map_err(|reason| Error::Config {
        server: target.server(),
        reason,
    })?;
    client
        .login(method, &settings.username, &credential, &greeting)
        .map_err(fail)?;
    // RFC 2449: capabilities may change after login; PIPELINING matters now.
    let caps = client.capa().map_err(fail)?;
    client.pipelining = caps.as_ref().is_some_and(|c| c.has("PIPELINING"));
    let scheme = if settings.tls == Tls::Implicit {
        "pop3s"
    } else {
        "pop3"
    };
    Ok(Pop3Mailbox::new(
        client,
        target,
        settings.username.clone(),
        scheme,
    ))
}

/// Gives a dialogue failure its server name and exit code.
pub(super) fn failure(target: &Target, user: &str, f: Failure) -> Error {
    match f {
        Failure::Io { doing, error } => target.io_error(&doing, &error),
        Failure::Protocol(reason) => Error::Protocol {
            server: target.server(),
            reason,
        },
        Failure::Refused { command, text } => {
            let code = reply::response_code(&text).map(str::to_ascii_uppercase);
            let login = matches!(command.as_str(), "PASS" | "APOP")
                || command.starts_with("USER ")
                || command.starts_with("AUTH ");
            match code.as_deref() {
                // RFC 2449/3206: the mailbox is busy or the server has a
                // passing problem: cron will retry.
                Some("IN-USE" | "LOGIN-DELAY" | "SYS/TEMP") => Error::Temporary {
                    server: target.server(),
                    reason: format!("{command}: {text}"),
                },
                _ if login => Error::AuthRefused {
                    server: target.server(),
                    user: user.to_string(),
                    reason: text,
                },
                _ if command == "connect" => Error::Unavailable {
                    server: target.server(),
                    reason: format!("greeting: {text}"),
                },
                _ => Error::Protocol {
                    server: target.server(),
                    reason: format!("{command}: {text}"),
                },
            }
        }
    }
}

impl<S: Read + Write> Pop3Mailbox<S> {
    /// A mailbox over a logged-in client.
    fn new(client: Client<S>, target: Target, user: String, scheme: &'static str) -> Self {
        Pop3Mailbox {
            client,
            target,
            user,
            scheme,
            listed: Vec::new(),
            inflight: VecDeque::new(),
            ready: HashMap::new(),
            read_ahead: true,
        }
    }

    /// The same mailbox, for a caller that reads ahead itself.
    pub fn without_read_ahead(mut self) -> Self {
        self.read_ahead = false;
        self
    }

    fn fail(&self, f: Failure) -> Error {
        failure(&self.target, &self.user, f)
    }

    /// Takes every read-ahead reply off the wire: needed before any other
    /// command's reply can be read.
    fn settle(&mut self) -> Result<(), Failure> {
        while let Some((n, size)) = self.inflight.pop_front() {
            let body = self.client.read_retr(n, size)?;
            self.ready.insert(n, body);
        }
        Ok(())
    }

    /// Requests the messages listed after `last`, bounded like a batch, so
    /// the server sends them while the caller works on what it has. Only
    /// with PIPELINING: without it a RETR must wait for the previous reply.
    fn read_ahead(&mut self, last: u32) -> Result<(), Failure> {
        if !self.client.pipelining || !self.read_ahead {
            return Ok(());
        }
        let start = self.listed.partition_point(|&(n, _)| n <= last);
        let mut bytes = 0;
        let next: Vec<(u32, u64)> = self.listed[start..]
            .iter()
            .enumerate()
            .take_while(|&(i, &(_, size))| {
                bytes += size;
                i == 0 || (i < PREFETCH_MESSAGES && bytes <= PREFETCH_BYTES)
            })
            .map(|(_, &m)| m)
            .collect();
        if next.is_empty() {
            return Ok(());
        }
        for window in next.chunks(super::PIPELINE_WINDOW) {
            let numbers: Vec<u32> = window.iter().map(|&(n, _)| n).collect();
            self.client.send_retr(&numbers)?;
        }
        self.inflight.extend(next);
        Ok(())
    }

    fn fetch_inner(&mut self, refs: &[MessageRef]) -> Result<Vec<Vec<u8>>, Failure> {
        self.settle()?;
        let missing: Vec<&MessageRef> = refs
            .iter()
            .filter(|r| !self.ready.contains_key(&r.handle))
            .collect();
        let numbers: Vec<u32> = missing.iter().map(|r| r.handle).collect();
        let sizes: Vec<u64> = missing.iter().map(|r| r.size).collect();
        let fresh = self.client.retr_many(&numbers, &sizes)?;
        for (n, body) in numbers.into_iter().zip(fresh) {
            self.ready.insert(n, body);
        }
        let out = refs
            .iter()
            .map(|r| self.ready.remove(&r.handle).unwrap_or_default())
            .collect();
        // Read ahead but not asked for: the caller skipped them (already
        // recorded). Dropping them keeps memory to one batch.
        self.ready.clear();
        if let Some(last) = refs.iter().map(|r| r.handle).max() {
            self.read_ahead(last)?;
        }
        Ok(out)
    }
}

impl<S: Read + Write> Mailbox for Pop3Mailbox<S> {
    fn describe(&self) -> String {
        format!(
            "{}://{}@{}:{}",
            self.scheme, self.user, self.target.host, self.target.port
        )
    }

    fn list(&mut self) -> Result<Vec<MessageRef>, Error> {
        let entries = self.client.uidl_list().map_err(|f| match f {
            // Without UIDL a message cannot be recognised across runs.
            Failure::Refused { command, text } if command == "UIDL" => Error::Protocol {
                server: self.target.server(),
                reason: format!(
                    "the server does not support UIDL ({text}), which bouncectl needs to recognise messages across runs"
                ),
            },
            f => self.fail(f),
        })?;
        self.listed = entries.iter().map(|(n, _, size)| (*n, *size)).collect();
        self.listed.sort_unstable();
        Ok(entries
            .into_iter()
            .map(|(n, uidl, size)| MessageRef {
                uid: format!("pop3:{}@{}:{uidl}", self.user, self.target.host),
                size,
                handle: n,
            })
            .collect())
    }

    fn fetch(&mut self, refs: &[MessageRef]) -> Result<Vec<Vec<u8>>, Error> {
        self.fetch_inner(refs).map_err(|f| self.fail(f))
    }

    fn remove(&mut self, refs: &[MessageRef]) -> Result<(), Error> {
        let numbers: Vec<u32> = refs.iter().map(|r| r.handle).collect();
        self.settle()
            .and_then(|()| self.client.dele_many(&numbers))
            .map_err(|f| self.fail(f))
    }

    fn finish(mut self: Box<Self>) -> Result<(), Error> {
        self.settle()
            .and_then(|()| {
                self.ready.clear();
                self.client.quit()
            })
            .map_err(|f| self.fail(f))
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;
    use std::time::Duration;

    use super::*;

    /// A server that answers from a script and records what it was sent.
    struct Duplex {
        input: Cursor<Vec<u8>>,
        sent: Vec<u8>,
    }

    impl Read for Duplex {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.input.read(buf)
        }
    }

    impl Write for Duplex {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.sent.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn mailbox(script: &str, messages: u32) -> Pop3Mailbox<Duplex> {
        let mut c = Client::new(Duplex {
            input: Cursor::new(script.as_bytes().to_vec()),
            sent: Vec::new(),
        });
        c.pipelining = true;
        let target = Target {
            protocol: "POP3",
            host: "h".into(),
            port: 110,
            timeout: Duration::from_secs(1),
        };
        let mut m = Pop3Mailbox::new(c, target, "u".into(), "pop3");
        m.listed = (1..=messages).map(|n| (n, 10)).collect();
        m
    }

    fn r(n: u32) -> MessageRef {
        MessageRef {
            uid: format!("pop3:u@h:{n}"),
            size: 10,
            handle: n,
        }
    }

    fn sent(m: &Pop3Mailbox<Duplex>) -> String {
        String::from_utf8_lossy(&m.client.stream.sent).into_owned()
    }

    #[test]
    fn fetch_reads_ahead_and_next_fetch_uses_it() {
        let mut m = mailbox(
            "+OK\r\none\r\n.\r\n+OK\r\ntwo\r\n.\r\n+OK\r\nthree\r\n.\r\n+OK\r\n",
            3,
        );
        assert_eq!(m.fetch(&[r(1)]).unwrap(), [b"one\r\n".to_vec()]);
        // The rest of the mailbox was requested right away.
        assert_eq!(sent(&m), "RETR 1\r\nRETR 2\r\nRETR 3\r\n");
        // A DELE in between: read-ahead replies are taken off the wire first.
        m.remove(&[r(1)]).unwrap();
        assert_eq!(
            m.fetch(&[r(2), r(3)]).unwrap(),
            [b"two\r\n".to_vec(), b"three\r\n".to_vec()]
        );
        assert_eq!(sent(&m), "RETR 1\r\nRETR 2\r\nRETR 3\r\nDELE 1\r\n");
    }

    #[test]
    fn skipped_read_ahead_messages_are_dropped() {
        let mut m = mailbox(
            "+OK\r\none\r\n.\r\n+OK\r\ntwo\r\n.\r\n+OK\r\nthree\r\n.\r\n+OK bye\r\n",
            3,
        );
        m.fetch(&[r(1)]).unwrap();
        // Message 2 is already recorded: only 3 is asked for.
        assert_eq!(m.fetch(&[r(3)]).unwrap(), [b"three\r\n".to_vec()]);
        assert!(m.ready.is_empty() && m.inflight.is_empty());
        Box::new(m).finish().unwrap();
    }

    #[test]
    fn read_ahead_is_bounded_like_a_batch() {
        let n = 3 * PREFETCH_MESSAGES as u32;
        let mut m = mailbox("+OK\r\none\r\n.\r\n", n);
        m.fetch(&[r(1)]).unwrap();
        assert_eq!(m.inflight.len(), PREFETCH_MESSAGES);
        assert_eq!(m.inflight.back(), Some(&(PREFETCH_MESSAGES as u32 + 1, 10)));
    }

    #[test]
    fn connection_dropped_during_read_ahead_fails_the_next_call() {
        let mut m = mailbox("+OK\r\none\r\n.\r\n+OK\r\ntw", 2);
        m.fetch(&[r(1)]).unwrap();
        let e = m.remove(&[r(1)]).unwrap_err();
        assert!(matches!(e, Error::Temporary { .. }), "{e}");
        assert!(e.to_string().contains("during RETR 2"), "{e}");
    }
}
