//! IMAP mailboxes on the `imap` crate, over our own TCP/TLS streams
//! (`connect`), so certificate checks and timeouts are the same as POP3's.
//!
//! STARTTLS is done here on the plain socket before the crate sees the
//! stream: the crate's own STARTTLS lives in its `ClientBuilder`, which opens
//! its own socket and connector and so would bypass our `ca_file` and
//! timeouts.
//!
//! The crate and our own `UID FETCH ... BODY.PEEK[]` share the connection
//! (`wire`): that one command, which carries every message, is sent and
//! parsed here (`reply`), because the crate's parser spends more CPU on a
//! message than classifying it does.

mod reply;
mod wire;

use std::cell::Cell;
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::net::TcpStream;

use self::reply::{Response, Status};
use self::wire::Shared;
use super::connect::{Stream, Target};
use super::sasl::{self, Method, Offer};
use super::secret::{self, Credential, Sensitive};
use super::{Error, Mailbox, MessageRef};
use crate::config::{After, Mailbox as Settings, Tls};

/// A logged-in IMAP mailbox with its folder selected.
pub struct ImapMailbox {
    session: imap::Session<Shared>,
    /// The session's connection, for our own `UID FETCH`.
    wire: Shared,
    /// Our commands' tags are `b1`, `b2`, ...; the crate's are `a1`, ...
    tag: u32,
    target: Target,
    user: String,
    folder: String,
    uidvalidity: u32,
    /// Messages in the folder when it was selected.
    exists: u32,
    after: After,
    /// RFC 4315: `UID EXPUNGE` removes only our messages.
    uidplus: bool,
    /// RFC 6851: `UID MOVE`.
    can_move: bool,
    /// UIDs we flagged `\Deleted`, expunged at finish: one expunge per
    /// session instead of one per batch (each makes Dovecot rewrite its
    /// index), and the messages are already recorded either way.
    flagged: Vec<u32>,
    scheme: &'static str,
}

/// Connects, upgrades to TLS as configured, logs in and selects the folder.
pub fn open(settings: &Settings) -> Result<Box<dyn Mailbox>, Error> {
    let target = Target::of(settings, "IMAP");
    let credential = secret::resolve(settings.secret.as_ref(), &target.server())?;
    let tcp = target.tcp()?;
    let ca = settings.ca_file.as_deref();
    let (wire, greet) = match settings.tls {
        Tls::Implicit => (Stream::Tls(Box::new(target.tls(tcp, ca)?)), true),
        Tls::None => (Stream::Plain(tcp), true),
        Tls::StartTls => {
            let tcp = starttls(&target, tcp)?;
            (Stream::Tls(Box::new(target.tls(tcp, ca)?)), false)
        }
    };
    let wire = Shared::new(wire);
    let mut client = imap::Client::new(wire.clone());
    if greet {
        greeted(&target, &mut client)?;
    }
    let caps = client
        .capabilities()
        .map_err(|e| imap_error(&target, "reading capabilities", e))?;
    let offer = Offer {
        listed: true,
        // The crate does not expose the capability type, so ask for each
        // mechanism bouncectl can use.
        sasl: ["PLAIN", "LOGIN", "CRAM-MD5", "XOAUTH2"]
            .into_iter()
            .filter(|m| caps.has_str(format!("AUTH={m}")))
            .map(str::to_string)
            .collect(),
        apop: false,
        user: !caps.has_str("LOGINDISABLED"),
    };
    drop(caps);
    let method = sasl::choose(
        settings.auth,
        &offer,
        matches!(credential, Credential::Token(_)),
        settings.tls != Tls::None,
        settings.allow_plaintext_auth,
    )
    .map_err(|reason| Error::Config {
        server: target.server(),
        reason,
    })?;
    let user = settings.username.as_str();
    let (Credential::Password(secret) | Credential::Token(secret)) = &credential;
    let logged_in = match method {
        Method::User => client.login(user, secret.expose()),
        m => client.authenticate(
            m.name(),
            &Sasl {
                method: m,
                user,
                secret,
                step: Cell::new(0),
            },
        ),
    };
    let mut session = logged_in.map_err(|(e, _)| login_error(&target, user, e))?;
    let caps = session
        .capabilities()
        .map_err(|e| imap_error(&target, "reading capabilities", e))?;
    let (uidplus, can_move) = (caps.has_str("UIDPLUS"), caps.has_str("MOVE"));
    drop(caps);
    let selected = session
        .select(&settings.folder)
        .map_err(|e| imap_error(&target, &format!("selecting folder {}", settings.folder), e))?;
    let uidvalidity = selected.uid_validity.ok_or_else(|| Error::Protocol {
        server: target.server(),
        reason: format!(
            "folder {} has no UIDVALIDITY, which bouncectl needs to recognise messages across runs",
            settings.folder
        ),
    })?;
    // The crate cannot pipeline: a worker thread fetches the next batch
    // while the caller records this one.
    Ok(Box::new(super::ahead::ReadAhead::new(Box::new(
        ImapMailbox {
            session,
            wire,
            tag: 0,
            target,
            user: settings.username.clone(),
            folder: settings.folder.clone(),
            uidvalidity,
            exists: selected.exists,
            after: settings.after.clone(),
            uidplus,
            can_move,
            flagged: Vec::new(),
            scheme: if settings.tls == Tls::Implicit {
                "imaps"
            } else {
                "imap"
            },
        },
    ))))
}

