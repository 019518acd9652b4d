//! Faults a year of cron brings: servers that hang, overlapping runs, killed
//! runs, full or read-only disks. Each must end with nothing lost and nothing
//! counted twice.

use std::io::Write;
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::{bouncectl, json_lines, run, stderr, stdout};

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

// ---------------------------------------------------------------------------
// Against a real Dovecot.

use crate::mailbox_cli::{code, distinct_bounces, not_bounces, summary};
use crate::support::dovecot::{self, Dovecot, PASSWORD, USER};

/// A mixed mailbox of `n` distinct messages: mostly bounces of every kind
/// the corpus has, some mail that is not a bounce. Each gets a unique header
/// so each has its own fingerprint.
fn mixed_mailbox(n: usize) -> Vec<Vec<u8>> {
    let others = not_bounces();
    distinct_bounces(n)
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            if i % 20 == 7 {
                let mut o = format!("X-Fault-Test: {i}\n").into_bytes();
                o.extend_from_slice(&others[i % others.len()]);
                o
            } else {
                m
            }
        })
        .collect()
}

/// A home with a config for one site on `d` (protocol `pop3s` or `imaps`)
/// and the database at `db`.
struct Site {
    home: tempfile::TempDir,
    db: std::path::PathBuf,
}

impl Site {
    fn new(d: &Dovecot, protocol: &str, db: Option<&Path>) -> Site {
        let home = tempfile::tempdir().unwrap();
        let (proto, port) = match protocol {
            "pop3s" => ("pop3", d.pop3s),
            _ => ("imap", d.imaps),
        };
        let db = db.map_or_else(|| home.path().join("bounces.db"), Path::to_path_buf);
        let config = format!(
            "[[site]]\nname = \"lists\"\nbounce_limit = 2\n[site.mailbox]\nprotocol = \"{proto}\"\n\
             host = \"127.0.0.1\"\nport = {port}\ntls = \"implicit\"\nca_file = \"{ca}\"\n\
             username = \"{USER}\"\npassword_env = \"FAULT_TEST_PW\"\ntimeout = 10\n",
            ca = d.ca_file().display()
        );
        std::fs::write(home.path().join("config.toml"), config).unwrap();
        Site { home, db }
    }

