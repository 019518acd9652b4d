//! Faults a year of cron brings: servers that hang, overlapping runs, killed
//! runs, full or read-only disks. Each must end with nothing lost and nothing
//! counted twice.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{bouncectl, json_lines, run, stderr};

/// A TCP server on 127.0.0.1 that accepts connections and never says a word.
fn silent_server() -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        // Hold each accepted connection open, silent, for a while; stop after
        // a bounded time so the test process never hangs on this thread.
        listener.set_nonblocking(true).unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        let mut held = Vec::new();
        while Instant::now() < until {
            match listener.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
            if held.len() >= 4 {
                break;
            }
        }
        std::thread::sleep(Duration::from_secs(8));
    });
    (port, handle)
}

fn write_config(dir: &Path, body: &str) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(&path, body).unwrap();
    path
}

#[test]
fn server_that_says_nothing_exits_75_within_the_timeout() {
    for (protocol, tls) in [
        ("pop3", "none"),
        ("imap", "none"),
        ("pop3", "implicit"),
        ("imap", "implicit"),
    ] {
        let (port, _server) = silent_server();
        let tmp = tempfile::tempdir().unwrap();
        let config = write_config(
            tmp.path(),
            &format!(
                "database = \"{db}\"\n[[site]]\nname = \"hang\"\n[site.mailbox]\nprotocol = \"{protocol}\"\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"{tls}\"\nauth = \"user\"\nallow_plaintext_auth = true\nusername = \"u\"\npassword_env = \"HANG_PW\"\ntimeout = 2\n",
                db = tmp.path().join("b.db").display()
            ),
        );
        let start = Instant::now();
        let out = run(bouncectl(tmp.path())
            .arg("--config")
            .arg(&config)
            .arg("check")
            .env("HANG_PW", "pw"));
        let took = start.elapsed();
        assert_eq!(
            out.status.code(),
            Some(75),
            "{protocol}/{tls}: {}",
            stderr(&out)
        );
        // Each step is bounded by the 2 s timeout; a hang would take 30 s+.
        assert!(
            took < Duration::from_secs(12),
            "{protocol}/{tls} took {took:?}"
        );
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "one line on stderr: {err}");
        assert!(err.contains("127.0.0.1"), "names the server: {err}");
    }
}

/// Two overlapping runs on one database: the first holds the lock while it
/// waits for its message on stdin; the second gives up after `--wait` with
/// exit 75 and records nothing; the first then records its message once.
#[test]
fn overlapping_check_runs_one_exits_75_and_nothing_is_counted_twice() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("b.db");
    let bounce =
        std::fs::read(crate::support::fixtures().join("maildir/bsd/lhost-postfix-13.eml")).unwrap();
    let mut first = bouncectl(tmp.path())
        .args(["--json", "--db"])
        .arg(&db)
        .args(["check", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first run holds the lock (its lock file exists).
    let lock = tmp.path().join("b.db.lock");
    let until = Instant::now() + Duration::from_secs(20);
    while !lock.exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
    let second = run(bouncectl(tmp.path())
        .args(["--json", "--db"])
        .arg(&db)
        .args(["check", "--wait", "1", "-"])
        .stdin(Stdio::piped()));
    assert_eq!(second.status.code(), Some(75), "{}", stderr(&second));
    assert!(stderr(&second).contains("in use"), "{}", stderr(&second));
    assert!(
        second.stdout.is_empty(),
        "the locked-out run reports nothing"
    );

    first.stdin.take().unwrap().write_all(&bounce).unwrap();
    let out = first.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = json_lines(&out).pop().unwrap();
    assert_eq!(summary["messages"], 1);

    // The same message again: already seen, nothing counted.
    let again = run(bouncectl(tmp.path())
        .args(["--json", "--db"])
        .arg(&db)
        .args(["check"])
        .arg(crate::support::fixtures().join("maildir/bsd/lhost-postfix-13.eml")));
    let summary = json_lines(&again).pop().unwrap();
    assert_eq!(summary["already_seen"], 1, "{summary}");
    assert_eq!(summary["counted"], 0, "{summary}");
}