/// Reads the greeting: an error when it is a BYE.
fn greeted(target: &Target, client: &mut imap::Client<Shared>) -> Result<(), Error> {
    let greeting = client
        .read_greeting()
        .map_err(|e| imap_error(target, "waiting for the greeting", e))?;
    if greeting.starts_with(b"* BYE") {
        return Err(Error::Unavailable {
            server: target.server(),
            reason: String::from_utf8_lossy(&greeting).trim().to_string(),
        });
    }
    Ok(())
}

/// Reads the greeting and performs STARTTLS on the plain socket, one byte
/// at a time so that nothing sent before TLS is buffered and later taken as
/// protected (the STARTTLS command-injection class of bugs).
fn starttls(target: &Target, mut tcp: TcpStream) -> Result<TcpStream, Error> {
    let greeting = read_line(target, &mut tcp, "waiting for the greeting")?;
    if !greeting.starts_with("* OK") {
        return Err(Error::Unavailable {
            server: target.server(),
            reason: greeting.trim().to_string(),
        });
    }
    tcp.write_all(b"s1 STARTTLS\r\n")
        .and_then(|()| tcp.flush())
        .map_err(|e| target.io_error("sending STARTTLS", &e))?;
    loop {
        let line = read_line(target, &mut tcp, "waiting for the STARTTLS reply")?;
        if let Some(rest) = line.strip_prefix("s1 ") {
            if rest.get(..2).is_some_and(|s| s.eq_ignore_ascii_case("OK")) {
                return Ok(tcp);
            }
            return Err(Error::Tls {
                server: target.server(),
                reason: format!("the server refused STARTTLS: {}", rest.trim()),
            });
        }
    }
}

fn read_line(target: &Target, tcp: &mut TcpStream, doing: &str) -> Result<String, Error> {
    let mut line = Vec::new();
    let mut byte = [0u8];
    while !line.ends_with(b"\n") {
        match tcp.read(&mut byte) {
            Ok(0) => {
                return Err(target.io_error(doing, &std::io::ErrorKind::UnexpectedEof.into()));
            }
            Ok(_) => line.push(byte[0]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(target.io_error(doing, &e)),
        }
        if line.len() > 64 * 1024 {
            return Err(Error::Protocol {
                server: target.server(),
                reason: "endless line before STARTTLS".into(),
            });
        }
    }
    Ok(String::from_utf8_lossy(&line).into_owned())
}

/// SASL responses for `AUTHENTICATE`; the crate base64-encodes them.
struct Sasl<'a> {
    method: Method,
    user: &'a str,
    secret: &'a Sensitive,
    step: Cell<usize>,
}

