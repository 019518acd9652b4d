//! `bouncectl check` end to end against a private Dovecot: the built binary,
//! a temporary config and database, the password from a file or the
//! environment.
//!
//! Expected counts do not depend on how well the classifier does: they come
//! from `bouncectl check` on the same messages as local files.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::Value;

use crate::support::dovecot::{self, Dovecot, PASSWORD, USER};
use crate::support::{bouncectl, fixtures, json_lines, run, stderr};

/// Corpus bounces with exactly one hard `userunknown` recipient.
pub(crate) fn hard_bounces() -> Vec<PathBuf> {
    let index = std::fs::read_to_string(fixtures().join("public.jsonl")).unwrap();
    let files: Vec<PathBuf> = index
        .lines()
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let expect = v["expect"].as_array()?;
            (expect.len() == 1 && expect[0]["reason"] == "userunknown" && expect[0]["hard"] == true)
                .then(|| fixtures().join(v["file"].as_str().unwrap()))
        })
        .collect();
    assert!(files.len() > 10, "corpus has too few hard bounces");
    files
}

/// `n` distinct bounces: corpus files with a unique first header, so each
/// has its own fingerprint.
pub(crate) fn distinct_bounces(n: usize) -> Vec<Vec<u8>> {
    let files = hard_bounces();
    (0..n)
        .map(|i| {
            let mut m = format!("X-Bouncectl-Test: {i}\n").into_bytes();
            m.extend(std::fs::read(&files[i % files.len()]).unwrap());
            m
        })
        .collect()
}

pub(crate) fn not_bounces() -> Vec<Vec<u8>> {
    ["is-not-bounce-01.eml", "is-not-bounce-02.eml"]
        .iter()
        .map(|f| std::fs::read(fixtures().join("maildir/not").join(f)).unwrap())
        .collect()
}

/// A temporary home with a config for one site on the test Dovecot.
pub(crate) struct Setup {
    pub(crate) home: tempfile::TempDir,
}

impl Setup {
    /// `mailbox` is the body of `[site.mailbox]` minus the password source.
    pub(crate) fn new(mailbox: &str, password: &str) -> Setup {
        let home = tempfile::tempdir().unwrap();
        let pw = home.path().join("password");
        std::fs::write(&pw, format!("{password}\n")).unwrap();
        let s = Setup { home };
        s.configure(mailbox);
        s
    }

    /// (Re)writes the config; the database stays.
    pub(crate) fn configure(&self, mailbox: &str) {
        let config = format!(
            "[[site]]\nname = \"lists\"\nbounce_limit = 0\n[site.mailbox]\n{mailbox}\n\
             username = \"{USER}\"\npassword_file = \"{}\"\ntimeout = 10\n",
            self.home.path().join("password").display()
        );
        std::fs::write(self.home.path().join("config.toml"), config).unwrap();
    }

    pub(crate) fn check(&self) -> std::process::Output {
        self.run(&["check"])
    }

    pub(crate) fn run(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = bouncectl(self.home.path());
        cmd.arg("--config")
            .arg(self.home.path().join("config.toml"))
            .arg("--db")
            .arg(self.home.path().join("bounces.db"))
            .arg("--json")
            .args(args);
        run(&mut cmd)
    }
}

pub(crate) fn pop3s(d: &Dovecot, after: &str) -> String {
    format!(
        "protocol = \"pop3\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"implicit\"\n\
         ca_file = \"{}\"\nafter = \"{after}\"",
        d.pop3s,
        d.ca_file().display()
    )
}

pub(crate) fn imaps(d: &Dovecot, after: &str) -> String {
    format!(
        "protocol = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"implicit\"\n\
         ca_file = \"{}\"\nafter = \"{after}\"",
        d.imaps,
        d.ca_file().display()
    )
}

/// Plain POP3 with CRAM-MD5 on `port` (the Dovecot, or a proxy in front).
fn pop3_plain(port: u16) -> String {
    format!(
        "protocol = \"pop3\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\n\
         auth = \"cram-md5\"\nafter = \"delete\""
    )
}

/// The summary of a clean local run over the same messages (a Maildir, a
/// fresh database, the built-in configuration): what one server run that
/// never failed must count.
pub(crate) fn reference(mails: &[Vec<u8>]) -> Value {
    let home = tempfile::tempdir().unwrap();
    let maildir = home.path().join("Maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).unwrap();
    }
    for (i, m) in mails.iter().enumerate() {
        std::fs::write(maildir.join("new").join(format!("{i}.ref")), m).unwrap();
    }
    let mut cmd = bouncectl(home.path());
    cmd.arg("--db")
        .arg(home.path().join("ref.db"))
        .args(["--json", "check"])
        .arg(&maildir);
    let o = run(&mut cmd);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    summary(&o)
}

