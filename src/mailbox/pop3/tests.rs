//! Scripted POP3 dialogues: a fake stream replays the server's bytes in
//! small chunks (so every "incomplete" path runs) and records what the
//! client wrote, and when.

use std::io::{self, Read, Write};

use super::session::failure;
use super::*;
use crate::mailbox::Error;
use crate::mailbox::connect::Target;
use crate::mailbox::secret::Sensitive;

/// What the client did, in order.
#[derive(Debug, PartialEq, Eq)]
enum Event {
    Write(String),
    Read,
}

struct Script {
    server: Vec<u8>,
    at: usize,
    chunk: usize,
    log: Vec<Event>,
}

impl Script {
    fn new(server: &str) -> Script {
        Script {
            server: server.as_bytes().to_vec(),
            at: 0,
            chunk: 7,
            log: Vec::new(),
        }
    }

    fn written(&self) -> String {
        self.log
            .iter()
            .filter_map(|e| match e {
                Event::Write(s) => Some(s.as_str()),
                Event::Read => None,
            })
            .collect()
    }
}

impl Read for Script {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.log.last() != Some(&Event::Read) {
            self.log.push(Event::Read);
        }
        let n = buf.len().min(self.chunk).min(self.server.len() - self.at);
        buf[..n].copy_from_slice(&self.server[self.at..self.at + n]);
        self.at += n;
        Ok(n) // 0 at the end: the server closed the connection
    }
}