impl imap::Authenticator for Sasl<'_> {
    type Response = Vec<u8>;

    fn process(&self, challenge: &[u8]) -> Vec<u8> {
        let step = self.step.replace(self.step.get() + 1);
        let secret = self.secret.expose();
        match (self.method, step) {
            (Method::CramMd5, _) => sasl::cram_md5(self.user, secret, challenge),
            (Method::Login, 0) => self.user.as_bytes().to_vec(),
            (Method::Login, _) => secret.as_bytes().to_vec(),
            (Method::XOAuth2, 0) => sasl::xoauth2(self.user, secret),
            // A second XOAUTH2 challenge is the error JSON: answer empty so
            // the server sends its tagged NO.
            (Method::XOAuth2, _) => Vec::new(),
            (_, _) => sasl::plain(self.user, secret),
        }
    }
}

/// A refused login is exit 77, unless the server says it is temporary.
fn login_error(target: &Target, user: &str, e: imap::Error) -> Error {
    match e {
        imap::Error::No(no) if !is_unavailable(&no.information) => Error::AuthRefused {
            server: target.server(),
            user: user.to_string(),
            reason: no.information,
        },
        e => imap_error(target, "logging in", e),
    }
}

/// RFC 5530 `[UNAVAILABLE]` / `[SERVERBUG]`: a passing server problem. The
/// crate's parser knows no such codes, so they stay in the text.
fn is_unavailable(information: &str) -> bool {
    let upper = information.to_ascii_uppercase();
    upper.contains("[UNAVAILABLE]") || upper.contains("[SERVERBUG]")
}

/// Maps a crate error; `doing` says what we were doing.
fn imap_error(target: &Target, doing: &str, e: imap::Error) -> Error {
    let server = target.server();
    match e {
        imap::Error::Io(io) => target.io_error(doing, &io),
        imap::Error::ConnectionLost => Error::Temporary {
            server,
            reason: format!("connection dropped {doing}"),
        },
        imap::Error::Bye(bye) => Error::Temporary {
            server,
            reason: format!("the server closed the session {doing}: {}", bye.information),
        },
        imap::Error::No(no) if is_unavailable(&no.information) => Error::Temporary {
            server,
            reason: format!("{doing}: {}", no.information),
        },
        imap::Error::No(no) => Error::Protocol {
            server,
            reason: format!("{doing}: {}", no.information),
        },
        imap::Error::Bad(bad) => Error::Protocol {
            server,
            reason: format!("{doing}: {}", bad.information),
        },
        e => Error::Protocol {
            server,
            reason: format!("{doing}: {e}"),
        },
    }
}

/// A UID set in ranges: "3:5,9".
fn uid_set(uids: impl IntoIterator<Item = u32>) -> String {
    uid_sets(uids, usize::MAX).concat()
}

/// The longest UID set put in one STORE, COPY, MOVE or EXPUNGE. Servers
/// limit command lines (Dovecot to 64 KiB), and the set of messages removed
/// at once, or expunged at the end of a session, can hold thousands of
/// scattered UIDs (kept non-bounces between the removed ones).
const MAX_SET: usize = 8 * 1024;

/// The highest UID of a set made by [`uid_sets`] (its last range's end).
fn set_last(set: &str) -> u32 {
    let last = set.rsplit([',', ':']).next().unwrap_or_default();
    last.parse().unwrap_or(u32::MAX)
}