/// Messages the reference run would leave on the server (`not_bounce`).
pub(crate) fn kept(reference: &Value) -> usize {
    reference["not_bounces"].as_u64().unwrap() as usize
}

pub(crate) fn summary(o: &std::process::Output) -> Value {
    let lines = json_lines(o);
    let s = lines.last().cloned().unwrap_or(Value::Null);
    assert_eq!(s["type"], "summary", "{lines:?}\n{}", stderr(o));
    s
}

pub(crate) fn code(o: &std::process::Output) -> i32 {
    o.status.code().unwrap_or(-1)
}

#[test]
fn wrong_password_exits_77_and_deletes_nothing() {
    let Some(d) = dovecot::start() else { return };
    for m in distinct_bounces(2) {
        d.deliver(&m);
    }
    let s = Setup::new(&pop3s(&d, "delete"), "not-the-password");
    let o = s.check();
    assert_eq!(code(&o), 77, "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("refused login for bounces"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");
    assert_eq!(d.count(None), 2);
}

#[test]
fn untrusted_certificate_exits_69_and_deletes_nothing() {
    let Some(d) = dovecot::start() else { return };
    d.deliver(&distinct_bounces(1)[0]);
    let mailbox = format!(
        "protocol = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\ntls = \"implicit\"",
        d.imaps
    );
    let o = Setup::new(&mailbox, PASSWORD).check();
    assert_eq!(code(&o), 69, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("certificate not trusted"),
        "{}",
        stderr(&o)
    );
    assert_eq!(d.count(None), 1);
}

#[test]
fn non_bounce_mail_stays_on_the_server() {
    let Some(d) = dovecot::start() else { return };
    for m in not_bounces() {
        d.deliver(&m);
    }
    let s = Setup::new(&pop3s(&d, "delete"), PASSWORD);
    let o = s.check();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(summary(&o)["messages"], 2);
    assert_eq!(summary(&o)["deleted"], 0);
    assert_eq!(d.count(None), 2);
}

#[test]
fn password_from_environment_logs_in() {
    let Some(d) = dovecot::start() else { return };
    d.deliver(&not_bounces()[0]);
    let s = Setup::new(&imaps(&d, "keep"), "unused");
    let cfg = s.home.path().join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    let text = text.replace(
        &format!(
            "password_file = \"{}\"",
            s.home.path().join("password").display()
        ),
        "password_env = \"BOUNCES_TEST_PASSWORD\"",
    );
    std::fs::write(&cfg, text).unwrap();
    let mut cmd = bouncectl(s.home.path());
    cmd.args(["--json", "check", "--config"])
        .arg(&cfg)
        .arg("--db")
        .arg(s.home.path().join("db.sqlite"))
        .env("BOUNCES_TEST_PASSWORD", PASSWORD);
    let o = run(&mut cmd);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(summary(&o)["messages"], 1);
}

/// A TCP proxy to `upstream` for one connection that cuts the connection a
/// few hundred bytes into the server's reply once the client has sent more
/// than `retr_limit` RETR commands.
fn cutting_proxy(upstream: u16, retr_limit: usize) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let Ok((client, _)) = l.accept() else { return };
        let server = TcpStream::connect(("127.0.0.1", upstream)).unwrap();
        let cut = Arc::new(AtomicBool::new(false));
        let retrs = Arc::new(AtomicUsize::new(0));
        let (mut c_in, mut s_out) = (client.try_clone().unwrap(), server.try_clone().unwrap());
        let cut2 = cut.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 16 * 1024];
            while let Ok(n) = c_in.read(&mut buf) {
                if n == 0 {
                    break;
                }
                let seen = buf[..n].windows(5).filter(|w| w == b"RETR ").count();
                if retrs.fetch_add(seen, Ordering::SeqCst) + seen > retr_limit {
                    cut2.store(true, Ordering::SeqCst);
                }
                if s_out.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        let (mut s_in, mut c_out) = (server, client);
        let mut buf = [0u8; 16 * 1024];
        while let Ok(n) = s_in.read(&mut buf) {
            if n == 0 {
                break;
            }
            if cut.load(Ordering::SeqCst) {
                let _ = c_out.write_all(&buf[..n.min(300)]);
                break;
            }
            if c_out.write_all(&buf[..n]).is_err() {
                break;
            }
        }
        let _ = c_out.shutdown(Shutdown::Both);
        let _ = s_in.shutdown(Shutdown::Both);
    });
    port
}