    fn command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = bouncectl(self.home.path());
        cmd.arg("--config")
            .arg(self.home.path().join("config.toml"))
            .arg("--db")
            .arg(&self.db)
            .args(args)
            .env("FAULT_TEST_PW", PASSWORD)
            // A commit per fetch batch, so that faults can strike between
            // commits in a mailbox of a few thousand messages.
            .env(
                "BOUNCECTL_TEST_TRANSACTION_MESSAGES",
                bouncectl::mailbox::BATCH_MESSAGES.to_string(),
            );
        cmd
    }

    fn run(&self, args: &[&str]) -> std::process::Output {
        run(&mut self.command(args))
    }

    /// `stats --json`: counters, blocks, reasons and domains.
    fn stats(&self) -> serde_json::Value {
        let o = self.run(&["--json", "stats"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        serde_json::from_slice(&o.stdout).unwrap()
    }
}

/// A small deterministic generator (xorshift), seeded and printed so a
/// failing sequence of kills can be replayed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

fn undisturbed(protocol: &str, mails: &[Vec<u8>]) -> (serde_json::Value, usize, Duration) {
    let d = dovecot::start().expect("dovecot");
    for m in mails {
        d.deliver(m);
    }
    let site = Site::new(&d, protocol, None);
    let start = Instant::now();
    let o = site.run(&["--json", "check"]);
    let took = start.elapsed();
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    (site.stats(), d.count(None), took)
}

/// SIGKILL at random moments, then rerun until one run finishes: the final
/// counters, blocks and the mail left on the server equal an undisturbed run.
#[test]
fn check_killed_at_random_moments_ends_like_an_undisturbed_run() {
    if dovecot::start().is_none() {
        return;
    }
    let mails = mixed_mailbox(1000);
    let seed = std::env::var("FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        });
    eprintln!("fault test seed: FAULT_SEED={seed}");
    let mut rng = Rng(seed);
    for protocol in ["pop3s", "imaps", "pop3s"] {
        let (want_stats, want_left, took) = undisturbed(protocol, &mails);
        assert!(
            want_stats["sites"][0]["bounces"].as_u64().unwrap() > 0,
            "{want_stats}"
        );
        let d = dovecot::start().expect("dovecot");
        for m in &mails {
            d.deliver(m);
        }
        let site = Site::new(&d, protocol, None);
        let budget = took.as_millis() as u64 + 200;
        let mut kills = 0;
        loop {
            let mut child = site
                .command(&["-q", "check"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let delay = if kills < 12 {
                30 + rng.below(budget)
            } else {
                60_000
            };
            let deadline = Instant::now() + Duration::from_millis(delay);
            let status = loop {
                if let Some(s) = child.try_wait().unwrap() {
                    break Some(s);
                }
                if Instant::now() >= deadline {
                    child.kill().unwrap(); // SIGKILL
                    child.wait().unwrap();
                    break None;
                }
                std::thread::sleep(Duration::from_millis(5));
            };
            match status {
                Some(s) if s.success() => break,
                Some(s) => {
                    panic!("{protocol}: run ended with {s} after {kills} kills (seed {seed})")
                }
                None => kills += 1,
            }
        }
        eprintln!("{protocol}: {kills} kills before a run finished");
        let got = site.stats();
        assert_eq!(
            got["sites"], want_stats["sites"],
            "{protocol} after {kills} kills (seed {seed})"
        );
        assert_eq!(
            got["reasons"], want_stats["reasons"],
            "{protocol} (seed {seed})"
        );
        assert_eq!(
            got["domains"], want_stats["domains"],
            "{protocol} (seed {seed})"
        );
        assert_eq!(
            d.count(None),
            want_left,
            "{protocol}: mail left on the server (seed {seed})"
        );
        // One more run finds nothing new.
        let again = summary(&site.run(&["--json", "check"]));
        assert_eq!(again["counted"], 0, "{again}");
    }
}

/// Two overlapping runs against the same mailbox and database: the second
/// exits 75 having touched nothing; the first counts everything once.
#[test]
fn overlapping_server_runs_one_exits_75_and_nothing_is_counted_twice() {
    if dovecot::start().is_none() {
        return;
    }
    let mails = mixed_mailbox(600);
    let (want_stats, want_left, _) = undisturbed("pop3s", &mails);
    let d = dovecot::start().expect("dovecot");
    for m in &mails {
        d.deliver(m);
    }
    let site = Site::new(&d, "pop3s", None);
    let first = site
        .command(&["-q", "check"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lock = site.db.with_extension("db.lock");
    let until = Instant::now() + Duration::from_secs(10);
    while !lock.exists() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2));
    }
    let second = site.run(&["--json", "check", "--wait", "0"]);
    let first = first.wait_with_output().unwrap();
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(code(&second), 75, "{}", stderr(&second));
    assert!(second.stdout.is_empty());
    assert_eq!(site.stats()["sites"], want_stats["sites"]);
    assert_eq!(d.count(None), want_left);
}

/// A tmpfs of a few hundred KiB for the database, unmounted on drop. `None`
/// (with a notice) where mounting is not permitted, except under CI.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(kib: u32) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                !crate::support::in_ci(),
                "cannot mount a tmpfs under CI (needs root)"
            );
            eprintln!("NOTICE: cannot mount a tmpfs (not root?): skipping the disk-full test");
            return None;
        }
        Some(SmallDisk { dir })
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

/// The database's disk fills up in the middle of a run: exit 74, nothing
/// deleted that was not recorded, and once there is room again the next run
/// ends exactly like an undisturbed one.
#[test]
fn disk_full_mid_run_exits_74_and_loses_nothing() {
    if dovecot::start().is_none() {
        return;
    }
    let Some(disk) = SmallDisk::mount(400) else {
        return;
    };
    let mails = mixed_mailbox(1000);
    for protocol in ["pop3s", "imaps"] {
        let (want_stats, want_left, _) = undisturbed(protocol, &mails);
        let d = dovecot::start().expect("dovecot");
        for m in &mails {
            d.deliver(m);
        }
        let db = disk.dir.path().join(format!("{protocol}.db"));
        let site = Site::new(&d, protocol, Some(&db));
        let o = site.run(&["-q", "check"]);
        assert_eq!(
            code(&o),
            74,
            "{protocol}: the disk should fill: {}",
            stderr(&o)
        );
        assert_eq!(stderr(&o).lines().count(), 1, "{}", stderr(&o));
        let recorded: i64 = {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.query_row("SELECT count(*) FROM ledger", [], |r| r.get(0))
                .unwrap()
        };
        let removed = (mails.len() - d.count(None)) as i64;
        assert!(
            removed <= recorded,
            "{protocol}: {removed} removed but only {recorded} recorded"
        );
        // Room again: move the database to a normal disk and finish.
        let roomy = site.home.path().join("moved.db");
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute("VACUUM INTO ?1", [roomy.to_str().unwrap()])
            .unwrap();
        drop(conn);
        for suffix in ["", "-wal", "-shm", ".lock"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
        }
        let site = Site { db: roomy, ..site };
        let o = site.run(&["-q", "check"]);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        assert_eq!(site.stats()["sites"], want_stats["sites"], "{protocol}");
        assert_eq!(site.stats()["reasons"], want_stats["reasons"], "{protocol}");
        assert_eq!(d.count(None), want_left, "{protocol}");
    }
}

/// `chattr +i` on files, undone on drop: even root can then not write
/// through file descriptors that are already open.
struct Immutable(Vec<std::path::PathBuf>);

impl Immutable {
    fn set(paths: &[std::path::PathBuf]) -> Option<Immutable> {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .args(paths)
            .status()
            .is_ok_and(|s| s.success());
        let guard = Immutable(paths.to_vec());
        ok.then_some(guard)
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .args(&self.0)
            .status();
    }
}

/// The database turns read-only in the middle of a run (after its first
/// batch is committed): exit 74, nothing removed that was not recorded, and
/// once writable again the next run ends like an undisturbed one.
#[test]
fn database_read_only_mid_run_exits_74_and_loses_nothing() {
    if dovecot::start().is_none() {
        return;
    }
    let n = 2 * bouncectl::mailbox::BATCH_MESSAGES + 300;
    let mails = mixed_mailbox(n);
    let (want_stats, want_left, _) = undisturbed("pop3s", &mails);
    let d = dovecot::start().expect("dovecot");
    for m in &mails {
        d.deliver(m);
    }
    let site = Site::new(&d, "pop3s", None);
    let child = site
        .command(&["-q", "check"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first committed batch, then make the database read-only.
    let recorded = |db: &Path| -> i64 {
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .and_then(|c| c.query_row("SELECT count(*) FROM ledger", [], |r| r.get(0)))
            .unwrap_or(0)
    };
    let until = Instant::now() + Duration::from_secs(60);
    while recorded(&site.db) == 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2));
    }
    let wal = std::path::PathBuf::from(format!("{}-wal", site.db.display()));
    let guard = Immutable::set(&[site.db.clone(), wal]);
    let out = child.wait_with_output().unwrap();
    let Some(guard) = guard else {
        assert!(
            !crate::support::in_ci(),
            "chattr +i must work under CI (root)"
        );
        eprintln!("NOTICE: chattr +i not permitted here: skipping the read-only test");
        return;
    };
    assert_eq!(out.status.code(), Some(74), "{}", stderr(&out));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
    drop(guard);
    let recorded = recorded(&site.db);
    let removed = (n - d.count(None)) as i64;
    assert!(
        recorded > 0 && (recorded as usize) < n,
        "stopped mid-run: {recorded} of {n} recorded"
    );
    assert!(
        removed <= recorded,
        "{removed} removed but only {recorded} recorded"
    );
    let o = site.run(&["-q", "check"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(site.stats()["sites"], want_stats["sites"]);
    assert_eq!(site.stats()["reasons"], want_stats["reasons"]);
    assert_eq!(d.count(None), want_left);
}

/// A database that cannot be written: exit 74 before anything is fetched or
/// deleted.
#[test]
fn read_only_database_exits_74_and_deletes_nothing() {
    let Some(d) = dovecot::start() else { return };
    let mails = mixed_mailbox(30);
    for m in &mails {
        d.deliver(m);
    }
    let tmp = tempfile::tempdir().unwrap();
    let not_a_dir = tmp.path().join("file");
    std::fs::write(&not_a_dir, "x").unwrap();
    for protocol in ["pop3s", "imaps"] {
        let site = Site::new(&d, protocol, Some(&not_a_dir.join("bounces.db")));
        let o = site.run(&["check"]);
        assert_eq!(code(&o), 74, "{}", stderr(&o));
        assert_eq!(d.count(None), mails.len());
    }
}

/// No secret in argv, logs, JSON output or the database.
#[test]
fn password_appears_nowhere_the_tool_writes() {
    let Some(d) = dovecot::start() else { return };
    for m in mixed_mailbox(40) {
        d.deliver(&m);
    }
    // There is no way to give a password on the command line.
    let tmp = tempfile::tempdir().unwrap();
    for flag in ["--password", "--pass", "-p"] {
        let o = run(bouncectl(tmp.path()).args(["check", flag, PASSWORD]));
        assert_eq!(code(&o), 64, "{flag} must be refused");
    }
    let site = Site::new(&d, "imaps", None);
    let mut seen = String::new();
    for args in [
        &["-vv", "--json", "check"][..],
        &["-vv", "check"],
        &["--json", "stats"],
        &["stats", "--blocked"],
    ] {
        let o = site.run(args);
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        seen.push_str(&stdout(&o));
        seen.push_str(&stderr(&o));
    }
    // A refused login must not echo what was tried either.
    let o = site
        .command(&["-vv", "check"])
        .env("FAULT_TEST_PW", "Wr0ng-Secret-Value")
        .output()
        .unwrap();
    assert_eq!(code(&o), 77);
    assert!(!stderr(&o).contains("Wr0ng-Secret-Value"), "{}", stderr(&o));
    assert!(!seen.contains(PASSWORD), "password printed: {seen}");
    for entry in std::fs::read_dir(site.db.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        let found = bytes
            .windows(PASSWORD.len())
            .any(|w| w == PASSWORD.as_bytes());
        assert!(!found, "password found in {}", path.display());
    }
}

/// Addresses full of SQL metacharacters are data, never SQL: they are
/// blocked, shown and reset like any other, and the tables survive.
#[test]
fn sql_metacharacters_in_addresses_are_only_data() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("b.db");
    let nasty = [
        "o'brien'--@example.com",
        "x\");drop_table_counters;--@example.com",
        "a%_*@example.com",
    ];
    let cmd = |args: &[&str]| {
        let mut c = bouncectl(tmp.path());
        c.arg("--db").arg(&db).args(args);
        run(&mut c)
    };
    let mut block = vec!["block"];
    block.extend(nasty);
    let o = cmd(&block);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let listed = stdout(&cmd(&["stats", "--blocked"]));
    let mut want: Vec<&str> = nasty.to_vec();
    want.sort();
    assert_eq!(listed.lines().collect::<Vec<_>>(), want);
    let one: serde_json::Value =
        serde_json::from_slice(&cmd(&["--json", "stats", nasty[1]]).stdout).unwrap();
    assert_eq!(one["sites"][0]["blocked"], true, "{one}");
    // A LIKE wildcard matches only itself.
    assert_eq!(code(&cmd(&["reset", "%@example.com"])), 0);
    assert_eq!(stdout(&cmd(&["stats", "--blocked"])).lines().count(), 3);
    assert_eq!(code(&cmd(&["reset", nasty[1]])), 0);
    assert_eq!(stdout(&cmd(&["stats", "--blocked"])).lines().count(), 2);
}