/// `uids` in ranges, as sets of at most `max` characters (one range at
/// least): "1:3,7" and "9:12" rather than "1:3,7,9:12" when `max` < 10.
fn uid_sets(uids: impl IntoIterator<Item = u32>, max: usize) -> Vec<String> {
    let mut uids: Vec<u32> = uids.into_iter().collect();
    uids.sort_unstable();
    uids.dedup();
    let mut sets = Vec::new();
    let mut out = String::new();
    let mut i = 0;
    while i < uids.len() {
        let start = uids[i];
        while i + 1 < uids.len() && uids[i + 1] == uids[i] + 1 {
            i += 1;
        }
        let range = if uids[i] == start {
            start.to_string()
        } else {
            format!("{start}:{}", uids[i])
        };
        if !out.is_empty() && out.len() + 1 + range.len() > max {
            sets.push(std::mem::take(&mut out));
        }
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(&range);
        i += 1;
    }
    if !out.is_empty() {
        sets.push(out);
    }
    sets
}

impl ImapMailbox {
    fn err(&self, doing: &str, e: imap::Error) -> Error {
        imap_error(&self.target, doing, e)
    }

    /// Sends `args` under our own tag and passes every response up to its
    /// tagged completion to `each`; a NO, BAD or BYE is the error.
    fn command(
        &mut self,
        args: &str,
        doing: &str,
        mut each: impl FnMut(Response<'_>),
    ) -> Result<(), Error> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        let mut wire = self.wire.lock();
        wire.send(format!("{tag} {args}\r\n").as_bytes())
            .map_err(|e| self.target.io_error(doing, &e))?;
        let done = loop {
            let step = wire.response(|r| match r {
                Response::Tagged {
                    tag: t,
                    status,
                    text,
                } if t == tag.as_bytes() => Some(Ok((status, text))),
                Response::Bye(text) => Some(Err(text)),
                r => {
                    each(r);
                    None
                }
            });
            match step {
                Ok(None) => {}
                Ok(Some(done)) => break done,
                Err(wire::Failure::Io(e)) => return Err(self.target.io_error(doing, &e)),
                Err(wire::Failure::Protocol(reason)) => {
                    return Err(Error::Protocol {
                        server: self.target.server(),
                        reason: format!("{doing}: {reason}"),
                    });
                }
            }
        };
        wire.shrink();
        drop(wire);
        let server = self.target.server();
        match done {
            Ok((Status::Ok, _)) => Ok(()),
            Ok((Status::No, text)) if is_unavailable(&text) => Err(Error::Temporary {
                server,
                reason: format!("{doing}: {text}"),
            }),
            Ok((_, text)) => Err(Error::Protocol {
                server,
                reason: format!("{doing}: {text}"),
            }),
            Err(text) => Err(Error::Temporary {
                server,
                reason: format!("the server closed the session {doing}: {text}"),
            }),
        }
    }

    /// Untagged responses we do not use would pile up for the whole session.
    fn drain(&mut self) {
        self.session.take_all_unsolicited().for_each(drop);
    }

    /// Flags the messages of `set` (which holds `uids`) `\Deleted`.
    fn delete(&mut self, set: &str, uids: &[u32]) -> Result<(), Error> {
        self.session
            .uid_store(set, "+FLAGS.SILENT (\\Deleted)")
            .map_err(|e| self.err("flagging messages deleted", e))?;
        self.flagged.extend_from_slice(uids);
        Ok(())
    }