/// One batch and 50 more bounces: the first batch is recorded, the
/// connection is cut while the rest is retrieved.
const BATCH: usize = bouncectl::mailbox::BATCH_MESSAGES;
const DROPPED: usize = BATCH + 50;

fn dropped_run(d: &Dovecot) -> Setup {
    for m in distinct_bounces(DROPPED) {
        d.deliver(&m);
    }
    let proxy = cutting_proxy(d.pop3, BATCH);
    let s = Setup::new(&pop3_plain(proxy), PASSWORD);
    let o = s.check();
    assert_eq!(code(&o), 75, "{}", stderr(&o));
    assert!(stderr(&o).contains("connection dropped"), "{}", stderr(&o));
    assert_eq!(
        d.count(None),
        DROPPED,
        "nothing may be deleted without QUIT"
    );
    s
}

#[test]
fn drop_mid_retr_exits_75_and_deletes_nothing() {
    let Some(d) = dovecot::start() else { return };
    dropped_run(&d);
}

#[test]
fn run_after_dropped_connection_counts_nothing_twice() {
    let Some(d) = dovecot::start() else { return };
    let s = dropped_run(&d);
    // Same database, straight to the server this time.
    s.configure(&pop3_plain(d.pop3));
    let o = s.check();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let sum = summary(&o);
    let want = reference(&distinct_bounces(DROPPED));
    // The first batch was committed before the drop: skipped now.
    assert_eq!(
        sum["already_seen"],
        bouncectl::mailbox::FIRST_BATCH_MESSAGES,
        "{sum}"
    );
    assert_eq!(sum["messages"], DROPPED, "{sum}");
    assert_eq!(d.count(None), kept(&want), "{sum} vs {want}");
    // Across both runs, every recipient was counted exactly once.
    let stats = s.run(&["stats"]);
    let v: Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(v["sites"][0]["bounces"], want["counted"], "{v} vs {want}");
}

#[test]
fn second_run_counts_nothing_twice() {
    let Some(d) = dovecot::start() else { return };
    let mails = distinct_bounces(5);
    let want = reference(&mails);
    for m in &mails {
        d.deliver(m);
    }
    let s = Setup::new(&pop3s(&d, "delete"), PASSWORD);
    let o = s.check();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let sum = summary(&o);
    assert_eq!(sum["counted"], want["counted"], "{sum} vs {want}");
    assert!(sum["counted"].as_u64() > Some(0), "{sum}");
    assert_eq!(d.count(None), kept(&want));
    // The same messages arrive again (new UIDLs, same content).
    for m in &mails {
        d.deliver(m);
    }
    let sum = summary(&s.check());
    assert_eq!(sum["already_seen"], 5, "{sum}");
    assert_eq!(sum["counted"], 0, "{sum}");
    // Seen again: removed again, unless they are kept as non-bounces.
    assert_eq!(d.count(None), 2 * kept(&want));
}

#[test]
fn imap_keep_counts_each_message_once() {
    let Some(d) = dovecot::start() else { return };
    let mails = distinct_bounces(3);
    let want = reference(&mails);
    for m in &mails {
        d.deliver(m);
    }
    let s = Setup::new(&imaps(&d, "keep"), PASSWORD);
    let first = summary(&s.check());
    assert_eq!(first["counted"], want["counted"], "{first} vs {want}");
    assert_eq!(first["deleted"], 0, "{first}");
    let second = summary(&s.check());
    assert_eq!(second["already_seen"], 3, "{second}");
    assert_eq!(second["counted"], 0, "{second}");
    assert_eq!(d.count(None), 3);
}

#[test]
fn bounces_are_deleted_and_non_bounces_kept() {
    let Some(d) = dovecot::start() else { return };
    let mails: Vec<Vec<u8>> = distinct_bounces(3)
        .into_iter()
        .chain(not_bounces())
        .collect();
    let want = reference(&mails);
    assert!(
        kept(&want) >= 2,
        "the two non-bounces are not_bounce: {want}"
    );
    for m in &mails {
        d.deliver(m);
    }
    let s = Setup::new(&imaps(&d, "delete"), PASSWORD);
    let o = s.check();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let sum = summary(&o);
    assert_eq!(sum["not_bounces"], want["not_bounces"], "{sum} vs {want}");
    assert_eq!(
        sum["deleted"].as_u64(),
        Some(5 - kept(&want) as u64),
        "{sum}"
    );
    assert_eq!(d.count(None), kept(&want));
    // Not re-parsed next time: the ledger knows them.
    let sum = summary(&s.check());
    assert_eq!(
        sum["already_seen"].as_u64(),
        Some(kept(&want) as u64),
        "{sum}"
    );
    assert_eq!(d.count(None), kept(&want));
}
