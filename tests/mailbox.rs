//! POP3 and IMAP at library level against a private Dovecot
//! (tests/support/dovecot.rs). Scripted servers that misbehave are in
//! `mailbox_scripted`; binary end-to-end runs in `mailbox_cli`.

use std::time::Duration;

use bouncectl::config::{After, Auth, Mailbox as Settings, Protocol, Secret, Tls};
use bouncectl::exit::{Exit, ExitCode};
use bouncectl::mailbox::{self, Error};

use crate::support::dovecot::{self, Dovecot, PASSWORD, USER};

/// Settings for the test Dovecot; the port follows protocol and TLS mode.
fn settings(d: &Dovecot, protocol: Protocol, tls: Tls, auth: Auth) -> Settings {
    let port = match (protocol, tls) {
        (Protocol::Pop3, Tls::Implicit) => d.pop3s,
        (Protocol::Pop3, _) => d.pop3,
        (Protocol::Imap, Tls::Implicit) => d.imaps,
        (Protocol::Imap, _) => d.imap,
    };
    Settings {
        protocol,
        host: "127.0.0.1".into(),
        port,
        tls,
        auth,
        username: USER.into(),
        secret: Some(Secret::Inline(PASSWORD.into())),
        ca_file: Some(d.ca_file()),
        folder: "INBOX".into(),
        after: After::Delete,
        allow_plaintext_auth: false,
        timeout_secs: 10,
    }
}

fn sample(n: usize) -> Vec<u8> {
    format!(
        "From: MAILER-DAEMON@example.org\r\nTo: bounces@example.com\r\nSubject: test {n}\r\n\
         Message-ID: <t{n}@example.org>\r\n\r\nbody {n}\r\n"
    )
    .into_bytes()
}

/// Logs in, lists, fetches everything and ends without removing anything.
fn read_all(s: &Settings) -> Result<Vec<Vec<u8>>, Error> {
    let mut mb = mailbox::open(s)?;
    let refs = mb.list()?;
    let raws = mb.fetch(&refs)?;
    mb.finish()?;
    Ok(raws)
}

#[test]
fn pop3_every_tls_and_auth_combination_logs_in() {
    let Some(d) = dovecot::start() else { return };
    d.deliver(&sample(1));
    let cases = [
        (Tls::None, Auth::Apop),
        (Tls::None, Auth::CramMd5),
        (Tls::None, Auth::Auto),
        (Tls::StartTls, Auth::User),
        (Tls::StartTls, Auth::Apop),
        (Tls::StartTls, Auth::Plain),
        (Tls::StartTls, Auth::Login),
        (Tls::StartTls, Auth::CramMd5),
        (Tls::StartTls, Auth::Auto),
        (Tls::Implicit, Auth::User),
        (Tls::Implicit, Auth::Apop),
        (Tls::Implicit, Auth::Plain),
        (Tls::Implicit, Auth::CramMd5),
        (Tls::Implicit, Auth::Auto),
    ];
    for (tls, auth) in cases {
        let s = settings(&d, Protocol::Pop3, tls, auth);
        let raws =
            read_all(&s).unwrap_or_else(|e| panic!("POP3 {tls:?} {auth:?}: {e}\n{}", d.log()));
        assert_eq!(raws, [sample(1)], "POP3 {tls:?} {auth:?}");
    }
    // USER/PASS over a plain connection only when the site allows it.
    let mut s = settings(&d, Protocol::Pop3, Tls::None, Auth::User);
    s.allow_plaintext_auth = true;
    assert_eq!(read_all(&s).unwrap(), [sample(1)]);
}

#[test]
fn imap_every_tls_and_auth_combination_logs_in() {
    let Some(d) = dovecot::start() else { return };
    d.deliver(&sample(1));
    let cases = [
        (Tls::None, Auth::CramMd5),
        (Tls::None, Auth::Auto),
        (Tls::StartTls, Auth::User),
        (Tls::StartTls, Auth::Plain),
        (Tls::StartTls, Auth::Login),
        (Tls::StartTls, Auth::CramMd5),
        (Tls::StartTls, Auth::Auto),
        (Tls::Implicit, Auth::User),
        (Tls::Implicit, Auth::Plain),
        (Tls::Implicit, Auth::CramMd5),
        (Tls::Implicit, Auth::Auto),
    ];
    for (tls, auth) in cases {
        let s = settings(&d, Protocol::Imap, tls, auth);
        let raws =
            read_all(&s).unwrap_or_else(|e| panic!("IMAP {tls:?} {auth:?}: {e}\n{}", d.log()));
        assert_eq!(raws, [sample(1)], "IMAP {tls:?} {auth:?}");
    }
    let mut s = settings(&d, Protocol::Imap, Tls::None, Auth::User);
    s.allow_plaintext_auth = true;
    assert_eq!(read_all(&s).unwrap(), [sample(1)]);
}