    /// Runs a COPY or MOVE; when the target folder does not exist, creates
    /// it once and retries (RFC 3501 TRYCREATE).
    fn copy_or_move(&mut self, set: &str, folder: &str, mv: bool) -> Result<(), Error> {
        let doing = format!("moving messages to {folder}");
        if folder.contains(['\r', '\n']) {
            return Err(Error::Config {
                server: self.target.server(),
                reason: format!("folder name {folder:?} contains a line break"),
            });
        }
        // The crate quotes the mailbox of UID MOVE but not of UID COPY.
        let quoted = format!("\"{}\"", folder.replace('\\', "\\\\").replace('"', "\\\""));
        let attempt = |s: &mut imap::Session<Shared>| {
            if mv {
                s.uid_mv(set, folder)
            } else {
                s.uid_copy(set, &quoted)
            }
        };
        match attempt(&mut self.session) {
            Ok(()) => Ok(()),
            // Usually TRYCREATE: the folder does not exist yet. (The crate
            // does not export its response-code type, so any NO gets one
            // CREATE; if that fails too, the original refusal is reported.)
            Err(imap::Error::No(no)) => {
                if self.session.create(folder).is_err() {
                    return Err(self.err(&doing, imap::Error::No(no)));
                }
                attempt(&mut self.session).map_err(|e| self.err(&doing, e))
            }
            Err(e) => Err(self.err(&doing, e)),
        }
    }
}

impl Mailbox for ImapMailbox {
    fn describe(&self) -> String {
        format!(
            "{}://{}@{}:{}/{}",
            self.scheme, self.user, self.target.host, self.target.port, self.folder
        )
    }

    fn list(&mut self) -> Result<Vec<MessageRef>, Error> {
        // `UID FETCH 1:*` in an empty folder is an error to some servers.
        if self.exists == 0 {
            return Ok(Vec::new());
        }
        // One command, read by our own parser: the crate's took longer than
        // the server to list thousands of messages, and a `UID SEARCH` first
        // added a round trip for nothing (every FETCH response names its UID).
        let mut sizes: Vec<(u32, u64)> = Vec::with_capacity(self.exists as usize);
        self.command("UID FETCH 1:* (UID RFC822.SIZE)", "listing messages", |r| {
            // Without a size it is an unsolicited flag update.
            if let Response::Fetch {
                uid: Some(uid),
                size: Some(size),
                ..
            } = r
            {
                sizes.push((uid, size));
            }
        })?;
        sizes.sort_unstable();
        sizes.dedup_by_key(|(uid, _)| *uid);
        Ok(sizes
            .into_iter()
            .map(|(uid, size)| MessageRef {
                uid: format!(
                    "imap:{}@{}/{};UIDVALIDITY={};UID={uid}",
                    self.user, self.target.host, self.folder, self.uidvalidity
                ),
                size,
                handle: uid,
            })
            .collect())
    }

    fn fetch(&mut self, refs: &[MessageRef]) -> Result<Vec<Vec<u8>>, Error> {
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        let mut bodies: HashMap<u32, Vec<u8>> = HashMap::with_capacity(refs.len());
        let wanted: HashSet<u32> = refs.iter().map(|r| r.handle).collect();
        let args = format!(
            "UID FETCH {} BODY.PEEK[]",
            uid_set(refs.iter().map(|r| r.handle))
        );
        self.command(&args, "fetching messages", |r| {
            if let Response::Fetch {
                uid: Some(uid),
                body: Some(body),
                ..
            } = r
                && wanted.contains(&uid)
            {
                bodies.insert(uid, body.into_owned());
            }
        })?;
        refs.iter()
            .map(|r| {
                bodies.remove(&r.handle).ok_or_else(|| Error::Temporary {
                    server: self.target.server(),
                    reason: format!("message UID {} vanished during the session", r.handle),
                })
            })
            .collect()
    }