impl Write for Script {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.log
            .push(Event::Write(String::from_utf8_lossy(buf).into_owned()));
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn pw(p: &str) -> Credential {
    Credential::Password(Sensitive::new(p))
}

fn client(server: &str) -> Client<Script> {
    Client::new(Script::new(server))
}

#[test]
fn user_pass_login_sends_both_commands() {
    let mut c = client("+OK hi\r\n+OK\r\n+OK logged in\r\n");
    let g = c.greeting().unwrap();
    c.login(Method::User, "bob", &pw("secret"), &g).unwrap();
    assert_eq!(c.stream.written(), "USER bob\r\nPASS secret\r\n");
}

#[test]
fn apop_login_uses_greeting_timestamp() {
    let mut c = client("+OK POP3 ready <1896.697170952@dbc.mtview.ca.us>\r\n+OK\r\n");
    let g = c.greeting().unwrap();
    c.login(Method::Apop, "mrose", &pw("tanstaaf"), &g).unwrap();
    assert_eq!(
        c.stream.written(),
        "APOP mrose c4c9334bac560ecc979e58001b3e22fb\r\n"
    );
}

#[test]
fn cram_md5_answers_the_challenge() {
    // "<1896.697170952@postoffice.reston.mci.net>" in base64.
    let ch = B64.encode("<1896.697170952@postoffice.reston.mci.net>");
    let mut c = client(&format!("+ {ch}\r\n+OK\r\n"));
    c.login(Method::CramMd5, "tim", &pw("tanstaaftanstaaf"), "")
        .unwrap();
    let expect = B64.encode("tim b913a602c7eda7a495b4e6e7334d3890");
    assert_eq!(c.stream.written(), format!("AUTH CRAM-MD5\r\n{expect}\r\n"));
}

#[test]
fn auth_plain_and_login_send_base64() {
    let mut c = client("+ \r\n+OK\r\n");
    c.login(Method::Plain, "u", &pw("p"), "").unwrap();
    assert_eq!(c.stream.written(), "AUTH PLAIN\r\nAHUAcA==\r\n");
    let mut c = client("+ VXNlcm5hbWU6\r\n+ UGFzc3dvcmQ6\r\n+OK\r\n");
    c.login(Method::Login, "u", &pw("p"), "").unwrap();
    assert_eq!(c.stream.written(), "AUTH LOGIN\r\ndQ==\r\ncA==\r\n");
}

#[test]
fn xoauth2_failure_answers_error_challenge_then_is_refused() {
    let mut c = client("+ \r\n+ eyJzdGF0dXMiOiI0MDEifQ==\r\n-ERR [AUTH] bad token\r\n");
    let e = c
        .login(
            Method::XOAuth2,
            "u",
            &Credential::Token(Sensitive::new("t")),
            "",
        )
        .unwrap_err();
    assert!(matches!(e, Failure::Refused { ref text, .. } if text == "[AUTH] bad token"));
    let w = c.stream.written();
    assert!(w.ends_with("\r\n\r\n"), "{w:?}");
}

#[test]
fn refused_password_maps_to_auth_refused_without_the_password() {
    let mut c = client("+OK\r\n-ERR [AUTH] Authentication failed.\r\n");
    let e = c
        .login(Method::User, "bob", &pw("hunter2"), "")
        .unwrap_err();
    let t = Target {
        protocol: "POP3",
        host: "h".into(),
        port: 110,
        timeout: std::time::Duration::from_secs(1),
    };
    let e = failure(&t, "bob", e);
    assert!(matches!(e, Error::AuthRefused { .. }), "{e:?}");
    assert!(!e.to_string().contains("hunter2"));
    assert_eq!(
        e.to_string(),
        "POP3 server h:110 refused login for bob: [AUTH] Authentication failed."
    );
}

#[test]
fn mailbox_in_use_is_temporary() {
    let t = Target {
        protocol: "POP3",
        host: "h".into(),
        port: 110,
        timeout: std::time::Duration::from_secs(1),
    };
    let f = Failure::Refused {
        command: "PASS".into(),
        text: "[IN-USE] Mailbox is locked".into(),
    };
    assert!(matches!(failure(&t, "u", f), Error::Temporary { .. }));
}

#[test]
fn capa_lists_sasl_and_pipelining() {
    let mut c = client("+OK\r\nUSER\r\nSASL PLAIN cram-md5\r\nPIPELINING\r\n.\r\n");
    let caps = c.capa().unwrap().unwrap();
    assert!(caps.has("pipelining"));
    assert!(caps.has("USER"));
    assert!(!caps.has("STLS"));
    assert_eq!(caps.sasl(), ["PLAIN", "CRAM-MD5"]);
    let mut c = client("-ERR unknown command\r\n");
    assert!(c.capa().unwrap().is_none());
}

#[test]
fn uidl_and_list_join_on_message_number() {
    let mut c = client("+OK\r\n1 aaa\r\n2 bbb\r\n.\r\n+OK 2 messages\r\n1 120\r\n2 340\r\n.\r\n");
    let l = c.uidl_list().unwrap();
    assert_eq!(
        l,
        [(1, "aaa".to_string(), 120), (2, "bbb".to_string(), 340)]
    );
    assert_eq!(c.stream.written(), "UIDL\r\nLIST\r\n");
}

#[test]
fn missing_uidl_is_reported_as_refused_uidl() {
    let mut c = client("-ERR unknown command\r\n");
    let e = c.uidl_list().unwrap_err();
    assert!(matches!(e, Failure::Refused { ref command, .. } if command == "UIDL"));
}

#[test]
fn pipelined_retr_sends_the_batch_before_reading() {
    let mut c = client("+OK\r\nA\r\n.\r\n+OK\r\n..B\r\n.\r\n+OK\r\nC\n.\n");
    c.pipelining = true;
    let got = c.retr_many(&[1, 2, 3], &[3, 4, 2]).unwrap();
    assert_eq!(
        got,
        [b"A\r\n".to_vec(), b".B\r\n".to_vec(), b"C\n".to_vec()]
    );
    assert_eq!(
        c.stream.log[0],
        Event::Write("RETR 1\r\nRETR 2\r\nRETR 3\r\n".into())
    );
    assert!(c.stream.log[1..].iter().all(|e| *e == Event::Read));
}

#[test]
fn pipelined_retr_sends_the_next_window_before_reading_this_one() {
    let n = 2 * PIPELINE_WINDOW + 1;
    let script: String = (1..=n).map(|i| format!("+OK\r\nm{i}\r\n.\r\n")).collect();
    let mut c = client(&script);
    c.pipelining = true;
    let numbers: Vec<u32> = (1..=n as u32).collect();
    let got = c.retr_many(&numbers, &[]).unwrap();
    assert_eq!(got.len(), n);
    assert_eq!(got[n - 1], format!("m{n}\r\n").into_bytes());
    let retrs = |e: &Event| match e {
        Event::Write(w) => w.matches("RETR ").count(),
        Event::Read => 0,
    };
    // Windows 1 and 2 go out before any reply is read; window 3 only after
    // replies of window 1 were read: never more than two unanswered.
    assert_eq!(retrs(&c.stream.log[0]), PIPELINE_WINDOW);
    assert_eq!(retrs(&c.stream.log[1]), PIPELINE_WINDOW);
    assert_eq!(c.stream.log[2], Event::Read);
    let third = c.stream.log.iter().rposition(|e| retrs(e) > 0).unwrap();
    assert_eq!(retrs(&c.stream.log[third]), 1);
    assert!(c.stream.log[2..third].contains(&Event::Read));
}

#[test]
fn unpipelined_retr_waits_for_each_reply() {
    let mut c = client("+OK\r\nA\r\n.\r\n+OK\r\nB\r\n.\r\n");
    let got = c.retr_many(&[1, 2], &[]).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(c.stream.log[0], Event::Write("RETR 1\r\n".into()));
    assert_eq!(c.stream.log[1], Event::Read);
}

#[test]
fn connection_dropped_mid_retr_is_an_io_failure() {
    let mut c = client("+OK 300 octets\r\nFrom: a\r\nSubject: cut");
    let e = c.retr_many(&[1], &[300]).unwrap_err();
    match e {
        Failure::Io { doing, error } => {
            assert_eq!(doing, "during RETR 1");
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn pipelined_dele_reads_every_reply() {
    let mut c = client("+OK\r\n+OK\r\n-ERR no such message\r\n");
    c.pipelining = true;
    let e = c.dele_many(&[1, 2, 9]).unwrap_err();
    assert!(matches!(e, Failure::Refused { ref command, .. } if command == "DELE 9"));
    assert_eq!(c.stream.written(), "DELE 1\r\nDELE 2\r\nDELE 9\r\n");
}

#[test]
fn stls_with_injected_data_is_refused() {
    let mut c = client("+OK Begin TLS\r\n+OK injected\r\n");
    c.stream.chunk = 64;
    assert!(matches!(c.stls(), Err(Failure::Protocol(_))));
    let c = client("+OK Begin TLS\r\n");
    assert!(c.stls().is_ok());
}

#[test]
fn stat_reads_count_and_size() {
    let mut c = client("+OK 2 320\r\n");
    assert_eq!(c.stat().unwrap(), (2, 320));
}

#[test]
fn pipelined_commands_go_in_bounded_windows() {
    let replies: String = (0..250).map(|_| "+OK\r\n").collect();
    let mut c = client(&replies);
    c.stream.chunk = 4096;
    c.pipelining = true;
    let numbers: Vec<u32> = (1..=250).collect();
    c.dele_many(&numbers).unwrap();
    let writes: Vec<usize> = c
        .stream
        .log
        .iter()
        .filter_map(|e| match e {
            Event::Write(s) => Some(s.matches("DELE").count()),
            Event::Read => None,
        })
        .collect();
    assert_eq!(writes, [100, 100, 50]);
}