#[test]
fn pop3_delete_applies_only_at_quit() {
    let Some(d) = dovecot::start() else { return };
    for i in 0..3 {
        d.deliver(&sample(i));
    }
    let s = settings(&d, Protocol::Pop3, Tls::Implicit, Auth::Auto);
    let mut mb = mailbox::open(&s).unwrap();
    let refs = mb.list().unwrap();
    assert_eq!(refs.len(), 3);
    assert!(
        refs[0].uid.starts_with("pop3:bounces@127.0.0.1:"),
        "{}",
        refs[0].uid
    );
    mb.remove(&refs[..2]).unwrap();
    assert_eq!(d.count(None), 3, "DELE must wait for QUIT");
    mb.finish().unwrap();
    assert_eq!(d.count(None), 1);
}

#[test]
fn pop3_session_ended_without_quit_deletes_nothing() {
    let Some(d) = dovecot::start() else { return };
    d.deliver(&sample(1));
    let s = settings(&d, Protocol::Pop3, Tls::Implicit, Auth::Auto);
    let mut mb = mailbox::open(&s).unwrap();
    let refs = mb.list().unwrap();
    mb.remove(&refs).unwrap();
    drop(mb); // a run that dies before finish
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(d.count(None), 1);
}

#[test]
fn pop3_uid_is_stable_across_sessions() {
    let Some(d) = dovecot::start() else { return };
    d.deliver(&sample(1));
    d.deliver(&sample(2));
    let s = settings(&d, Protocol::Pop3, Tls::Implicit, Auth::Auto);
    let list = || {
        let mut mb = mailbox::open(&s).unwrap();
        let refs = mb.list().unwrap();
        mb.finish().unwrap();
        refs.into_iter().map(|r| r.uid).collect::<Vec<_>>()
    };
    let first = list();
    assert_eq!(first.len(), 2);
    assert_ne!(first[0], first[1]);
    assert_eq!(first, list());
}

#[test]
fn imap_delete_expunges_removed_messages() {
    let Some(d) = dovecot::start() else { return };
    for i in 0..3 {
        d.deliver(&sample(i));
    }
    let s = settings(&d, Protocol::Imap, Tls::Implicit, Auth::Auto);
    let mut mb = mailbox::open(&s).unwrap();
    assert!(mb.describe().starts_with("imaps://bounces@127.0.0.1:"));
    let refs = mb.list().unwrap();
    assert_eq!(refs.len(), 3);
    assert!(
        refs[0]
            .uid
            .starts_with("imap:bounces@127.0.0.1/INBOX;UIDVALIDITY="),
        "{}",
        refs[0].uid
    );
    assert!(refs[0].uid.ends_with(&format!(";UID={}", refs[0].handle)));
    let raws = mb.fetch(&refs[1..]).unwrap();
    assert_eq!(raws, [sample(1), sample(2)]);
    mb.remove(&refs[1..]).unwrap();
    mb.finish().unwrap();
    assert_eq!(d.count(None), 1);
}

#[test]
fn imap_move_creates_folder_and_moves_messages() {
    let Some(d) = dovecot::start() else { return };
    d.deliver(&sample(1));
    d.deliver(&sample(2));
    let mut s = settings(&d, Protocol::Imap, Tls::StartTls, Auth::Auto);
    s.after = After::Move("Processed".into());
    let mut mb = mailbox::open(&s).unwrap();
    let refs = mb.list().unwrap();
    mb.remove(&refs[..1]).unwrap();
    mb.finish().unwrap();
    assert_eq!(d.count(None), 1);
    assert_eq!(d.count(Some("Processed")), 1);
}