    fn remove(&mut self, refs: &[MessageRef]) -> Result<(), Error> {
        let mut uids: Vec<u32> = refs.iter().map(|r| r.handle).collect();
        uids.sort_unstable();
        uids.dedup();
        let after = self.after.clone();
        for set in uid_sets(uids.iter().copied(), MAX_SET) {
            // The UIDs of this set: the next ones in order, up to its last.
            let last = set_last(&set);
            let n = uids.partition_point(|&u| u <= last);
            let these: Vec<u32> = uids.drain(..n).collect();
            match &after {
                After::Keep => {}
                After::Delete => self.delete(&set, &these)?,
                After::Move(folder) if self.can_move => self.copy_or_move(&set, folder, true)?,
                After::Move(folder) => {
                    self.copy_or_move(&set, folder, false)?;
                    self.delete(&set, &these)?;
                }
            }
            self.drain();
        }
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<(), Error> {
        if !self.flagged.is_empty() {
            let done = if self.uidplus {
                // UID EXPUNGE leaves alone what others flagged \Deleted.
                let flagged = std::mem::take(&mut self.flagged);
                uid_sets(flagged, MAX_SET)
                    .into_iter()
                    .try_for_each(|set| self.session.uid_expunge(set).map(drop))
            } else {
                self.session.expunge().map(drop)
            };
            done.map_err(|e| imap_error(&self.target, "expunging", e))?;
        }
        // Everything is recorded and removed: a failed LOGOUT loses nothing.
        let _ = self.session.logout();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uid_set_collapses_runs() {
        assert_eq!(uid_set([9, 3, 4, 5, 7, 8, 1]), "1,3:5,7:9");
        assert_eq!(uid_set([42]), "42");
        assert_eq!(uid_set([]), "");
    }

    #[test]
    fn scattered_uids_are_split_into_bounded_sets() {
        assert_eq!(uid_sets([1, 2, 3, 7, 9, 10, 11, 12], 9), ["1:3,7", "9:12"]);
        // One range longer than the bound still goes out whole.
        assert_eq!(uid_sets([100, 101], 3), ["100:101"]);
        let every_other: Vec<u32> = (0..20_000).map(|i| 1_000_000 + 2 * i).collect();
        let sets = uid_sets(every_other.iter().copied(), MAX_SET);
        assert!(sets.len() > 1 && sets.iter().all(|s| s.len() <= MAX_SET));
        assert_eq!(sets.join(","), uid_set(every_other));
        assert_eq!(set_last("1:3,7"), 7);
        assert_eq!(set_last("9:12"), 12);
    }

    #[test]
    fn sasl_login_answers_user_then_password() {
        let secret = Sensitive::new("p");
        let a = Sasl {
            method: Method::Login,
            user: "u",
            secret: &secret,
            step: Cell::new(0),
        };
        use imap::Authenticator;
        assert_eq!(a.process(b"Username:"), b"u");
        assert_eq!(a.process(b"Password:"), b"p");
    }

    #[test]
    fn sasl_xoauth2_answers_error_challenge_with_empty_response() {
        use imap::Authenticator;
        let token = Sensitive::new("tok");
        let a = Sasl {
            method: Method::XOAuth2,
            user: "u@example.com",
            secret: &token,
            step: Cell::new(0),
        };
        assert_eq!(
            a.process(b""),
            b"user=u@example.com\x01auth=Bearer tok\x01\x01"
        );
        assert_eq!(a.process(b"{\"status\":\"401\"}"), b"");
    }

    #[test]
    fn sasl_cram_md5_and_plain() {
        use imap::Authenticator;
        let pw = Sensitive::new("tanstaaftanstaaf");
        let a = Sasl {
            method: Method::CramMd5,
            user: "tim",
            secret: &pw,
            step: Cell::new(0),
        };
        let r = a.process(b"<1896.697170952@postoffice.reston.mci.net>");
        assert_eq!(r, b"tim b913a602c7eda7a495b4e6e7334d3890");
        let p = Sasl {
            method: Method::Plain,
            user: "tim",
            secret: &pw,
            step: Cell::new(0),
        };
        assert_eq!(p.process(b""), b"\0tim\0tanstaaftanstaaf");
    }

    #[test]
    fn unavailable_response_code_is_recognised() {
        assert!(is_unavailable(
            "[UNAVAILABLE] Temporary authentication failure."
        ));
        assert!(is_unavailable("[SERVERBUG] Internal error"));
        assert!(!is_unavailable(
            "[AUTHENTICATIONFAILED] Authentication failed."
        ));
    }
}
