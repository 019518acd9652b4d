//! POP3 and IMAP against scripted servers on 127.0.0.1: what Dovecot will
//! not do on request (drop mid-message, fall silent, lack UIDL, lack UIDPLUS
//! and MOVE).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bouncectl::config::{After, Auth, Mailbox as Settings, Protocol, Secret, Tls};
use bouncectl::exit::{Exit, ExitCode};
use bouncectl::mailbox::{self, Error};

/// Settings for a scripted server on 127.0.0.1 without TLS.
fn scripted(protocol: Protocol, port: u16, timeout_secs: u64) -> Settings {
    Settings {
        protocol,
        host: "127.0.0.1".into(),
        port,
        tls: Tls::None,
        auth: Auth::User,
        username: "u".into(),
        secret: Some(Secret::Inline("p".into())),
        ca_file: None,
        folder: "INBOX".into(),
        after: After::Delete,
        allow_plaintext_auth: true,
        timeout_secs,
    }
}

/// Runs `serve` on one accepted connection in a thread; returns the port.
fn serve_once(serve: impl FnOnce(TcpStream) + Send + 'static) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        if let Ok((s, _)) = l.accept() {
            serve(s);
        }
    });
    port
}

/// Answers each command line with the next scripted reply.
fn pop3_script(mut s: TcpStream, replies: &[&str]) {
    s.write_all(b"+OK scripted\r\n").unwrap();
    let mut buf = [0u8; 1024];
    for r in replies {
        // One command per read is enough for these unpipelined dialogues.
        if s.read(&mut buf).unwrap_or(0) == 0 {
            return;
        }
        if s.write_all(r.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn pop3_server_dropping_mid_retr_is_temporary() {
    let port = serve_once(|s| {
        pop3_script(
            s,
            &[
                "-ERR no CAPA\r\n",
                "+OK\r\n",
                "+OK\r\n",
                "-ERR no CAPA\r\n",
                "+OK\r\n1 uid-1\r\n.\r\n",
                "+OK\r\n1 500\r\n.\r\n",
                "+OK 500 octets\r\nFrom: a@example.org\r\nSubject: cut here",
            ],
        );
        // returning drops the connection in the middle of the message
    });
    let s = scripted(Protocol::Pop3, port, 5);
    let mut mb = mailbox::open(&s).unwrap();
    let refs = mb.list().unwrap();
    assert_eq!(refs[0].uid, "pop3:u@127.0.0.1:uid-1");
    let e = mb.fetch(&refs).unwrap_err();
    assert!(matches!(e, Error::Temporary { .. }), "{e}");
    assert_eq!(e.exit(), Exit::TempFail);
    assert!(
        e.to_string().contains("connection dropped during RETR 1"),
        "{e}"
    );
}

#[test]
fn pop3_server_without_uidl_is_a_clear_error() {
    let port = serve_once(|s| {
        pop3_script(
            s,
            &[
                "-ERR\r\n",
                "+OK\r\n",
                "+OK\r\n",
                "-ERR\r\n",
                "-ERR unknown command\r\n",
            ],
        )
    });
    let mut mb = mailbox::open(&scripted(Protocol::Pop3, port, 5)).unwrap();
    let e = mb.list().unwrap_err();
    assert!(e.to_string().contains("does not support UIDL"), "{e}");
}

#[test]
fn silent_server_times_out_within_timeout() {
    for protocol in [Protocol::Pop3, Protocol::Imap] {
        let port = serve_once(|s| {
            std::thread::sleep(Duration::from_secs(6));
            drop(s);
        });
        let started = Instant::now();
        let e = mailbox::open(&scripted(protocol, port, 1))
            .err()
            .expect("timeout");
        let took = started.elapsed();
        assert!(matches!(e, Error::Temporary { .. }), "{protocol:?}: {e}");
        assert_eq!(e.exit(), Exit::TempFail);
        assert!(e.to_string().contains("timed out after 1s"), "{e}");
        assert!(took < Duration::from_secs(3), "{protocol:?} took {took:?}");
    }
}

#[test]
fn imap_server_dropping_mid_fetch_is_temporary() {
    let port = serve_once(|mut s| {
        s.write_all(b"* OK scripted\r\n").unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        let reply = |line: &str| -> Option<String> {
            let tag = line.split_whitespace().next()?.to_string();
            let cmd = line.to_ascii_uppercase();
            Some(if cmd.contains("CAPABILITY") {
                format!("* CAPABILITY IMAP4rev1 UIDPLUS\r\n{tag} OK done\r\n")
            } else if cmd.contains("SELECT") {
                format!("* 1 EXISTS\r\n* OK [UIDVALIDITY 7] ok\r\n{tag} OK [READ-WRITE] done\r\n")
            } else if cmd.contains("SEARCH") {
                format!("* SEARCH 4\r\n{tag} OK done\r\n")
            } else if cmd.contains("RFC822.SIZE") {
                format!("* 1 FETCH (UID 4 RFC822.SIZE 900)\r\n{tag} OK done\r\n")
            } else if cmd.contains("BODY.PEEK") {
                "* 1 FETCH (UID 4 BODY[] {900}\r\nFrom: a@example.org\r\n".to_string()
            } else {
                format!("{tag} OK done\r\n")
            })
        };
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let Some(out) = reply(&line) else { return };
            s.write_all(out.as_bytes()).unwrap();
            if out.contains("BODY[]") {
                return; // drop mid-literal
            }
        }
    });
    let mut mb = mailbox::open(&scripted(Protocol::Imap, port, 5)).unwrap();
    let refs = mb.list().unwrap();
    assert_eq!(refs[0].uid, "imap:u@127.0.0.1/INBOX;UIDVALIDITY=7;UID=4");
    let e = mb.fetch(&refs).unwrap_err();
    assert!(matches!(e, Error::Temporary { .. }), "{e}");
    assert_eq!(e.exit(), Exit::TempFail);
}

#[test]
fn refused_connection_is_unavailable() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = mailbox::open(&scripted(Protocol::Pop3, port, 2))
        .err()
        .unwrap();
    assert!(matches!(e, Error::Unavailable { .. }), "{e}");
    assert!(
        e.to_string()
            .starts_with(&format!("cannot connect to POP3 server 127.0.0.1:{port}: ")),
        "{e}"
    );
    assert_eq!(e.exit(), Exit::Unavailable);
}

/// An IMAP server with neither UIDPLUS nor MOVE that records every command.
fn plain_imap_server(log: Arc<Mutex<Vec<String>>>) -> u16 {
    serve_once(move |mut s| {
        s.write_all(b"* OK scripted\r\n").unwrap();
        let mut r = BufReader::new(s.try_clone().unwrap());
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            log.lock().unwrap().push(line.trim_end().to_string());
            let tag = line.split_whitespace().next().unwrap_or("*").to_string();
            let cmd = line.to_ascii_uppercase();
            let out = if cmd.contains("CAPABILITY") {
                format!("* CAPABILITY IMAP4rev1\r\n{tag} OK done\r\n")
            } else if cmd.contains("SELECT") {
                format!("* 2 EXISTS\r\n* OK [UIDVALIDITY 9] ok\r\n{tag} OK [READ-WRITE] done\r\n")
            } else if cmd.contains("SEARCH") {
                format!("* SEARCH 5 6\r\n{tag} OK done\r\n")
            } else if cmd.contains("RFC822.SIZE") {
                format!(
                    "* 1 FETCH (UID 5 RFC822.SIZE 10)\r\n* 2 FETCH (UID 6 RFC822.SIZE 10)\r\n{tag} OK done\r\n"
                )
            } else if cmd.contains(" LOGOUT") {
                let _ = s.write_all(format!("* BYE\r\n{tag} OK bye\r\n").as_bytes());
                return;
            } else {
                format!("{tag} OK done\r\n")
            };
            s.write_all(out.as_bytes()).unwrap();
        }
    })
}

#[test]
fn imap_without_move_or_uidplus_copies_flags_and_expunges_at_finish() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let port = plain_imap_server(log.clone());
    let mut s = scripted(Protocol::Imap, port, 5);
    s.after = After::Move("Done".into());
    let mut mb = mailbox::open(&s).unwrap();
    let refs = mb.list().unwrap();
    assert_eq!(refs.len(), 2);
    mb.remove(&refs).unwrap();
    {
        let log = log.lock().unwrap();
        let tail: Vec<&str> = log.iter().rev().take(2).map(|l| l.as_str()).collect();
        assert!(tail[1].ends_with("UID COPY 5:6 \"Done\""), "{log:?}");
        assert!(
            tail[0].ends_with("UID STORE 5:6 +FLAGS.SILENT (\\Deleted)"),
            "{log:?}"
        );
        assert!(!log.iter().any(|l| l.contains("EXPUNGE")), "{log:?}");
    }
    mb.finish().unwrap();
    let log = log.lock().unwrap();
    assert!(log.iter().any(|l| l.ends_with(" EXPUNGE")), "{log:?}");
    assert!(!log.iter().any(|l| l.contains("UID EXPUNGE")), "{log:?}");
}