#[test]
fn imap_keep_leaves_messages_unread_with_stable_uids() {
    let Some(d) = dovecot::start() else { return };
    d.deliver(&sample(1));
    let mut s = settings(&d, Protocol::Imap, Tls::Implicit, Auth::Auto);
    s.after = After::Keep;
    let uids = || {
        let mut mb = mailbox::open(&s).unwrap();
        let refs = mb.list().unwrap();
        mb.fetch(&refs).unwrap();
        mb.remove(&refs).unwrap(); // keep: a no-op even if called
        mb.finish().unwrap();
        refs.into_iter().map(|r| r.uid).collect::<Vec<_>>()
    };
    let first = uids();
    assert_eq!(first, uids());
    assert_eq!(d.count(None), 1);
    // BODY.PEEK: nobody's "unread" state changes.
    let cur: Vec<_> = std::fs::read_dir(d.maildir().join("cur"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(cur.iter().all(|n| !n.contains(":2,S")), "{cur:?}");
}

#[test]
fn wrong_password_is_auth_refused_and_deletes_nothing() {
    for (protocol, auth) in [
        (Protocol::Pop3, Auth::User),
        (Protocol::Pop3, Auth::CramMd5),
        (Protocol::Pop3, Auth::Apop),
        (Protocol::Imap, Auth::User),
        (Protocol::Imap, Auth::CramMd5),
    ] {
        // Dovecot's penalty for failed logins grows per client IP: one
        // failure per instance keeps the test fast.
        let Some(d) = dovecot::start() else { return };
        d.deliver(&sample(1));
        let mut s = settings(&d, protocol, Tls::Implicit, auth);
        s.secret = Some(Secret::Inline("wrong-password".into()));
        let e = mailbox::open(&s).err().expect("login must fail");
        assert!(
            matches!(e, Error::AuthRefused { .. }),
            "{protocol:?} {auth:?}: {e}\n{}",
            d.log()
        );
        assert_eq!(e.exit(), Exit::NoPerm);
        let text = e.to_string();
        assert!(text.contains("127.0.0.1") && text.contains(USER), "{text}");
        assert!(!text.contains("wrong-password"), "{text}");
        assert_eq!(d.count(None), 1);
    }
}

#[test]
fn untrusted_certificate_is_refused_naming_the_host() {
    let Some(d) = dovecot::start() else { return };
    d.deliver(&sample(1));
    for (protocol, tls) in [
        (Protocol::Pop3, Tls::Implicit),
        (Protocol::Pop3, Tls::StartTls),
        (Protocol::Imap, Tls::Implicit),
        (Protocol::Imap, Tls::StartTls),
    ] {
        let mut s = settings(&d, protocol, tls, Auth::Auto);
        s.ca_file = None;
        let e = mailbox::open(&s)
            .err()
            .expect("must refuse the certificate");
        assert!(matches!(e, Error::Tls { .. }), "{protocol:?} {tls:?}: {e}");
        assert_eq!(e.exit(), Exit::Unavailable);
        let text = e.to_string();
        assert!(text.contains("127.0.0.1"), "{text}");
        assert!(text.contains("certificate"), "{text}");
    }
    assert_eq!(d.count(None), 1);
}

#[test]
fn plaintext_password_over_unencrypted_connection_is_refused() {
    let Some(d) = dovecot::start() else { return };
    for (protocol, auth) in [
        (Protocol::Pop3, Auth::User),
        (Protocol::Pop3, Auth::Plain),
        (Protocol::Imap, Auth::User),
        (Protocol::Imap, Auth::Login),
    ] {
        let s = settings(&d, protocol, Tls::None, auth);
        let e = mailbox::open(&s).err().expect("must refuse");
        assert!(
            matches!(e, Error::Config { .. }),
            "{protocol:?} {auth:?}: {e}"
        );
        assert_eq!(e.exit(), Exit::Config);
        assert!(e.to_string().contains("allow_plaintext_auth"), "{e}");
    }
    // Nothing reached the server's authentication at all.
    assert!(!d.log().contains("auth-worker"), "{}", d.log());
}

/// A message whose lines start with "." (and ".." and a lone "." inside
/// a longer line) must come back byte for byte.
fn dotted() -> Vec<u8> {
    b"From: a@example.org\r\nSubject: dots\r\n\r\n.\r\n..\r\n.leading dot\r\n...three\r\n \
      .\r\nend.\r\n.\r\nlast line without dot\r\n"
        .to_vec()
}

#[test]
fn pop3_retrieval_is_byte_exact_with_dot_lines() {
    let Some(d) = dovecot::start() else { return };
    let path = d.deliver(&dotted());
    let file = std::fs::read(&path).unwrap();
    let s = settings(&d, Protocol::Pop3, Tls::Implicit, Auth::Auto);
    assert_eq!(read_all(&s).unwrap(), [file]);
}

#[test]
fn imap_retrieval_is_byte_exact_with_dot_lines() {
    let Some(d) = dovecot::start() else { return };
    let path = d.deliver(&dotted());
    let file = std::fs::read(&path).unwrap();
    let s = settings(&d, Protocol::Imap, Tls::Implicit, Auth::Auto);
    assert_eq!(read_all(&s).unwrap(), [file]);
}

#[test]
fn pop3_pipelined_batch_fetch_returns_every_message_in_order() {
    let Some(d) = dovecot::start() else { return };
    for i in 0..50 {
        d.deliver(&sample(i));
    }
    let s = settings(&d, Protocol::Pop3, Tls::Implicit, Auth::Auto);
    let mut mb = mailbox::open(&s).unwrap();
    let refs = mb.list().unwrap();
    let raws = mb.fetch(&refs).unwrap();
    let mut got: Vec<Vec<u8>> = raws;
    got.sort();
    let mut want: Vec<Vec<u8>> = (0..50).map(sample).collect();
    want.sort();
    assert_eq!(got, want);
    mb.remove(&refs).unwrap();
    mb.finish().unwrap();
    assert_eq!(d.count(None), 0);
}

#[test]
fn large_message_is_fetched_whole_over_both_protocols() {
    let Some(d) = dovecot::start() else { return };
    // 20 MB in 80-column lines, some starting with a dot.
    let mut big = b"From: a@example.org\r\nSubject: big\r\n\r\n".to_vec();
    for i in 0..250_000 {
        let lead = if i % 7 == 0 { "." } else { "x" };
        big.extend_from_slice(format!("{lead}{:077}\r\n", i).as_bytes());
    }
    d.deliver(&big);
    for protocol in [Protocol::Pop3, Protocol::Imap] {
        let s = settings(&d, protocol, Tls::Implicit, Auth::Auto);
        let got = read_all(&s).unwrap();
        assert!(got[0] == big, "{protocol:?}: {} bytes", got[0].len());
    }
}
